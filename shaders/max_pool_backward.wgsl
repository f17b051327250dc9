// max_pool_backward: each 2×2 window's gradient goes to the input that won it (the first maximum
// in row-major order, as max_pool_forward picks); the other inputs, and a trailing odd row or
// column, get 0. Times ReLU' of the layer below (x > 0, x being that layer's output and this
// op's input) when relu_below = 1. One thread per input element.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step: rows (this batch)
//   1 shape   uniform                   height, width, channels, out_height, out_width, relu_below (0/1)
//   2 x       storage, read   f32[rows, height, width, channels]  this op's input
//   3 dy      storage, read   f32[rows, out_height, out_width, channels]
//   4 dx      storage, rw     f32[rows, height, width, channels]
// Dispatch: (ceil(height · width · channels / 64), rows, 1).

struct Step { batch_start: u32, rows: u32, t: u32, lr_t: f32, seed: u32, _p0: u32, _p1: u32, _p2: u32 }
struct Shape { height: u32, width: u32, channels: u32, out_height: u32, out_width: u32, relu_below: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let cell = gid.x;
    let row = gid.y;
    let c_count = shape.channels;
    if (cell >= shape.height * shape.width * c_count || row >= step.rows) {
        return;
    }
    let c = cell % c_count;
    let ix = (cell / c_count) % shape.width;
    let iy = cell / (c_count * shape.width);
    let i = row * shape.height * shape.width * c_count + cell;
    let oy = iy / 2u;
    let ox = ix / 2u;
    if (oy >= shape.out_height || ox >= shape.out_width) {
        dx[i] = 0.0;
        return;
    }
    let top = ((row * shape.height + 2u * oy) * shape.width + 2u * ox) * c_count + c;
    let bottom = top + shape.width * c_count;
    var winner = top;
    if (x[top + c_count] > x[winner]) { winner = top + c_count; }
    if (x[bottom] > x[winner]) { winner = bottom; }
    if (x[bottom + c_count] > x[winner]) { winner = bottom + c_count; }
    let open = winner == i && (shape.relu_below == 0u || x[i] > 0.0);
    let g = dy[((row * shape.out_height + oy) * shape.out_width + ox) * c_count + c];
    dx[i] = select(0.0, g, open);
}
