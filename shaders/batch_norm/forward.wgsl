// batch_norm_forward: Keras's BatchNormalization over the features of a [rows, width] batch,
// with an optional fused ReLU. One thread per feature walks its column. After a conv layer the
// features are the NHWC image's channels and rows = batch rows × positions (height × width).
//   training = 1: μ, σ² = the batch's mean and biased variance; y = γ·(x − μ)/√(σ² + ε) + β;
//                 stats ← (μ, 1/√(σ² + ε)) for the backward pass;
//                 moving_mean ← 0.99·moving_mean + 0.01·μ, moving_variance likewise with σ².
//   training = 0: y = γ·(x − moving_mean)/√(moving_variance + ε) + β.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   width, gamma/beta/moving_mean/moving_variance offsets,
//                                       training (0/1), relu (0/1), momentum, epsilon, positions
//   2 x       storage, read   f32[rows, width]
//   3 params  storage, rw     f32[..]  γ, β, moving mean, moving variance [width] at their offsets
//   4 y       storage, rw     f32[rows, width]
//   5 stats   storage, rw     f32[2 * width]  μ then 1/√(σ² + ε) (written in training)
// Dispatch: (ceil(width / 64), 1, 1).

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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let width = shape.width;
    if (j >= width) {
        return;
    }
    let rows = step.rows * shape.positions;
    var mean: f32;
    var inv_std: f32;
    if (shape.training != 0u) {
        var sum = 0.0;
        for (var r = 0u; r < rows; r = r + 1u) {
            sum = sum + x[r * width + j];
        }
        mean = sum / f32(rows);
        var squares = 0.0;
        for (var r = 0u; r < rows; r = r + 1u) {
            let d = x[r * width + j] - mean;
            squares = squares + d * d;
        }
        let variance = squares / f32(rows);
        inv_std = 1.0 / sqrt(variance + shape.epsilon);
        stats[j] = mean;
        stats[width + j] = inv_std;
        let mm = shape.moving_mean_offset + j;
        let mv = shape.moving_variance_offset + j;
        params[mm] = params[mm] * shape.momentum + mean * (1.0 - shape.momentum);
        params[mv] = params[mv] * shape.momentum + variance * (1.0 - shape.momentum);
    } else {
        mean = params[shape.moving_mean_offset + j];
        inv_std = 1.0 / sqrt(params[shape.moving_variance_offset + j] + shape.epsilon);
    }
    let gamma = params[shape.gamma_offset + j];
    let beta = params[shape.beta_offset + j];
    for (var r = 0u; r < rows; r = r + 1u) {
        let i = r * width + j;
        var v = gamma * (x[i] - mean) * inv_std + beta;
        if (shape.relu != 0u) {
            v = max(v, 0.0);
        }
        y[i] = v;
    }
}
