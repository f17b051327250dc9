// saliency_seed: the start of the saliency's backward pass. Per row of softmax probabilities p,
// with c its most probable class (the first of equals), the gradient of p_c at the logits:
// dlogits_j = ∂p_c/∂z_j = p_c·(δ_cj − p_j). The backward-input kernels carry it down to the input.
//
// Bindings (group 0):
//   0 step     uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape    uniform                   classes
//   2 probs    storage, read   f32[rows, classes]  softmax probabilities (the prediction's)
//   3 dlogits  storage, rw     f32[rows, classes]
// Dispatch: (ceil(rows / 64), 1, 1): an invocation per row.

struct Shape { classes: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    if (row >= step.rows) {
        return;
    }
    let classes = shape.classes;
    let base = row * classes;
    var best = 0u;
    for (var j = 1u; j < classes; j = j + 1u) {
        if (probs[base + j] > probs[base + best]) {
            best = j;
        }
    }
    let pc = probs[base + best];
    for (var j = 0u; j < classes; j = j + 1u) {
        dlogits[base + j] = pc * (select(0.0, 1.0, j == best) - probs[base + j]);
    }
}
