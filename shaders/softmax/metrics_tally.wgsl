// metrics_tally: adds a batch's per-row losses and hits (from softmax/cross_entropy_rows.wgsl) to
// a metrics tally. Each of 256 threads sums every 256th row in order, then the workgroup halves
// the partial sums in workgroup memory: a fixed order, so a run stays reproducible. The tally's
// loss sum is Kahan-compensated (an epoch adds up thousands of batches), as in
// softmax/cross_entropy.wgsl (add_to_tally: common/tally.wgsl, prepended).
//
// Bindings (group 0):
//   0 step         uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape        uniform                   tally
//   2 row_metrics  storage, read   u32[2 * rows]; row r: [loss (f32 bits), hit (0/1)]
//   3 metrics      storage, rw     u32[4 * tallies]; tally s: [loss_sum (f32 bits), compensation (f32 bits), hits, samples]
// Dispatch: (1, 1, 1).

struct Shape { tally: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> row_metrics: array<u32>;
@group(0) @binding(3) var<storage, read_write> metrics: array<u32>;

const THREADS: u32 = 256u;
var<workgroup> losses: array<f32, THREADS>;
var<workgroup> hits: array<u32, THREADS>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) tid: u32) {
    let rows = step.rows;
    var loss = 0.0;
    var hit = 0u;
    for (var r = tid; r < rows; r = r + THREADS) {
        loss = loss + bitcast<f32>(row_metrics[2u * r]);
        hit = hit + row_metrics[2u * r + 1u];
    }
    losses[tid] = loss;
    hits[tid] = hit;
    workgroupBarrier();
    for (var stride = THREADS / 2u; stride > 0u; stride = stride / 2u) {
        if (tid < stride) {
            losses[tid] = losses[tid] + losses[tid + stride];
            hits[tid] = hits[tid] + hits[tid + stride];
        }
        workgroupBarrier();
    }
    if (tid == 0u) {
        add_to_tally(shape.tally, losses[0], hits[0], rows);
    }
}
