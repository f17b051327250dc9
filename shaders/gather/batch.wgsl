// gather_batch: copies one batch out of the GPU-resident dataset, as f32 pixels / 255.
//
// Bindings (group 0):
//   0 step          uniform, dynamic offset   Step (common/step.wgsl): batch_start, rows (this batch)
//   1 shape         uniform                   pixels per image (a multiple of 4)
//   2 images        storage, read   u32[count * pixels / 4]  u8 pixels packed 4 per word
//   3 labels        storage, read   u32[count]
//   4 order         storage, read   u32[count]  sample index for each position (a shuffle)
//   5 x             storage, rw     f32[rows, pixels]
//   6 batch_labels  storage, rw     u32[rows]
// Dispatch: (ceil(pixels / 4 / 64), rows, 1); one thread per packed word.

struct Shape { pixels: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> images: array<u32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read> order: array<u32>;
@group(0) @binding(5) var<storage, read_write> x: array<f32>;
@group(0) @binding(6) var<storage, read_write> batch_labels: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let words = shape.pixels / 4u;
    let word = gid.x;
    let row = gid.y;
    if (row >= step.rows || word >= words) {
        return;
    }
    let sample = order[step.batch_start + row];
    let packed = images[sample * words + word];
    let base = row * shape.pixels + word * 4u;
    x[base] = f32(packed & 0xffu) / 255.0;
    x[base + 1u] = f32((packed >> 8u) & 0xffu) / 255.0;
    x[base + 2u] = f32((packed >> 16u) & 0xffu) / 255.0;
    x[base + 3u] = f32(packed >> 24u) / 255.0;
    if (word == 0u) {
        batch_labels[row] = labels[sample];
    }
}
