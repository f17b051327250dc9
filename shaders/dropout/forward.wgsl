// dropout_forward: inverted dropout. Training: y = x · keep / (1 − rate), where keep is a
// counter-based hash of (step seed, dropout op index, element), so the backward pass can
// regenerate the mask instead of storing it. Evaluation (training = 0): y = x.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch), seed (this step)
//   1 shape   uniform                   width, rate, index (which dropout op), training (0/1)
//   2 x       storage, read   f32[rows, width]
//   3 y       storage, rw     f32[rows, width]
// Dispatch: (ceil(width / 256), rows, 1). Compiled after dropout/random.wgsl (mix, dropout_draw).

struct Shape { width: u32, rate: f32, index: u32, training: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    if (col >= shape.width || row >= step.rows) {
        return;
    }
    let i = row * shape.width + col;
    if (shape.training == 0u) {
        y[i] = x[i];
        return;
    }
    let draw = dropout_draw(step.seed, shape.index, i);
    y[i] = select(0.0, x[i] / (1.0 - shape.rate), draw >= shape.rate);
}
