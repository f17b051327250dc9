// batch_norm_statistics_combine: the second stage of BatchNorm's batch statistics for GPUs. One
// invocation per feature merges the chunks' (count, mean, M2) from
// batch_norm/statistics_partials.wgsl in order — n = nₐ + n_b, δ = μ_b − μₐ, μ = μₐ + δ·n_b/n,
// M2 = M2ₐ + M2_b + δ²·nₐ·n_b/n — then, as batch_norm/forward.wgsl does in training: stats ←
// (μ, 1/√(σ² + ε)) with σ² = M2 / rows, moving_mean ← momentum·moving_mean + (1 − momentum)·μ,
// moving_variance likewise with σ². batch_norm/normalize.wgsl then writes the output.
//
// Bindings (group 0):
//   0 step      uniform, dynamic offset   Step (common/step.wgsl): unused
//   1 shape     uniform                   width, chunks, moving_mean/moving_variance offsets, momentum, epsilon
//   2 partials  storage, read   f32[chunks, width, 3]
//   3 params    storage, rw     f32[..]  moving mean, moving variance [width] at their offsets
//   4 stats     storage, rw     f32[2 * width]  μ then 1/√(σ² + ε)
// Dispatch: (ceil(width / 64), 1, 1).

struct Shape {
    width: u32, rows_per_chunk: u32, chunks: u32, moving_mean_offset: u32,
    moving_variance_offset: u32, momentum: f32, epsilon: f32, positions: u32,
}

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let width = shape.width;
    if (j >= width) {
        return;
    }
    var count = 0.0;
    var mean = 0.0;
    var m2 = 0.0;
    for (var c = 0u; c < shape.chunks; c = c + 1u) {
        let at = (c * width + j) * 3u;
        let n_b = partials[at];
        if (n_b > 0.0) {
            let n = count + n_b;
            let delta = partials[at + 1u] - mean;
            mean = mean + delta * n_b / n;
            m2 = m2 + partials[at + 2u] + delta * delta * count * n_b / n;
            count = n;
        }
    }
    let variance = m2 / max(count, 1.0);
    stats[j] = mean;
    stats[width + j] = 1.0 / sqrt(variance + shape.epsilon);
    let mm = shape.moving_mean_offset + j;
    let mv = shape.moving_variance_offset + j;
    params[mm] = params[mm] * shape.momentum + mean * (1.0 - shape.momentum);
    params[mv] = params[mv] * shape.momentum + variance * (1.0 - shape.momentum);
}
