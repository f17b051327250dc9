// max_pool_forward: 2×2 max pooling, stride 2, of NHWC images (a trailing odd row or column is
// dropped, as Keras's "valid" padding does). Ties go to the first maximum in row-major order.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   height, width, channels, out_height, out_width
//   2 x       storage, read   f32[rows, height, width, channels]
//   3 y       storage, rw     f32[rows, out_height, out_width, channels]
// Dispatch: (ceil(out_height · out_width · channels / 64), rows, 1).

struct Shape { height: u32, width: u32, channels: u32, out_height: u32, out_width: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let cell = gid.x;
    let row = gid.y;
    let c_count = shape.channels;
    if (cell >= shape.out_height * shape.out_width * c_count || row >= step.rows) {
        return;
    }
    let c = cell % c_count;
    let ox = (cell / c_count) % shape.out_width;
    let oy = cell / (c_count * shape.out_width);
    let top = ((row * shape.height + 2u * oy) * shape.width + 2u * ox) * c_count + c;
    let bottom = top + shape.width * c_count;
    let best = max(max(x[top], x[top + c_count]), max(x[bottom], x[bottom + c_count]));
    y[row * shape.out_height * shape.out_width * c_count + cell] = best;
}
