// conv2d_backward_weights: dkernel and dbias of a valid k×k convolution over NHWC images, in one pass:
//   dkernel[ky, kx, c, f] = Σ_{r, oy, ox} x[r, oy + ky, ox + kx, c] · dz[r, oy, ox, f]
//   dbias[f]              = Σ_{r, oy, ox} dz[r, oy, ox, f]
// Each thread owns four consecutive filters of one (ky, kx, c) tap; the threads of tap 0 also
// sum dbias for their filters. Overwrites (does not accumulate) grads.
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step: rows (this batch)
//   1 shape   uniform                   height, width, channels, filters, kernel_size, out_height,
//                                       out_width, kernel_offset, bias_offset
//   2 x       storage, read   f32[rows, height, width, channels]  this layer's input
//   3 dz      storage, read   f32[rows, out_height, out_width, filters]  gradient at the pre-activation output
//   4 grads   storage, rw     f32[..]  dkernel at kernel_offset, dbias at bias_offset
// Dispatch: (ceil(k · k · channels / 64), filters / 4, 1).

struct Step { batch_start: u32, rows: u32, t: u32, lr_t: f32, seed: u32, _p0: u32, _p1: u32, _p2: u32 }
struct Shape {
    height: u32, width: u32, channels: u32, filters: u32,
    kernel_size: u32, out_height: u32, out_width: u32, kernel_offset: u32,
    bias_offset: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let tap = gid.x;
    let f = gid.y * 4u;
    let k = shape.kernel_size;
    let c_count = shape.channels;
    if (tap >= k * k * c_count) {
        return;
    }
    let ky = tap / (k * c_count);
    let kx = (tap / c_count) % k;
    let c = tap % c_count;
    let filters = shape.filters;
    var acc = vec4<f32>(0.0);
    var bias = vec4<f32>(0.0);
    for (var row = 0u; row < step.rows; row = row + 1u) {
        for (var oy = 0u; oy < shape.out_height; oy = oy + 1u) {
            let x_row = ((row * shape.height + oy + ky) * shape.width + kx) * c_count + c;
            let g_row = (row * shape.out_height + oy) * shape.out_width * filters + f;
            for (var ox = 0u; ox < shape.out_width; ox = ox + 1u) {
                let g_at = g_row + ox * filters;
                let g = vec4<f32>(dz[g_at], dz[g_at + 1u], dz[g_at + 2u], dz[g_at + 3u]);
                acc = acc + x[x_row + ox * c_count] * g;
                bias = bias + g;
            }
        }
    }
    let out = shape.kernel_offset + tap * filters + f;
    grads[out] = acc.x;
    grads[out + 1u] = acc.y;
    grads[out + 2u] = acc.z;
    grads[out + 3u] = acc.w;
    if (tap == 0u) {
        let b = shape.bias_offset + f;
        grads[b] = bias.x;
        grads[b + 1u] = bias.y;
        grads[b + 2u] = bias.z;
        grads[b + 3u] = bias.w;
    }
}
