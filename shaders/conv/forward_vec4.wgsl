// conv2d_forward, vec4 variant: the same maths, bindings and Shape as conv/forward.wgsl,
//   y[r, oy, ox, f] = act(bias[f] + Σ_{ky, kx, c} x[r, oy + ky, ox + kx, c] · kernel[ky, kx, c, f]),
// computed as an implicit matrix product: the rows are the output pixels of the whole batch
// (m = r · out_height · out_width + oy · out_width + ox), the columns the filters, and the
// reduction runs over the taps (ky, kx) and the channels four at a time. Each thread computes
// 16 pixels × 16 filters, as the scalar kernel does, but as sixteen 4×4 matrix products from
// vec4 loads of inputs and weights: a quarter of the load instructions (CPU implementations of
// WebGPU/Vulkan pay per loaded lane), 1.7× faster on lavapipe for the CNN's second layer.
//
// Requires: channels, filters, kernel_offset, bias_offset multiples of 4; every bound buffer a
// multiple of 16 bytes long (the host checks both, and falls back to conv/forward.wgsl).
//
// Bindings (group 0); Step comes from common/step.wgsl; Shape, size() and the size constants from conv/shape.wgsl:
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   Shape (conv/shape.wgsl, prepended): relu (0/1)
//   2 x       storage, read   f32[rows, height, width, channels]   (as vec4)
//   3 params  storage, read   f32[..]  kernel [k, k, channels, filters] at kernel_offset, bias [filters] at bias_offset (as vec4)
//   4 y       storage, rw     f32[rows, out_height, out_width, filters]   (as vec4)
// Dispatch: (ceil(rows · out_height · out_width / 1024), ceil(filters / 16), 1), 64 threads per
// workgroup along x.

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;

// Four 4×4 blocks side by side: filter groups g, g + 1, g + 2, g + 3 of one quad of pixels.
struct Quad { a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>, d: mat4x4<f32> }

fn accumulate(acc: Quad, w: Quad, pixels: mat4x4<f32>) -> Quad {
    return Quad(acc.a + w.a * pixels, acc.b + w.b * pixels, acc.c + w.c * pixels, acc.d + w.d * pixels);
}

// The vec4 index in x of each pixel's window corner (input pixel (oy, ox) of its image), for four
// output pixels starting at m (pixels past the batch repeat the last one: computed, never stored).
fn corners(m: u32, total: u32, out_pixels: u32, out_width: u32, height: u32, width: u32, c4s: u32) -> vec4<u32> {
    let ms = min(vec4<u32>(m, m + 1u, m + 2u, m + 3u), vec4<u32>(total - 1u));
    let r = ms / out_pixels;
    let p = ms % out_pixels;
    return ((r * height + p / out_width) * width + p % out_width) * c4s;
}

// The four pixels' channels c4.. at offset `at` from their corners, one pixel per matrix column.
fn pixel_block(starts: vec4<u32>, at: u32) -> mat4x4<f32> {
    return mat4x4<f32>(x[starts.x + at], x[starts.y + at], x[starts.z + at], x[starts.w + at]);
}

// Four kernel rows (channels 4·c4.. of one tap) at column groups `groups`, one row per column.
fn kernel_quad(groups: vec4<u32>, row: u32, f4s: u32) -> Quad {
    return Quad(
        mat4x4<f32>(params[groups.x + row], params[groups.x + row + f4s], params[groups.x + row + 2u * f4s], params[groups.x + row + 3u * f4s]),
        mat4x4<f32>(params[groups.y + row], params[groups.y + row + f4s], params[groups.y + row + 2u * f4s], params[groups.y + row + 3u * f4s]),
        mat4x4<f32>(params[groups.z + row], params[groups.z + row + f4s], params[groups.z + row + 2u * f4s], params[groups.z + row + 3u * f4s]),
        mat4x4<f32>(params[groups.w + row], params[groups.w + row + f4s], params[groups.w + row + 2u * f4s], params[groups.w + row + 3u * f4s]),
    );
}

// Stores one 4×4 block (column i: pixel m + i) at filter group g, with bias and activation.
fn store_block(block: mat4x4<f32>, m: u32, total: u32, g: u32, f4s: u32) {
    if (g >= f4s) {
        return;
    }
    let bias = params[shape.bias_offset / 4u + g];
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (m + i < total) {
            var v = block[i] + bias;
            if (shape.relu != 0u) {
                v = max(v, vec4<f32>(0.0));
            }
            y[(m + i) * f4s + g] = v;
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
    let c4s = channels / 4u;
    let total = step.rows * out_pixels;
    let m0 = gid.x * 16u;
    let g0 = gid.y * 4u;
    if (m0 >= total || g0 >= f4s) {
        return;
    }
    let xa = corners(m0, total, out_pixels, out_width, height, width, c4s);
    let xb = corners(m0 + 4u, total, out_pixels, out_width, height, width, c4s);
    let xc = corners(m0 + 8u, total, out_pixels, out_width, height, width, c4s);
    let xd = corners(m0 + 12u, total, out_pixels, out_width, height, width, c4s);
    // Filter groups past the layer repeat the last one: computed, never stored.
    let groups = shape.kernel_offset / 4u + min(vec4<u32>(g0, g0 + 1u, g0 + 2u, g0 + 3u), vec4<u32>(f4s - 1u));
    var acc_a = Quad();
    var acc_b = Quad();
    var acc_c = Quad();
    var acc_d = Quad();
    for (var ky = 0u; ky < k; ky = ky + 1u) {
        for (var kx = 0u; kx < k; kx = kx + 1u) {
            let tap_at = (ky * width + kx) * c4s;
            let tap_row = (ky * k + kx) * channels;
            for (var c4 = 0u; c4 < c4s; c4 = c4 + 1u) {
                let w = kernel_quad(groups, (tap_row + 4u * c4) * f4s, f4s);
                acc_a = accumulate(acc_a, w, pixel_block(xa, tap_at + c4));
                acc_b = accumulate(acc_b, w, pixel_block(xb, tap_at + c4));
                acc_c = accumulate(acc_c, w, pixel_block(xc, tap_at + c4));
                acc_d = accumulate(acc_d, w, pixel_block(xd, tap_at + c4));
            }
        }
    }
    store_quad(acc_a, m0, total, g0, f4s);
    store_quad(acc_b, m0 + 4u, total, g0, f4s);
    store_quad(acc_c, m0 + 8u, total, g0, f4s);
    store_quad(acc_d, m0 + 12u, total, g0, f4s);
}
