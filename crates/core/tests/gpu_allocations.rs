//! GPU memory must not grow when one page or process trains again and again: every buffer a
//! trainer makes comes back when the trainer is dropped. Its own test binary, so nothing else
//! allocates on this process's device meanwhile.

use std::sync::Arc;

use fashion_core::{GpuContext, GpuTrainer, KernelChoice, ModelSpec, TrainConfig, PRESETS};
use fashion_data::{Dataset, PIXELS_PER_IMAGE};

/// `count` images of noise with labels 0..=9 in turn; the figures do not matter here.
fn noise_dataset(count: usize) -> Dataset {
    let images = (0..count * PIXELS_PER_IMAGE).map(|i| (i * 31 % 251) as u8).collect();
    let labels = (0..count).map(|i| (i % 10) as u8).collect();
    Dataset::new(images, labels).expect("a well-formed dataset")
}

#[test]
fn trainings_in_a_row_leave_no_buffer_behind() {
    let ctx = Arc::new(pollster::block_on(GpuContext::new()).unwrap_or_else(|e| panic!("{e}")));
    let (train, test) = (noise_dataset(300), noise_dataset(120));
    let config = TrainConfig { epochs: 1, ..TrainConfig::default() };
    let before = ctx.allocations();

    // Every preset in turn with each kernel set, so every kind of buffer (dropout, batch norm,
    // L2, the GPU set's partial sums and row metrics) is made and dropped.
    for run in 0..2 * PRESETS.len() {
        let spec = ModelSpec::preset(PRESETS[run % PRESETS.len()]).unwrap();
        let kernels = if run < PRESETS.len() { KernelChoice::emulator() } else { KernelChoice::gpu() };
        let mut trainer = GpuTrainer::with_kernels(ctx.clone(), &spec, config.clone(), kernels, &train, &test).unwrap();
        let during = ctx.allocations();
        assert!(during.buffers > before.buffers, "run {run}: the trainer's buffers are counted");
        assert!(during.bytes >= before.bytes + (spec.total_params() * 4) as u64, "run {run}: {during:?}");

        pollster::block_on(trainer.run_epoch(|_| {})).unwrap();
        let probs = pollster::block_on(trainer.predict(&vec![0.5; 3 * PIXELS_PER_IMAGE])).unwrap();
        assert_eq!(probs.len(), 30);
        assert_eq!(ctx.allocations(), during, "run {run}: an epoch and a prediction allocate nothing that stays");

        drop(trainer);
        assert_eq!(ctx.allocations(), before, "run {run}: every buffer comes back when the trainer is dropped");
        ctx.check_errors().unwrap_or_else(|e| panic!("run {run}: {e}"));
    }
}
