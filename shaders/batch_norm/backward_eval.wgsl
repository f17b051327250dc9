// batch_norm_backward_eval: BatchNorm's gradient at its input in evaluation mode, where the moving
// statistics are constants and the layer is a per-feature affine map:
// dx = dy · γ/√(moving_variance + ε), times ReLU' of the layer below (below > 0) when
// relu_below = 1. Used by the saliency's backward pass (training uses batch_norm/backward.wgsl).
// A sample's positions · width values are positions rows of the width features.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   width, gamma_offset, moving_variance_offset, relu_below (0/1), epsilon,
//                                       positions
//   2 dy      storage, read   f32[rows, positions · width]  gradient at this layer's (pre-ReLU) output
//   3 params  storage, read   f32[..]  γ and the moving variance [width] at their offsets
//   4 below   storage, read   f32[rows, positions · width]  output of the layer below (only read when relu_below)
//   5 dx      storage, rw     f32[rows, positions · width]
// Dispatch: (ceil(positions · width / 256), rows, 1): an invocation per element.

struct Shape {
    width: u32, gamma_offset: u32, moving_variance_offset: u32, relu_below: u32,
    epsilon: f32, positions: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read> below: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

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
    let i = r * per_row + e;
    let scale = params[shape.gamma_offset + j] / sqrt(params[shape.moving_variance_offset + j] + shape.epsilon);
    let open = shape.relu_below == 0u || below[i] > 0.0;
    dx[i] = select(0.0, dy[i] * scale, open);
}
