// conv2d_forward: a valid k×k convolution, stride 1, of NHWC images, bias and ReLU fused:
//   y[r, oy, ox, f] = act(bias[f] + Σ_{ky, kx, c} x[r, oy + ky, ox + kx, c] · kernel[ky, kx, c, f]),
// computed as an implicit matrix product: the rows are the output pixels of the whole batch
// (m = r · out_height · out_width + oy · out_width + ox), the columns the filters, the reduction
// runs over the taps (ky, kx) and channels. Each thread computes 16 pixels × 16 filters as
// sixteen 4×4 outer-product sums: per tap and channel it loads 16 input values and 16 weights
// for 256 multiply-adds, since CPU implementations of WebGPU/Vulkan pay per loaded lane. Any
// channel count and offsets; conv/forward_vec4.wgsl is faster where channels are a multiple
// of 4.
//
// Requires: filters % 4 == 0.
//
// Bindings (group 0); Step comes from common/step.wgsl; Shape, size() and the size constants from conv/shape.wgsl:
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   Shape (conv/shape.wgsl, prepended): relu (0/1)
//   2 x       storage, read   f32[rows, height, width, channels]
//   3 params  storage, read   f32[..]  kernel [k, k, channels, filters] at kernel_offset, bias [filters] at bias_offset
//   4 y       storage, rw     f32[rows, out_height, out_width, filters]
// Dispatch: (ceil(rows · out_height · out_width / 1024), ceil(filters / 16), 1), 64 threads per
// workgroup along x.

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Four 4×4 blocks side by side: filter groups g.. g + 3 of four pixels (column i: pixel i).
struct Quad { a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>, d: mat4x4<f32> }

// Four filter groups' weights of one tap and channel.
struct Weights { a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32> }

// pixels ⊗ weights: column i gains pixel i's input value times each filter's weight.
// Four consecutive floats of params from index `at`.
fn param4(at: u32) -> vec4<f32> {
    return vec4<f32>(params[at], params[at + 1u], params[at + 2u], params[at + 3u]);
}

fn outer(v: vec4<f32>, w: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(w * v.x, w * v.y, w * v.z, w * v.w);
}

fn accumulate(acc: Quad, w: Weights, v: vec4<f32>) -> Quad {
    return Quad(acc.a + outer(v, w.a), acc.b + outer(v, w.b), acc.c + outer(v, w.c), acc.d + outer(v, w.d));
}

// The index in x of each pixel's window corner (input pixel (oy, ox) of its image), for four
// output pixels starting at m (pixels past the batch repeat the last one: computed, never stored).
fn corners(m: u32, total: u32, out_pixels: u32, out_width: u32, height: u32, width: u32, channels: u32) -> vec4<u32> {
    let ms = min(vec4<u32>(m, m + 1u, m + 2u, m + 3u), vec4<u32>(total - 1u));
    let r = ms / out_pixels;
    let p = ms % out_pixels;
    return ((r * height + p / out_width) * width + p % out_width) * channels;
}

// The four pixels' input values at offset `at` from their corners.
fn inputs(starts: vec4<u32>, at: u32) -> vec4<f32> {
    return vec4<f32>(x[starts.x + at], x[starts.y + at], x[starts.z + at], x[starts.w + at]);
}

// Stores one 4×4 block (column i: pixel m + i) at filter group g, with bias and activation.
fn store_block(block: mat4x4<f32>, m: u32, total: u32, g: u32, f4s: u32) {
    if (g >= f4s) {
        return;
    }
    let bias = param4(shape.bias_offset + 4u * g);
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (m + i < total) {
            var v = block[i] + bias;
            if (shape.relu != 0u) {
                v = max(v, vec4<f32>(0.0));
            }
            let at = ((m + i) * f4s + g) * 4u;
            y[at] = v.x;
            y[at + 1u] = v.y;
            y[at + 2u] = v.z;
            y[at + 3u] = v.w;
        }
    }
}

fn store_quad(acc: Quad, m: u32, total: u32, g: u32, f4s: u32) {
    store_block(acc.a, m, total, g, f4s);
    store_block(acc.b, m, total, g + 1u, f4s);
    store_block(acc.c, m, total, g + 2u, f4s);
    store_block(acc.d, m, total, g + 3u, f4s);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let height = size(shape.height, HEIGHT);
    let width = size(shape.width, WIDTH);
    let channels = size(shape.channels, CHANNELS);
    let f4s = size(shape.filters, FILTERS) / 4u;
    let k = size(shape.kernel_size, KERNEL_SIZE);
    let out_width = size(shape.out_width, OUT_WIDTH);
    let out_pixels = size(shape.out_height, OUT_HEIGHT) * out_width;
    let total = step.rows * out_pixels;
    let m0 = gid.x * 16u;
    let g0 = gid.y * 4u;
    if (m0 >= total || g0 >= f4s) {
        return;
    }
    let xa = corners(m0, total, out_pixels, out_width, height, width, channels);
    let xb = corners(m0 + 4u, total, out_pixels, out_width, height, width, channels);
    let xc = corners(m0 + 8u, total, out_pixels, out_width, height, width, channels);
    let xd = corners(m0 + 12u, total, out_pixels, out_width, height, width, channels);
    // Filter groups past the layer repeat the last one: computed, never stored.
    let groups = shape.kernel_offset + 4u * min(vec4<u32>(g0, g0 + 1u, g0 + 2u, g0 + 3u), vec4<u32>(f4s - 1u));
    var acc_a = Quad();
    var acc_b = Quad();
    var acc_c = Quad();
    var acc_d = Quad();
    for (var ky = 0u; ky < k; ky = ky + 1u) {
        for (var kx = 0u; kx < k; kx = kx + 1u) {
            let tap_at = (ky * width + kx) * channels;
            let tap_row = (ky * k + kx) * channels;
            for (var c = 0u; c < channels; c = c + 1u) {
                let row = (tap_row + c) * 4u * f4s;
                let w = Weights(param4(groups.x + row), param4(groups.y + row), param4(groups.z + row), param4(groups.w + row));
                acc_a = accumulate(acc_a, w, inputs(xa, tap_at + c));
                acc_b = accumulate(acc_b, w, inputs(xb, tap_at + c));
                acc_c = accumulate(acc_c, w, inputs(xc, tap_at + c));
                acc_d = accumulate(acc_d, w, inputs(xd, tap_at + c));
            }
        }
    }
    store_quad(acc_a, m0, total, g0, f4s);
    store_quad(acc_b, m0 + 4u, total, g0, f4s);
    store_quad(acc_c, m0 + 8u, total, g0, f4s);
    store_quad(acc_d, m0 + 12u, total, g0, f4s);
}
