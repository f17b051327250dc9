// batch_norm_statistics_partials: the first stage of BatchNorm's batch statistics for GPUs. The
// batch's rows are split into chunks of rows_per_chunk; for each feature j and chunk c one
// invocation walks the chunk's rows twice and writes the chunk's count, mean and sum of squared
// deviations (M2) to partials[(c · width + j) · 3 ..]; batch_norm/statistics_combine.wgsl then
// merges the chunks in order (Chan et al.'s pairwise update: as exact as two passes over the
// whole column). Chunks past the batch write a count of 0. rows = batch rows × positions (an
// image's height × width after a conv layer, 1 otherwise).
//
// Bindings (group 0):
//   0 step      uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape     uniform                   width, rows_per_chunk, chunks, positions (the rest: the combine's)
//   2 x         storage, read   f32[rows, width]
//   3 partials  storage, rw     f32[chunks, width, 3]  (count, mean, M2)
// Dispatch: (ceil(width / 64), chunks, 1).

struct Shape {
    width: u32, rows_per_chunk: u32, chunks: u32, moving_mean_offset: u32,
    moving_variance_offset: u32, momentum: f32, epsilon: f32, positions: u32,
}

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let chunk = gid.y;
    let width = shape.width;
    if (j >= width) {
        return;
    }
    let rows = step.rows * shape.positions;
    let first = min(chunk * shape.rows_per_chunk, rows);
    let end = min(first + shape.rows_per_chunk, rows);
    var sum = 0.0;
    for (var r = first; r < end; r = r + 1u) {
        sum = sum + x[r * width + j];
    }
    let count = f32(end - first);
    let mean = select(0.0, sum / count, end > first);
    var squares = 0.0;
    for (var r = first; r < end; r = r + 1u) {
        let d = x[r * width + j] - mean;
        squares = squares + d * d;
    }
    let at = (chunk * width + j) * 3u;
    partials[at] = count;
    partials[at + 1u] = mean;
    partials[at + 2u] = squares;
}
