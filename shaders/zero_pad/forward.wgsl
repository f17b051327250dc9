// zero_pad_forward: Keras's ZeroPadding2D(padding) of NHWC images: `padding` rows of zeros above
// and below, `padding` columns left and right; the image itself is copied into the middle.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   height, width, channels, padding (of the input)
//   2 x       storage, read   f32[rows, height, width, channels]
//   3 y       storage, rw     f32[rows, height + 2·padding, width + 2·padding, channels]
// Dispatch: (ceil((height + 2·padding) · (width + 2·padding) · channels / 64), rows, 1): a thread
// per output element.

struct Shape { height: u32, width: u32, channels: u32, padding: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let cell = gid.x;
    let row = gid.y;
    let c_count = shape.channels;
    let p = shape.padding;
    let out_width = shape.width + 2u * p;
    let out_height = shape.height + 2u * p;
    if (cell >= out_height * out_width * c_count || row >= step.rows) {
        return;
    }
    let c = cell % c_count;
    let ox = (cell / c_count) % out_width;
    let oy = cell / (c_count * out_width);
    var v = 0.0;
    // (ox − p and oy − p wrap below 0 to large numbers: outside too.)
    let ix = ox - p;
    let iy = oy - p;
    if (ix < shape.width && iy < shape.height) {
        v = x[((row * shape.height + iy) * shape.width + ix) * c_count + c];
    }
    y[row * out_height * out_width * c_count + cell] = v;
}
