// conv2d_backward_weights_partials: the weight gradient of a valid k×k convolution over NHWC
// images, for GPUs, split over the batch's output positions (row, oy, ox) in chunks of
// positions_per_chunk: chunk c writes its own partial sums
//   partial[c][ky, kx, ch, f] = Σ_{positions m of chunk c} x[r, oy + ky, ox + kx, ch] · dz[m, f]
//   partial[c][k · k · channels, f] = Σ_{m of chunk c} dz[m, f]         (dbias: a row of ones)
// and partials/sum.wgsl adds the chunks up in order (no atomics: a run stays reproducible). Each
// invocation owns four rows of the [k · k · channels + 1, filters] result × four filters of one
// chunk; chunks past the batch write zeros. Any channel and filter counts.
//
// Bindings (group 0); Step comes from common/step.wgsl; Shape, size() and the size constants from conv/shape.wgsl:
//   0 step      uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape     uniform                   Shape (conv/shape.wgsl, prepended): positions_per_chunk, chunks
//   2 x         storage, read   f32[rows, height, width, channels]  this layer's input
//   3 dz        storage, read   f32[rows, out_height, out_width, filters]  gradient at the pre-activation output
//   4 partials  storage, rw     f32[chunks, k · k · channels + 1, filters]
// Dispatch: (ceil(ceil((k · k · channels + 1) / 4) · ceil(filters / 4) / 64), chunks, 1).

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let height = size(shape.height, HEIGHT);
    let width = size(shape.width, WIDTH);
    let channels = size(shape.channels, CHANNELS);
    let filters = size(shape.filters, FILTERS);
    let k = size(shape.kernel_size, KERNEL_SIZE);
    let out_width = size(shape.out_width, OUT_WIDTH);
    let out_pixels = size(shape.out_height, OUT_HEIGHT) * out_width;
    let kernel_rows = k * k * channels;
    let result_rows = kernel_rows + 1u;
    let f4s = (filters + 3u) / 4u;
    let block = gid.x;
    let chunk = gid.y;
    if (block >= ((result_rows + 3u) / 4u) * f4s) {
        return;
    }
    let row0 = (block / f4s) * 4u;
    let f0 = (block % f4s) * 4u;
    let rows4 = vec4<u32>(row0, row0 + 1u, row0 + 2u, row0 + 3u);
    // Each kernel row's offset in x from an output pixel's window corner; the bias row (and rows
    // past it) read x too but use 1 (0) instead.
    let clamped = min(rows4, vec4<u32>(kernel_rows - 1u));
    let taps = clamped / channels;
    let offsets = ((taps / k) * width + taps % k) * channels + clamped % channels;
    let is_kernel = rows4 < vec4<u32>(kernel_rows);
    let constant = select(vec4<f32>(0.0), vec4<f32>(1.0), rows4 == vec4<u32>(kernel_rows));
    let fs = min(vec4<u32>(f0, f0 + 1u, f0 + 2u, f0 + 3u), vec4<u32>(filters - 1u));
    let first = chunk * shape.positions_per_chunk;
    let end = min(first + shape.positions_per_chunk, step.rows * out_pixels);
    var acc = mat4x4<f32>();
    for (var m = first; m < end; m = m + 1u) {
        let r = m / out_pixels;
        let pixel = m % out_pixels;
        let corner = ((r * height + pixel / out_width) * width + pixel % out_width) * channels;
        let xv = select(
            constant,
            vec4<f32>(x[corner + offsets.x], x[corner + offsets.y], x[corner + offsets.z], x[corner + offsets.w]),
            is_kernel,
        );
        let g_at = m * filters;
        let g = vec4<f32>(dz[g_at + fs.x], dz[g_at + fs.y], dz[g_at + fs.z], dz[g_at + fs.w]);
        acc = acc + mat4x4<f32>(g * xv.x, g * xv.y, g * xv.z, g * xv.w);
    }
    let base = chunk * result_rows * filters;
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (row0 + j < result_rows) {
            for (var i = 0u; i < 4u; i = i + 1u) {
                if (f0 + i < filters) {
                    partials[base + (row0 + j) * filters + f0 + i] = acc[j][i];
                }
            }
        }
    }
}
