// tanh_backward: the gradient through tanh at its input, from the forward pass's output:
// dx = dy · (1 − y²).
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   width
//   2 y       storage, read   f32[rows, width]   tanh_forward's output
//   3 dy      storage, read   f32[rows, width]
//   4 dx      storage, rw     f32[rows, width]
// Dispatch: (ceil(width / 256), rows, 1).

struct Shape { width: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y;
    if (col >= shape.width || row >= step.rows) {
        return;
    }
    let i = row * shape.width + col;
    dx[i] = dy[i] * (1.0 - y[i] * y[i]);
}
