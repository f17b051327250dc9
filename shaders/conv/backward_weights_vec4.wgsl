// conv2d_backward_weights, vec4 variant: the same maths, bindings and Shape as
// conv/backward_weights.wgsl (summed over batch rows first_row .. first_row + row_count,
// overwriting grads or, accumulate = 1, adding to them),
//   dkernel[ky, kx, c, f] = Σ_{r, oy, ox} x[r, oy + ky, ox + kx, c] · dz[r, oy, ox, f]
//   dbias[f]              = Σ_{r, oy, ox} dz[r, oy, ox, f]
// Each thread owns four consecutive channels of one tap × 16 filters (four 4×4 matrices) and
// sums their outer products over the rows' output pixels from vec4 loads: five loads
// feed 64 multiply-adds (eight feed 16 in the scalar kernel). The threads of the first
// channel quad of tap 0 also sum dbias for their filters.
//
// Requires: channels, filters, kernel_offset, bias_offset multiples of 4; every bound buffer a
// multiple of 16 bytes long (the host checks both, and falls back to conv/backward_weights.wgsl).
//
// Bindings (group 0); Step comes from common/step.wgsl; Shape, size() and the size constants from conv/shape.wgsl:
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   Shape (conv/shape.wgsl, prepended): accumulate (0/1), first_row, row_count
//   2 x       storage, read   f32[rows, height, width, channels]  this layer's input (as vec4)
//   3 dz      storage, read   f32[rows, out_height, out_width, filters]  gradient at the pre-activation output (as vec4)
//   4 grads   storage, rw     f32[..]  dkernel at kernel_offset, dbias at bias_offset (as vec4)
// Dispatch: (ceil(k · k · channels / 64), ceil(filters / 16), 1), 16 threads per workgroup
// along x (few threads, long loops: small workgroups keep both cores of a CPU adapter busy).

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> dz: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> grads: array<vec4<f32>>;

// x ⊗ g: column j is x[j] · g (channel j's row of four filters).
fn outer(x: vec4<f32>, g: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(g * x.x, g * x.y, g * x.z, g * x.w);
}

// Writes (or adds) one vec4 of gradients.
fn store(at: u32, v: vec4<f32>) {
    grads[at] = select(v, v + grads[at], shape.accumulate != 0u);
}

// Stores the four kernel rows of one block (column j: channel 4·c4 + j of this tap) at filter
// group g.
fn store_block(block: mat4x4<f32>, first_row: u32, g: u32, f4s: u32) {
    if (g >= f4s) {
        return;
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        store(first_row + j * f4s + g, block[j]);
    }
}

@compute @workgroup_size(16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let height = size(shape.height, HEIGHT);
    let width = size(shape.width, WIDTH);
    let channels = size(shape.channels, CHANNELS);
    let f4s = size(shape.filters, FILTERS) / 4u;
    let k = size(shape.kernel_size, KERNEL_SIZE);
    let out_height = size(shape.out_height, OUT_HEIGHT);
    let out_width = size(shape.out_width, OUT_WIDTH);
    let c4s = channels / 4u;
    let quad = gid.x;
    let g0 = gid.y * 4u;
    let first = shape.first_row;
    let end = min(step.rows, first + min(shape.row_count, step.rows));
    if (quad >= k * k * c4s || g0 >= f4s || first >= end) {
        return;
    }
    let tap = quad / c4s;
    let c4 = quad % c4s;
    let ky = tap / k;
    let kx = tap % k;
    // Filter groups past the layer repeat the last one: computed, never stored.
    let groups = min(vec4<u32>(g0, g0 + 1u, g0 + 2u, g0 + 3u), vec4<u32>(f4s - 1u));
    var acc_a = mat4x4<f32>();
    var acc_b = mat4x4<f32>();
    var acc_c = mat4x4<f32>();
    var acc_d = mat4x4<f32>();
    for (var r = first; r < end; r = r + 1u) {
        for (var oy = 0u; oy < out_height; oy = oy + 1u) {
            let x_row = ((r * height + oy + ky) * width + kx) * c4s + c4;
            let g_row = (r * out_height + oy) * out_width * f4s;
            for (var ox = 0u; ox < out_width; ox = ox + 1u) {
                let xv = x[x_row + ox * c4s];
                let at = g_row + ox * f4s;
                acc_a = acc_a + outer(xv, dz[at + groups.x]);
                acc_b = acc_b + outer(xv, dz[at + groups.y]);
                acc_c = acc_c + outer(xv, dz[at + groups.z]);
                acc_d = acc_d + outer(xv, dz[at + groups.w]);
            }
        }
    }
    let first_row = shape.kernel_offset / 4u + tap * channels * f4s + 4u * c4 * f4s;
    store_block(acc_a, first_row, g0, f4s);
    store_block(acc_b, first_row, g0 + 1u, f4s);
    store_block(acc_c, first_row, g0 + 2u, f4s);
    store_block(acc_d, first_row, g0 + 3u, f4s);
    if (quad == 0u) {
        var bias_a = vec4<f32>(0.0);
        var bias_b = vec4<f32>(0.0);
        var bias_c = vec4<f32>(0.0);
        var bias_d = vec4<f32>(0.0);
        for (var m = first * out_height * out_width; m < end * out_height * out_width; m = m + 1u) {
            let at = m * f4s;
            bias_a = bias_a + dz[at + groups.x];
            bias_b = bias_b + dz[at + groups.y];
            bias_c = bias_c + dz[at + groups.z];
            bias_d = bias_d + dz[at + groups.w];
        }
        let b = shape.bias_offset / 4u;
        let biases = array<vec4<f32>, 4>(bias_a, bias_b, bias_c, bias_d);
        for (var i = 0u; i < 4u; i = i + 1u) {
            if (g0 + i < f4s) {
                store(b + g0 + i, biases[i]);
            }
        }
    }
}
