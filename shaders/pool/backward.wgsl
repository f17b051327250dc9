// max_pool_backward: each 2×2 window's gradient goes to the input that won it (the first maximum
// in row-major order, as max_pool_forward picks); the other inputs, and a trailing odd row or
// column, get 0. Times ReLU' of the layer below (x > 0, x being that layer's output and this
// op's input) when relu_below = 1. One thread per 2×2 block of the input and channel: it reads
// the block once and writes all of it (a block cut by the image's edge is a trailing row or
// column: zeros).
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   height, width, channels, out_height, out_width, relu_below (0/1)
//   2 x       storage, read   f32[rows, height, width, channels]  this op's input
//   3 dy      storage, read   f32[rows, out_height, out_width, channels]
//   4 dx      storage, rw     f32[rows, height, width, channels]
// Dispatch: (ceil(ceil(height / 2) · ceil(width / 2) · channels / 64), rows, 1).

struct Shape { height: u32, width: u32, channels: u32, out_height: u32, out_width: u32, relu_below: u32, _p0: u32, _p1: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let cell = gid.x;
    let row = gid.y;
    let c_count = shape.channels;
    let blocks_wide = (shape.width + 1u) / 2u;
    if (cell >= (shape.height + 1u) / 2u * blocks_wide * c_count || row >= step.rows) {
        return;
    }
    let c = cell % c_count;
    let bx = (cell / c_count) % blocks_wide;
    let by = cell / (c_count * blocks_wide);
    let top = ((row * shape.height + 2u * by) * shape.width + 2u * bx) * c_count + c;
    let bottom = top + shape.width * c_count;
    if (by >= shape.out_height || bx >= shape.out_width) {
        // A trailing row or column (or their corner): no window reads it.
        let has_right = 2u * bx + 1u < shape.width;
        let has_bottom = 2u * by + 1u < shape.height;
        dx[top] = 0.0;
        if (has_right) { dx[top + c_count] = 0.0; }
        if (has_bottom) { dx[bottom] = 0.0; }
        if (has_right && has_bottom) { dx[bottom + c_count] = 0.0; }
        return;
    }
    let v = vec4<f32>(x[top], x[top + c_count], x[bottom], x[bottom + c_count]);
    // The first maximum in row-major order.
    var winner = 0u;
    if (v.y > v[winner]) { winner = 1u; }
    if (v.z > v[winner]) { winner = 2u; }
    if (v.w > v[winner]) { winner = 3u; }
    var g = dy[((row * shape.out_height + by) * shape.out_width + bx) * c_count + c];
    if (shape.relu_below != 0u && v[winner] <= 0.0) {
        g = 0.0;
    }
    let is_winner = vec4<u32>(0u, 1u, 2u, 3u) == vec4<u32>(winner);
    let out = select(vec4<f32>(0.0), vec4<f32>(g), is_winner);
    dx[top] = out.x;
    dx[top + c_count] = out.y;
    dx[bottom] = out.z;
    dx[bottom + c_count] = out.w;
}
