// conv2d_forward_tiled: y = act(conv(x, kernel) + bias), a valid k×k convolution over NHWC
// images, for GPUs: an invocation per output pixel and four filters (a few outputs each, so a
// batch of 100 launches tens of thousands of invocations); each input value read feeds four
// multiply-adds. Any channel and filter counts.
//
// Bindings (group 0); Step comes from common/step.wgsl; Shape, size() and the size constants from conv/shape.wgsl:
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   Shape (conv/shape.wgsl, prepended): relu (0/1)
//   2 x       storage, read   f32[rows, height, width, channels]
//   3 params  storage, read   f32[..]  kernel [k, k, channels, filters] at kernel_offset, bias [filters] at bias_offset
//   4 y       storage, rw     f32[rows, out_height, out_width, filters]
// Dispatch: (ceil(rows · out_height · out_width / 64), ceil(filters / 4), 1).

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let height = size(shape.height, HEIGHT);
    let width = size(shape.width, WIDTH);
    let channels = size(shape.channels, CHANNELS);
    let filters = size(shape.filters, FILTERS);
    let k = size(shape.kernel_size, KERNEL_SIZE);
    let out_width = size(shape.out_width, OUT_WIDTH);
    let out_pixels = size(shape.out_height, OUT_HEIGHT) * out_width;
    let m = gid.x;
    let f0 = gid.y * 4u;
    if (m >= step.rows * out_pixels || f0 >= filters) {
        return;
    }
    let r = m / out_pixels;
    let pixel = m % out_pixels;
    let corner = ((r * height + pixel / out_width) * width + pixel % out_width) * channels;
    // Filters past the layer repeat the last one: computed, never stored.
    let fs = min(vec4<u32>(f0, f0 + 1u, f0 + 2u, f0 + 3u), vec4<u32>(filters - 1u));
    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < k; ky = ky + 1u) {
        for (var kx = 0u; kx < k; kx = kx + 1u) {
            let tap_at = corner + (ky * width + kx) * channels;
            let tap_row = (ky * k + kx) * channels;
            for (var c = 0u; c < channels; c = c + 1u) {
                let row = shape.kernel_offset + (tap_row + c) * filters;
                let w = vec4<f32>(params[row + fs.x], params[row + fs.y], params[row + fs.z], params[row + fs.w]);
                acc = acc + x[tap_at + c] * w;
            }
        }
    }
    let b = shape.bias_offset;
    var v = acc + vec4<f32>(params[b + fs.x], params[b + fs.y], params[b + fs.z], params[b + fs.w]);
    if (shape.relu != 0u) {
        v = max(v, vec4<f32>(0.0));
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (f0 + j < filters) {
            y[m * filters + f0 + j] = v[j];
        }
    }
}
