// zero_pad_backward: ZeroPadding2D's gradient at its input: the middle of the padded gradient
// (the zeros' gradient is dropped), times ReLU' of the layer below (x > 0, x being that layer's
// output and this op's input) when relu_below = 1.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   height, width, channels, padding (of the input), relu_below (0/1)
//   2 x       storage, read   f32[rows, height, width, channels]  this op's input (only read when relu_below)
//   3 dy      storage, read   f32[rows, height + 2·padding, width + 2·padding, channels]
//   4 dx      storage, rw     f32[rows, height, width, channels]
// Dispatch: (ceil(height · width · channels / 64), rows, 1): a thread per input element.

struct Shape { height: u32, width: u32, channels: u32, padding: u32, relu_below: u32, _p0: u32, _p1: u32, _p2: u32 }

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
    let p = shape.padding;
    let out_width = shape.width + 2u * p;
    let out_height = shape.height + 2u * p;
    let c = cell % c_count;
    let ix = (cell / c_count) % shape.width;
    let iy = cell / (c_count * shape.width);
    let i = row * shape.height * shape.width * c_count + cell;
    let g = dy[((row * out_height + iy + p) * out_width + ix + p) * c_count + c];
    let open = shape.relu_below == 0u || x[i] > 0.0;
    dx[i] = select(0.0, g, open);
}
