// tanh_forward: the tanh activation, elementwise: y = tanh(x), written as
// sign(x) · (1 − e^(−2|x|)) / (1 + e^(−2|x|)) so that no exponential overflows at large |x|.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   width
//   2 x       storage, read   f32[rows, width]
//   3 y       storage, rw     f32[rows, width]
// Dispatch: (ceil(width / 256), rows, 1).

struct Shape { width: u32, _p0: u32, _p1: u32, _p2: u32 }

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
    let e = exp(-2.0 * abs(x[i]));
    y[i] = sign(x[i]) * (1.0 - e) / (1.0 + e);
}
