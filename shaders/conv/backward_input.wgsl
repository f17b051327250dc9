// conv2d_backward_input: the gradient at a valid k×k convolution's NHWC input,
//   dx[r, iy, ix, c] = Σ_{ky, kx: 0 ≤ iy − ky < out_height, 0 ≤ ix − kx < out_width}
//                      Σ_f dz[r, iy − ky, ix − kx, f] · kernel[ky, kx, c, f],
// times ReLU' of the layer below (below > 0) when relu_below = 1. One thread per input element;
// the kernel is read transposed in place (filters % 4 == 0).
//
// Bindings (group 0); Step comes from common/step.wgsl; Shape, size() and the size constants from conv/shape.wgsl:
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   Shape (conv/shape.wgsl, prepended): relu_below (0/1)
//   2 dz      storage, read   f32[rows, out_height, out_width, filters]  gradient at the pre-activation output
//   3 params  storage, read   f32[..]  kernel [k, k, channels, filters] at kernel_offset
//   4 below   storage, read   f32[rows, height, width, channels]  output of the layer below (read when relu_below)
//   5 dx      storage, rw     f32[rows, height, width, channels]
// Dispatch: (ceil(height · width / 64), rows, channels).

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> dz: array<f32>;
@group(0) @binding(3) var<storage, read> params: array<f32>;
@group(0) @binding(4) var<storage, read> below: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let pixel = gid.x;
    let row = gid.y;
    let c = gid.z;
    if (pixel >= shape.height * shape.width || row >= step.rows) {
        return;
    }
    let iy = pixel / shape.width;
    let ix = pixel % shape.width;
    let i = ((row * shape.height + iy) * shape.width + ix) * shape.channels + c;
    if (shape.relu_below != 0u && below[i] <= 0.0) {
        dx[i] = 0.0;
        return;
    }
    let k = shape.kernel_size;
    let filters = shape.filters;
    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < k; ky = ky + 1u) {
        if (iy < ky || iy - ky >= shape.out_height) {
            continue;
        }
        for (var kx = 0u; kx < k; kx = kx + 1u) {
            if (ix < kx || ix - kx >= shape.out_width) {
                continue;
            }
            let g_base = ((row * shape.out_height + iy - ky) * shape.out_width + ix - kx) * filters;
            let w_base = shape.kernel_offset + ((ky * k + kx) * shape.channels + c) * filters;
            for (var f = 0u; f < filters; f = f + 4u) {
                let g = vec4<f32>(dz[g_base + f], dz[g_base + f + 1u], dz[g_base + f + 2u], dz[g_base + f + 3u]);
                let w = vec4<f32>(params[w_base + f], params[w_base + f + 1u], params[w_base + f + 2u],
                                  params[w_base + f + 3u]);
                acc = acc + g * w;
            }
        }
    }
    dx[i] = acc.x + acc.y + acc.z + acc.w;
}
