// batch_norm_backward (training mode): with x̂ = (x − μ)·s, s = 1/√(σ² + ε) from the forward pass,
//   dγ = Σ_rows dy·x̂,  dβ = Σ_rows dy,  dx = γ·s/N · (N·dy − Σdy − x̂·Σ(dy·x̂)),
// dx times ReLU' of the layer below (below > 0) when relu_below = 1. One thread per feature.
// N = batch rows × positions (an image's height × width after a conv layer, 1 otherwise).
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   width, gamma_offset, beta_offset, relu_below (0/1), positions
//   2 x       storage, read   f32[rows, width]  this layer's input
//   3 dy      storage, read   f32[rows, width]  gradient at this layer's (pre-ReLU) output
//   4 params  storage, read   f32[..]  γ [width] at gamma_offset
//   5 stats   storage, read   f32[2 * width]  μ then s, written by batch_norm_forward
//   6 below   storage, read   f32[rows, width]  output of the layer below (only read when relu_below)
//   7 dx      storage, rw     f32[rows, width]
//   8 grads   storage, rw     f32[..]  dγ at gamma_offset, dβ at beta_offset (overwritten)
// Dispatch: (ceil(width / 64), 1, 1).

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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let width = shape.width;
    if (j >= width) {
        return;
    }
    let rows = step.rows * shape.positions;
    let mean = stats[j];
    let s = stats[width + j];
    var sum_dy = 0.0;
    var sum_dy_xhat = 0.0;
    for (var r = 0u; r < rows; r = r + 1u) {
        let i = r * width + j;
        sum_dy = sum_dy + dy[i];
        sum_dy_xhat = sum_dy_xhat + dy[i] * (x[i] - mean) * s;
    }
    grads[shape.gamma_offset + j] = sum_dy_xhat;
    grads[shape.beta_offset + j] = sum_dy;
    let n = f32(rows);
    let scale = params[shape.gamma_offset + j] * s / n;
    for (var r = 0u; r < rows; r = r + 1u) {
        let i = r * width + j;
        let xhat = (x[i] - mean) * s;
        let open = shape.relu_below == 0u || below[i] > 0.0;
        dx[i] = select(0.0, scale * (n * dy[i] - sum_dy - xhat * sum_dy_xhat), open);
    }
}
