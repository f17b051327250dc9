// batch_norm_backward_partials: the first stage of BatchNorm's backward pass for GPUs. With
// x̂ = (x − μ)·s from the forward pass, one invocation per feature j and chunk c of
// rows_per_chunk rows writes the chunk's Σ dy·x̂ (dγ's part) to partials[c · 2 · width + j] and
// Σ dy (dβ's part) to partials[c · 2 · width + width + j]; partials/sum.wgsl adds the chunks in
// order into dγ and dβ, and batch_norm/backward_input.wgsl computes dx from them. Chunks past
// the batch write zeros. rows = batch rows × positions (an image's height × width after a conv
// layer, 1 otherwise).
//
// Bindings (group 0):
//   0 step      uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape     uniform                   width, rows_per_chunk, chunks, positions
//   2 x         storage, read   f32[rows, width]  this layer's input
//   3 dy        storage, read   f32[rows, width]  gradient at this layer's (pre-ReLU) output
//   4 stats     storage, read   f32[2 * width]  μ then s, written by the forward pass
//   5 partials  storage, rw     f32[chunks, 2 * width]
// Dispatch: (ceil(width / 64), chunks, 1).

struct Shape { width: u32, rows_per_chunk: u32, chunks: u32, positions: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let chunk = gid.y;
    let width = shape.width;
    if (j >= width) {
        return;
    }
    let rows = step.rows * shape.positions;
    let first = min(chunk * shape.rows_per_chunk, rows);
    let end = min(first + shape.rows_per_chunk, rows);
    let mean = stats[j];
    let s = stats[width + j];
    var sum_dy = 0.0;
    var sum_dy_xhat = 0.0;
    for (var r = first; r < end; r = r + 1u) {
        let i = r * width + j;
        sum_dy = sum_dy + dy[i];
        sum_dy_xhat = sum_dy_xhat + dy[i] * (x[i] - mean) * s;
    }
    partials[chunk * 2u * width + j] = sum_dy_xhat;
    partials[chunk * 2u * width + width + j] = sum_dy;
}
