// l2_regularizer: Keras's kernel_regularizer=l2(λ) on every Dense kernel, in one workgroup:
// grads += 2λ·W over each kernel range, and λ·ΣW² · rows added to the metrics tally's loss sum
// (Kahan-compensated, like softmax_cross_entropy), so the epoch's mean loss includes the penalty.
// Runs after the backward kernels wrote grads and before Adam. add_to_tally comes from common/tally.wgsl
// and workgroup_sum from l2/workgroup_sum.wgsl (both prepended).
//
// Bindings (group 0):
//   0 step     uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape    uniform                   ranges (how many), l2 (λ), tally, weights (in all; unused here)
//   2 ranges   storage, read   u32[2 * ranges]  (offset, length) of each kernel in params
//   3 params   storage, read   f32[..]
//   4 grads    storage, rw     f32[..]
//   5 metrics  storage, rw     u32[4 * tallies]; tally s: [loss_sum (f32 bits), compensation (f32 bits), hits, samples]
// Dispatch: (1, 1, 1).

struct Shape { ranges: u32, l2: f32, tally: u32, weights: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> ranges: array<u32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;
@group(0) @binding(5) var<storage, read_write> metrics: array<u32>;

const THREADS: u32 = 256u;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32) {
    var squares = 0.0;
    for (var k = 0u; k < shape.ranges; k = k + 1u) {
        let begin = ranges[2u * k];
        let end = begin + ranges[2u * k + 1u];
        for (var i = begin + tid; i < end; i = i + THREADS) {
            let w = params[i];
            grads[i] = grads[i] + 2.0 * shape.l2 * w;
            squares = squares + w * w;
        }
    }
    let sum = workgroup_sum(tid, squares);
    if (tid == 0u) {
        add_to_tally(shape.tally, shape.l2 * sum * f32(step.rows), 0u, 0u);
    }
}
