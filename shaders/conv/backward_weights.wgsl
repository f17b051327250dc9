// conv2d_backward_weights: dkernel and dbias of a valid k×k convolution over NHWC images, summed
// over batch rows first_row .. first_row + row_count (clipped to the batch) in one pass:
//   dkernel[ky, kx, c, f] = Σ_{r, oy, ox} x[r, oy + ky, ox + kx, c] · dz[r, oy, ox, f]
//   dbias[f]              = Σ_{r, oy, ox} dz[r, oy, ox, f]
// dkernel is a [k · k · channels, filters] matrix; each thread owns four consecutive rows of it
// (any taps and channels: the first layer has one channel) × four filters and sums their outer
// products over the rows' output pixels: eight loads feed 16 multiply-adds. The threads of the
// first four rows also write dbias for their filters. accumulate = 0 overwrites grads, 1 adds to
// them: the host splits a batch into chunks of rows so that no invocation loops more than
// llvmpipe allows (kernels::LOOP_ITERATIONS_BUDGET). conv/backward_weights_vec4.wgsl is faster
// where channels are a multiple of 4.
//
// Requires: filters % 4 == 0.
//
// Bindings (group 0); Step comes from common/step.wgsl; Shape, size() and the size constants from conv/shape.wgsl:
//   0 step    uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape   uniform                   Shape (conv/shape.wgsl, prepended): accumulate (0/1), first_row, row_count
//   2 x       storage, read   f32[rows, height, width, channels]  this layer's input
//   3 dz      storage, read   f32[rows, out_height, out_width, filters]  gradient at the pre-activation output
//   4 grads   storage, rw     f32[..]  dkernel at kernel_offset, dbias at bias_offset
// Dispatch: (ceil(k · k · channels / 64), filters / 4, 1), 16 threads per workgroup along x (few
// threads, long loops: small workgroups keep both cores of a CPU adapter busy).

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> grads: array<f32>;

fn dz4(at: u32) -> vec4<f32> {
    return vec4<f32>(dz[at], dz[at + 1u], dz[at + 2u], dz[at + 3u]);
}

// Writes (or adds) four filters' gradients at index `at` of grads.
fn store4(at: u32, v: vec4<f32>) {
    var total = v;
    if (shape.accumulate != 0u) {
        total = total + vec4<f32>(grads[at], grads[at + 1u], grads[at + 2u], grads[at + 3u]);
    }
    grads[at] = total.x;
    grads[at + 1u] = total.y;
    grads[at + 2u] = total.z;
    grads[at + 3u] = total.w;
}

@compute @workgroup_size(16)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let height = size(shape.height, HEIGHT);
    let width = size(shape.width, WIDTH);
    let channels = size(shape.channels, CHANNELS);
    let filters = size(shape.filters, FILTERS);
    let k = size(shape.kernel_size, KERNEL_SIZE);
    let out_height = size(shape.out_height, OUT_HEIGHT);
    let out_width = size(shape.out_width, OUT_WIDTH);
    let kernel_rows = k * k * channels;
    let row0 = gid.x * 4u;
    let f = gid.y * 4u;
    let first = shape.first_row;
    let end = min(step.rows, first + min(shape.row_count, step.rows));
    if (row0 >= kernel_rows || f >= filters || first >= end) {
        return;
    }
    // Each kernel row's offset in x from an output pixel's window corner (rows past the kernel
    // repeat the last one: computed, never stored).
    let rows4 = min(vec4<u32>(row0, row0 + 1u, row0 + 2u, row0 + 3u), vec4<u32>(kernel_rows - 1u));
    let taps = rows4 / channels;
    let offsets = ((taps / k) * width + taps % k) * channels + rows4 % channels;
    var acc = mat4x4<f32>();
    var bias = vec4<f32>(0.0);
    for (var r = first; r < end; r = r + 1u) {
        for (var oy = 0u; oy < out_height; oy = oy + 1u) {
            let x_row = (r * height + oy) * width * channels;
            let g_row = (r * out_height + oy) * out_width * filters + f;
            for (var ox = 0u; ox < out_width; ox = ox + 1u) {
                let at = x_row + ox * channels;
                let xv = vec4<f32>(x[at + offsets.x], x[at + offsets.y], x[at + offsets.z], x[at + offsets.w]);
                let g = dz4(g_row + ox * filters);
                acc = acc + mat4x4<f32>(g * xv.x, g * xv.y, g * xv.z, g * xv.w);
                bias = bias + g;
            }
        }
    }
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (row0 + j < kernel_rows) {
            store4(shape.kernel_offset + (row0 + j) * filters + f, acc[j]);
        }
    }
    if (row0 == 0u) {
        store4(shape.bias_offset + f, bias);
    }
}
