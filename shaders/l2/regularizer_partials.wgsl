// l2_regularizer_partials: l2/regularizer.wgsl for GPUs, over many workgroups. The Dense kernels'
// weights, taken as one sequence over the ranges, four per thread: grads += 2λ·W for each, and
// each workgroup's Σ W² (halved in workgroup memory, a fixed order) written to partials[group];
// l2/penalty_tally.wgsl adds them up in order into the metrics tally. Runs after the backward
// kernels wrote grads and before Adam. workgroup_sum comes from l2/workgroup_sum.wgsl (prepended).
//
// Bindings (group 0):
//   0 step      uniform, dynamic offset   Step (common/step.wgsl): unused
//   1 shape     uniform                   ranges (how many), l2 (λ), tally (unused here), weights (in all)
//   2 ranges    storage, read   u32[2 * ranges]  (offset, length) of each kernel in params
//   3 params    storage, read   f32[..]
//   4 grads     storage, rw     f32[..]
//   5 partials  storage, rw     f32[workgroups]
// Dispatch: (min(ceil(weights / 1024), 65535), ceil(weights / 1024 / 65535), 1); four weights per thread.

struct Shape { ranges: u32, l2: f32, tally: u32, weights: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> ranges: array<u32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

const THREADS: u32 = 256u;
const PER_THREAD: u32 = 4u;

// Where weight `e` of the sequence sits in params.
fn param_index(e: u32) -> u32 {
    var rest = e;
    for (var k = 0u; k < shape.ranges; k = k + 1u) {
        let len = ranges[2u * k + 1u];
        if (rest < len) {
            return ranges[2u * k] + rest;
        }
        rest = rest - len;
    }
    return 0u;
}

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let group = wg.y * groups.x + wg.x;
    let first = (group * THREADS + tid) * PER_THREAD;
    let end = min(first + PER_THREAD, shape.weights);
    var squares = 0.0;
    for (var e = first; e < end; e = e + 1u) {
        let at = param_index(e);
        let w = params[at];
        grads[at] = grads[at] + 2.0 * shape.l2 * w;
        squares = squares + w * w;
    }
    let sum = workgroup_sum(tid, squares);
    if (tid == 0u) {
        partials[group] = sum;
    }
}
