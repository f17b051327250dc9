// softmax_cross_entropy: softmax probabilities, categorical cross-entropy (log-sum-exp, so no
// clipping is needed), its gradient for the batch-mean loss, and the batch's loss sum and argmax
// hits added to a metrics tally, for batch rows first_row .. first_row + row_count (clipped to
// the batch). One invocation handles those rows, so the running metrics are updated without
// atomics or barriers (Kahan-compensated, as an epoch adds up thousands of batches): the work is
// small (rows × classes), and a workgroup barrier costs milliseconds on lavapipe, about a hundred
// times this loop for a batch of 100. The host dispatches one chunk of at most 1,000 rows after
// another (llvmpipe ends an invocation's loops after 65,535 iterations). add_to_tally comes from
// common/tally.wgsl (prepended).
//
// Bindings (group 0):
//   0 step     uniform, dynamic offset   Step (common/step.wgsl): rows (this batch)
//   1 shape    uniform                   classes, tally, write_gradient (0/1), first_row, row_count
//   2 logits   storage, read   f32[rows, classes]
//   3 labels   storage, read   u32[rows]
//   4 probs    storage, rw     f32[rows, classes]
//   5 dlogits  storage, rw     f32[rows, classes]  (p − onehot) / rows, when write_gradient
//   6 metrics  storage, rw     u32[4 * tallies]; tally s: [loss_sum (f32 bits), compensation (f32 bits), hits, samples]
// Dispatch: (1, 1, 1).

struct Shape {
    classes: u32, tally: u32, write_gradient: u32, first_row: u32,
    row_count: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(1) var<uniform> shape: Shape;
@group(0) @binding(2) var<storage, read> logits: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> probs: array<f32>;
@group(0) @binding(5) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(6) var<storage, read_write> metrics: array<u32>;

@compute @workgroup_size(1)
fn main() {
    let classes = shape.classes;
    let rows = step.rows;
    let first = shape.first_row;
    let end = min(rows, first + min(shape.row_count, rows));
    if (first >= end) {
        return;
    }
    let scale = 1.0 / f32(rows);
    var loss = 0.0;
    var hits = 0u;
    for (var row = first; row < end; row = row + 1u) {
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
        loss = loss + log(sum) + max_logit - logits[base + label];
        hits = hits + select(0u, 1u, best == label);
        for (var c = 0u; c < classes; c = c + 1u) {
            let p = exp(logits[base + c] - max_logit) / sum;
            probs[base + c] = p;
            if (shape.write_gradient != 0u) {
                dlogits[base + c] = (p - select(0.0, 1.0, c == label)) * scale;
            }
        }
    }
    add_to_tally(shape.tally, loss, hits, end - first);
}
