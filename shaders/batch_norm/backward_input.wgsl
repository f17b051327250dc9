// batch_norm_backward_input: BatchNorm's gradient at its input for GPUs, an invocation per
// element, from dγ = Σ dy·x̂ and dβ = Σ dy already summed into grads (batch_norm_backward_partials
// then sum_partials): dx = γ·s/N · (N·dy − dβ − x̂·dγ), times ReLU' of the layer below
// (below > 0) when relu_below = 1. The same Shape and bindings as batch_norm/backward.wgsl;
// N = rows × positions, a sample's positions · width values being positions rows of width.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   width, gamma_offset, beta_offset, relu_below (0/1), positions
//   2 x       storage, read   f32[rows, positions · width]  this layer's input
//   3 dy      storage, read   f32[rows, positions · width]  gradient at this layer's (pre-ReLU) output
//   4 params  storage, read   f32[..]  γ [width] at gamma_offset
//   5 stats   storage, read   f32[2 * width]  μ then s, written by the forward pass
//   6 below   storage, read   f32[rows, positions · width]  output of the layer below (only read when relu_below)
//   7 dx      storage, rw     f32[rows, positions · width]
//   8 grads   storage, rw     f32[..]  dγ at gamma_offset, dβ at beta_offset (read here)
// Dispatch: (ceil(positions · width / 256), rows, 1).

struct Shape {
    width: u32, gamma_offset: u32, beta_offset: u32, relu_below: u32,
    positions: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read> params: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read> below: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    let r = gid.y;
    let width = shape.width;
    let per_row = width * shape.positions;
    if (e >= per_row || r >= step.rows) {
        return;
    }
    let j = e % width;
    let s = stats[width + j];
    let n = f32(step.rows * shape.positions);
    let i = r * per_row + e;
    let xhat = (x[i] - stats[j]) * s;
    let scale = params[shape.gamma_offset + j] * s / n;
    let g = scale * (n * dy[i] - grads[shape.beta_offset + j] - xhat * grads[shape.gamma_offset + j]);
    let open = shape.relu_below == 0u || below[i] > 0.0;
    dx[i] = select(0.0, g, open);
}
