// softmax_cross_entropy_rows: softmax/cross_entropy.wgsl with an invocation per batch row, for
// GPUs: softmax probabilities, categorical cross-entropy (log-sum-exp), its gradient for the
// batch-mean loss, and each row's loss and hit written to row_metrics; softmax/metrics_tally.wgsl then
// adds them to a metrics tally in a fixed order (no atomics: a run stays reproducible).
//
// Bindings (group 0):
//   0 step         uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape        uniform                   classes, tally (unused here), write_gradient (0/1)
//   2 logits       storage, read   f32[rows, classes]
//   3 labels       storage, read   u32[rows]
//   4 probs        storage, rw     f32[rows, classes]
//   5 dlogits      storage, rw     f32[rows, classes]  (p − onehot) / rows, when write_gradient
//   6 row_metrics  storage, rw     u32[2 * rows]; row r: [loss (f32 bits), hit (0/1)]
// Dispatch: (ceil(rows / 64), 1, 1).

struct Shape {
    classes: u32, tally: u32, write_gradient: u32, first_row: u32,
    row_count: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> probs: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(6) var<storage, read_write> row_metrics: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    let rows = step.rows;
    if (row >= rows) {
        return;
    }
    let classes = shape.classes;
    let base = row * classes;
    var best = 0u;
    var max_logit = logits[base];
    for (var c = 1u; c < classes; c = c + 1u) {
        let z = logits[base + c];
        if (z > max_logit) {
            max_logit = z;
            best = c;
        }
    }
    var sum = 0.0;
    for (var c = 0u; c < classes; c = c + 1u) {
        sum = sum + exp(logits[base + c] - max_logit);
    }
    let label = labels[row];
    let scale = 1.0 / f32(rows);
    for (var c = 0u; c < classes; c = c + 1u) {
        let p = exp(logits[base + c] - max_logit) / sum;
        probs[base + c] = p;
        if (shape.write_gradient != 0u) {
            dlogits[base + c] = (p - select(0.0, 1.0, c == label)) * scale;
        }
    }
    row_metrics[2u * row] = bitcast<u32>(log(sum) + max_logit - logits[base + label]);
    row_metrics[2u * row + 1u] = select(0u, 1u, best == label);
}
