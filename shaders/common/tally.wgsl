// common/tally.wgsl: adding a batch's figures to a metrics tally, for the kernels that do (the host
// prepends it to each; the kernel declares `metrics`, u32[4 * tallies]; tally s holds
// [loss_sum (f32 bits), compensation (f32 bits), hits, samples]). The loss sum is
// Kahan-compensated: an epoch adds up thousands of batches. One invocation calls it per dispatch.

fn add_to_tally(tally: u32, loss: f32, hits: u32, samples: u32) {
    let at = tally * 4u;
    let sum = bitcast<f32>(metrics[at]);
    let compensation = bitcast<f32>(metrics[at + 1u]);
    let y = loss - compensation;
    let t = sum + y;
    metrics[at] = bitcast<u32>(t);
    metrics[at + 1u] = bitcast<u32>((t - sum) - y);
    metrics[at + 2u] = metrics[at + 2u] + hits;
    metrics[at + 3u] = metrics[at + 3u] + samples;
}
