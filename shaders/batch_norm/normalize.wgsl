// batch_norm_normalize: BatchNorm's output for GPUs, an invocation per element:
//   training = 1: y = γ·(x − μ)·s + β with (μ, s) the batch statistics in stats (written by
//                 batch_norm/statistics_combine.wgsl);
//   training = 0: y = γ·(x − moving_mean)/√(moving_variance + ε) + β;
// then ReLU when relu = 1. The same Shape and bindings as batch_norm/forward.wgsl: a sample's
// positions · width values are positions rows of the width features.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   width, gamma/beta/moving_mean/moving_variance offsets,
//                                       training (0/1), relu (0/1), momentum (unused), epsilon,
//                                       positions
//   2 x       storage, read   f32[rows, positions · width]
//   3 params  storage, rw     f32[..]  γ, β, moving mean, moving variance [width] (read only here)
//   4 y       storage, rw     f32[rows, positions · width]
//   5 stats   storage, rw     f32[2 * width]  μ then 1/√(σ² + ε) (read in training)
// Dispatch: (ceil(positions · width / 256), rows, 1).

struct Shape {
    width: u32, gamma_offset: u32, beta_offset: u32, moving_mean_offset: u32,
    moving_variance_offset: u32, training: u32, relu: u32, momentum: f32,
    epsilon: f32, positions: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats: array<f32>;

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
    var mean: f32;
    var inv_std: f32;
    if (shape.training != 0u) {
        mean = stats[j];
        inv_std = stats[width + j];
    } else {
        mean = params[shape.moving_mean_offset + j];
        inv_std = 1.0 / sqrt(params[shape.moving_variance_offset + j] + shape.epsilon);
    }
    let i = r * per_row + e;
    var v = params[shape.gamma_offset + j] * (x[i] - mean) * inv_std + params[shape.beta_offset + j];
    if (shape.relu != 0u) {
        v = max(v, 0.0);
    }
    y[i] = v;
}
