// sum_partials: the second stage of a split reduction. `partials` holds `partials` arrays of
// `count` sums each (one per chunk of the batch); each invocation adds one element over the
// chunks in order (a fixed order: a run stays reproducible) and writes it to grads, elements
// below `split` from first_offset, the rest from second_offset (a layer's kernel, then its bias).
//
// Bindings (group 0):
//   0 step      uniform, dynamic offset   Step (common/step.wgsl): unused
//   1 shape     uniform                   count, partials, split, first_offset, second_offset
//   2 partials  storage, read   f32[partials, count]
//   3 grads     storage, rw     f32[..]  (overwritten)
// Dispatch: (min(ceil(count / 256), 65535), ceil(count / 256 / 65535), 1); one thread per element.

struct Shape { count: u32, partials: u32, split: u32, first_offset: u32, second_offset: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let e = gid.y * groups.x * 256u + gid.x;
    if (e >= shape.count) {
        return;
    }
    var sum = 0.0;
    for (var c = 0u; c < shape.partials; c = c + 1u) {
        sum = sum + partials[c * shape.count + e];
    }
    if (e < shape.split) {
        grads[shape.first_offset + e] = sum;
    } else {
        grads[shape.second_offset + e - shape.split] = sum;
    }
}
