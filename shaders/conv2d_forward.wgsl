// conv2d_forward: a valid k×k convolution, stride 1, of NHWC images, bias and ReLU fused:
//   y[r, oy, ox, f] = act(bias[f] + Σ_{ky, kx, c} x[r, oy + ky, ox + kx, c] · kernel[ky, kx, c, f]).
// Each thread computes four consecutive filters of one output pixel (filters % 4 == 0).
//
// Bindings (group 0):
//   0 step    uniform, dynamic offset   Step: rows (this batch)
//   1 shape   uniform                   height, width, channels, filters, kernel_size, out_height,
//                                       out_width, kernel_offset, bias_offset, relu (0/1)
//   2 x       storage, read   f32[rows, height, width, channels]
//   3 params  storage, read   f32[..]  kernel [k, k, channels, filters] at kernel_offset, bias [filters] at bias_offset
//   4 y       storage, rw     f32[rows, out_height, out_width, filters]
// Dispatch: (ceil(out_height · out_width / 64), rows, filters / 4).

struct Step { batch_start: u32, rows: u32, t: u32, lr_t: f32, seed: u32, _p0: u32, _p1: u32, _p2: u32 }
struct Shape {
    height: u32, width: u32, channels: u32, filters: u32,
    kernel_size: u32, out_height: u32, out_width: u32, kernel_offset: u32,
    bias_offset: u32, relu: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let pixel = gid.x;
    let row = gid.y;
    let f = gid.z * 4u;
    if (pixel >= shape.out_height * shape.out_width || row >= step.rows) {
        return;
    }
    let oy = pixel / shape.out_width;
    let ox = pixel % shape.out_width;
    let k = shape.kernel_size;
    let c_count = shape.channels;
    let filters = shape.filters;
    let b = shape.bias_offset + f;
    var acc = vec4<f32>(params[b], params[b + 1u], params[b + 2u], params[b + 3u]);
    for (var ky = 0u; ky < k; ky = ky + 1u) {
        for (var kx = 0u; kx < k; kx = kx + 1u) {
            let x_base = ((row * shape.height + oy + ky) * shape.width + ox + kx) * c_count;
            var w_at = shape.kernel_offset + (ky * k + kx) * c_count * filters + f;
            for (var c = 0u; c < c_count; c = c + 1u) {
                let w = vec4<f32>(params[w_at], params[w_at + 1u], params[w_at + 2u], params[w_at + 3u]);
                acc = acc + x[x_base + c] * w;
                w_at = w_at + filters;
            }
        }
    }
    if (shape.relu != 0u) {
        acc = max(acc, vec4<f32>(0.0));
    }
    let out = ((row * shape.out_height + oy) * shape.out_width + ox) * filters + f;
    y[out] = acc.x;
    y[out + 1u] = acc.y;
    y[out + 2u] = acc.z;
    y[out + 3u] = acc.w;
}
