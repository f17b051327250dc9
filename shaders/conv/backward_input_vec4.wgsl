// conv2d_backward_input, vec4 variant: the same maths, bindings and Shape as
// conv/backward_input.wgsl,
//   dx[r, iy, ix, c] = Σ_{ky, kx: 0 ≤ iy − ky < out_height, 0 ≤ ix − kx < out_width}
//                      Σ_f dz[r, iy − ky, ix − kx, f] · kernel[ky, kx, c, f],
// times ReLU' of the layer below (below > 0) when relu_below = 1, computed as an implicit matrix
// product: the rows are the input pixels of the whole batch, the columns the channels, and the
// reduction runs over the taps and the filters four at a time (a tap that falls outside the
// output contributes zero). Each thread computes 16 pixels × 16 channels as sixteen 4×4
// matrices from vec4 loads.
//
// Requires: channels, filters, kernel_offset, bias_offset multiples of 4; every bound buffer a
// multiple of 16 bytes long (the host checks both, and falls back to conv/backward_input.wgsl).
//
// Bindings (group 0); Step comes from common/step.wgsl; Shape, size() and the size constants from conv/shape.wgsl:
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   Shape (conv/shape.wgsl, prepended): relu_below (0/1)
//   2 dz      storage, read   f32[rows, out_height, out_width, filters]  gradient at the pre-activation output (as vec4)
//   3 params  storage, read   f32[..]  kernel [k, k, channels, filters] at kernel_offset (as vec4)
//   4 below   storage, read   f32[rows, height, width, channels]  output of the layer below (as vec4)
//   5 dx      storage, rw     f32[rows, height, width, channels]  (as vec4)
// Dispatch: (ceil(rows · height · width / 1024), ceil(channels / 16), 1), 64 threads per
// workgroup along x.

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> dz: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> params: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> below: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> dx: array<vec4<f32>>;

// Four 4×4 blocks side by side: channel groups g, g + 1, g + 2, g + 3 of one quad of pixels.
struct Quad { a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>, d: mat4x4<f32> }

fn accumulate(acc: Quad, w: Quad, grads: mat4x4<f32>) -> Quad {
    return Quad(acc.a + w.a * grads, acc.b + w.b * grads, acc.c + w.c * grads, acc.d + w.d * grads);
}

// Four input pixels starting at n (past the batch: the last one, computed and never stored) as
// their image, row and column.
struct Pixels { r: vec4<u32>, iy: vec4<u32>, ix: vec4<u32> }

fn pixels_at(n: u32, total: u32, height: u32, width: u32) -> Pixels {
    let ns = min(vec4<u32>(n, n + 1u, n + 2u, n + 3u), vec4<u32>(total - 1u));
    let q = ns % (height * width);
    return Pixels(ns / (height * width), q / width, q % width);
}

// Where each pixel reads dz through tap (ky, kx): the vec4 index of output pixel
// (iy − ky, ix − kx), and whether that pixel exists (else index 0, masked).
struct Taps { at: vec4<u32>, inside: vec4<bool> }

fn taps(p: Pixels, ky: u32, kx: u32, out_height: u32, out_width: u32, f4s: u32) -> Taps {
    // (Parenthesised: WGSL does not let `&` and comparisons mix without them; Chromium's Tint
    // refuses the shader, naga accepts it.)
    let inside = (p.iy >= vec4<u32>(ky)) & (p.iy - vec4<u32>(ky) < vec4<u32>(out_height))
        & (p.ix >= vec4<u32>(kx)) & (p.ix - vec4<u32>(kx) < vec4<u32>(out_width));
    let at = ((p.r * out_height + p.iy - vec4<u32>(ky)) * out_width + p.ix - vec4<u32>(kx)) * f4s;
    return Taps(select(vec4<u32>(0u), at, inside), inside);
}

// The four pixels' gradients at filter group f4, one pixel per matrix column (0 outside).
fn grad_block(t: Taps, f4: u32) -> mat4x4<f32> {
    let zero = vec4<f32>(0.0);
    return mat4x4<f32>(
        select(zero, dz[t.at.x + f4], t.inside.x),
        select(zero, dz[t.at.y + f4], t.inside.y),
        select(zero, dz[t.at.z + f4], t.inside.z),
        select(zero, dz[t.at.w + f4], t.inside.w),
    );
}

// The kernel at filter group f4 for channel groups `rows` (vec4 index of each group's first
// kernel row in this tap), transposed: column j of each block holds channel j's four filters'
// weights as a row, so block · gradients gives channels.
fn kernel_quad(rows: vec4<u32>, f4: u32, f4s: u32) -> Quad {
    return Quad(
        transpose(mat4x4<f32>(params[rows.x + f4], params[rows.x + f4s + f4], params[rows.x + 2u * f4s + f4], params[rows.x + 3u * f4s + f4])),
        transpose(mat4x4<f32>(params[rows.y + f4], params[rows.y + f4s + f4], params[rows.y + 2u * f4s + f4], params[rows.y + 3u * f4s + f4])),
        transpose(mat4x4<f32>(params[rows.z + f4], params[rows.z + f4s + f4], params[rows.z + 2u * f4s + f4], params[rows.z + 3u * f4s + f4])),
        transpose(mat4x4<f32>(params[rows.w + f4], params[rows.w + f4s + f4], params[rows.w + 2u * f4s + f4], params[rows.w + 3u * f4s + f4])),
    );
}

// Stores one 4×4 block (column i: pixel n + i) at channel group g, masked by ReLU'(below).
fn store_block(block: mat4x4<f32>, n: u32, total: u32, g: u32, c4s: u32) {
    if (g >= c4s) {
        return;
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (n + i < total) {
            let at = (n + i) * c4s + g;
            var v = block[i];
            if (shape.relu_below != 0u) {
                v = select(vec4<f32>(0.0), v, below[at] > vec4<f32>(0.0));
            }
            dx[at] = v;
        }
    }
}

fn store_quad(acc: Quad, n: u32, total: u32, g: u32, c4s: u32) {
    store_block(acc.a, n, total, g, c4s);
    store_block(acc.b, n, total, g + 1u, c4s);
    store_block(acc.c, n, total, g + 2u, c4s);
    store_block(acc.d, n, total, g + 3u, c4s);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let height = size(shape.height, HEIGHT);
    let width = size(shape.width, WIDTH);
    let channels = size(shape.channels, CHANNELS);
    let f4s = size(shape.filters, FILTERS) / 4u;
    let k = size(shape.kernel_size, KERNEL_SIZE);
    let out_height = size(shape.out_height, OUT_HEIGHT);
    let out_width = size(shape.out_width, OUT_WIDTH);
    let c4s = channels / 4u;
    let total = step.rows * height * width;
    let n0 = gid.x * 16u;
    let g0 = gid.y * 4u;
    if (n0 >= total || g0 >= c4s) {
        return;
    }
    let pa = pixels_at(n0, total, height, width);
    let pb = pixels_at(n0 + 4u, total, height, width);
    let pc = pixels_at(n0 + 8u, total, height, width);
    let pd = pixels_at(n0 + 12u, total, height, width);
    // Channel groups past the layer repeat the last one: computed, never stored.
    let groups = min(vec4<u32>(g0, g0 + 1u, g0 + 2u, g0 + 3u), vec4<u32>(c4s - 1u));
    var acc_a = Quad();
    var acc_b = Quad();
    var acc_c = Quad();
    var acc_d = Quad();
    for (var ky = 0u; ky < k; ky = ky + 1u) {
        for (var kx = 0u; kx < k; kx = kx + 1u) {
            let ta = taps(pa, ky, kx, out_height, out_width, f4s);
            let tb = taps(pb, ky, kx, out_height, out_width, f4s);
            let tc = taps(pc, ky, kx, out_height, out_width, f4s);
            let td = taps(pd, ky, kx, out_height, out_width, f4s);
            let rows = shape.kernel_offset / 4u + ((ky * k + kx) * channels + 4u * groups) * f4s;
            for (var f4 = 0u; f4 < f4s; f4 = f4 + 1u) {
                let w = kernel_quad(rows, f4, f4s);
                acc_a = accumulate(acc_a, w, grad_block(ta, f4));
                acc_b = accumulate(acc_b, w, grad_block(tb, f4));
                acc_c = accumulate(acc_c, w, grad_block(tc, f4));
                acc_d = accumulate(acc_d, w, grad_block(td, f4));
            }
        }
    }
    store_quad(acc_a, n0, total, g0, c4s);
    store_quad(acc_b, n0 + 4u, total, g0, c4s);
    store_quad(acc_c, n0 + 8u, total, g0, c4s);
    store_quad(acc_d, n0 + 12u, total, g0, c4s);
}
