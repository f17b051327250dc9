// dropout_backward: dx = dy · keep / (1 − rate) with the same keep mask as dropout_forward (the
// hash of step seed, op index and element), times ReLU' of the layer below (below > 0) when
// relu_below = 1, so dx is the gradient at that layer's pre-activation.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch), seed (this step)
//   1 shape   uniform                   width, rate, index (which dropout op), relu_below (0/1)
//   2 dy      storage, read   f32[rows, width]  gradient at this op's output
//   3 below   storage, read   f32[rows, width]  output of the layer below (only read when relu_below)
//   4 dx      storage, rw     f32[rows, width]
// Dispatch: (ceil(width / 256), rows, 1). Compiled after dropout/random.wgsl (mix, dropout_draw).

struct Shape { width: u32, rate: f32, index: u32, relu_below: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> below: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    if (col >= shape.width || row >= step.rows) {
        return;
    }
    let i = row * shape.width + col;
    let draw = dropout_draw(step.seed, shape.index, i);
    let open = draw >= shape.rate && (shape.relu_below == 0u || below[i] > 0.0);
    dx[i] = select(0.0, dy[i] / (1.0 - shape.rate), open);
}
