// l2_penalty_tally: the second stage of l2/regularizer_partials.wgsl. Each of 256 threads sums
// every 256th workgroup's Σ W² in order, the workgroup halves those in workgroup memory (a fixed
// order), and λ·ΣW² · rows is added to the metrics tally's loss sum, Kahan-compensated as
// l2/regularizer.wgsl does (add_to_tally: common/tally.wgsl; workgroup_sum:
// l2/workgroup_sum.wgsl; both prepended).
//
// Bindings (group 0):
//   0 step      uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape     uniform                   partials (how many), l2 (λ), tally
//   2 partials  storage, read   f32[partials]
//   3 metrics   storage, rw     u32[4 * tallies]; tally s: [loss_sum (f32 bits), compensation (f32 bits), hits, samples]
// Dispatch: (1, 1, 1).

struct Shape { partials: u32, l2: f32, tally: u32, _p0: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> metrics: array<u32>;

const THREADS: u32 = 256u;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32) {
    var squares = 0.0;
    for (var g = tid; g < shape.partials; g = g + THREADS) {
        squares = squares + partials[g];
    }
    let sum = workgroup_sum(tid, squares);
    if (tid == 0u) {
        add_to_tally(shape.tally, shape.l2 * sum * f32(step.rows), 0u, 0u);
    }
}
