//! The GPU trainer end to end: it must take exactly the steps the CPU reference takes, and it
//! must learn real Fashion-MNIST.

mod common;

use common::{assert_close, banded_dataset, gpu};
use fashion_core::model::{LrSchedule, Op};
use fashion_core::{
    Activation, CpuKernels, CpuTrainer, EpochMetrics, GpuTrainer, KernelChoice, Layer, ModelSpec, TrainConfig,
};
use fashion_data::{load_splits, DatasetName, PIXELS_PER_IMAGE};

fn small_model() -> ModelSpec {
    let layers = vec![
        Layer::Dense { units: 13, activation: Activation::Relu },
        Layer::Dense { units: 7, activation: Activation::Relu },
        Layer::Dense { units: 10, activation: Activation::Softmax },
    ];
    ModelSpec::new("small", PIXELS_PER_IMAGE, layers).unwrap()
}

/// Every op of the study's variants in one small model, with L2 and a decaying learning rate.
fn variants_model() -> ModelSpec {
    let layers = vec![
        Layer::Dense { units: 13, activation: Activation::Linear },
        Layer::BatchNorm,
        Layer::Activation(Activation::Relu),
        Layer::Dropout { rate: 0.3 },
        Layer::Dense { units: 7, activation: Activation::Relu },
        Layer::Dropout { rate: 0.2 },
        Layer::Dense { units: 10, activation: Activation::Linear },
        Layer::BatchNorm,
        Layer::Activation(Activation::Softmax),
    ];
    let schedule = LrSchedule::ExponentialDecay { decay_steps: 3, decay_rate: 0.5, staircase: true };
    ModelSpec::new("variants", PIXELS_PER_IMAGE, layers)
        .unwrap()
        .with_l2(0.01)
        .unwrap()
        .with_schedule(schedule)
        .unwrap()
}

/// Two epochs on the GPU and on the CPU must report the same figures and end with the same
/// parameters (moving statistics included) and predictions: the GPU's emulator set against the
/// CPU's reference twins, its GPU set against the CPU's fast kernels.
fn assert_gpu_follows_cpu(spec: &ModelSpec) {
    assert_gpu_follows_cpu_with(spec, EpochMetrics::Step);
}

fn assert_gpu_follows_cpu_with(spec: &ModelSpec, metrics: EpochMetrics) {
    for (kernels, cpu_kernels) in
        [(KernelChoice::emulator(), CpuKernels::Reference), (KernelChoice::gpu(), CpuKernels::Fast)]
    {
        assert_gpu_with_kernels_follows_cpu(spec, kernels, cpu_kernels, metrics);
    }
}

/// The settings of [`assert_gpu_follows_cpu`]'s runs.
fn follow_config(metrics: EpochMetrics) -> TrainConfig {
    // 250 = 3 × 64 + 58: a short last batch; 2 steps per submit: several submits per epoch.
    TrainConfig { batch: 64, seed: 7, steps_per_submit: 2, eval_batch: 32, metrics, ..TrainConfig::default() }
}

fn assert_gpu_with_kernels_follows_cpu(
    spec: &ModelSpec,
    kernels: KernelChoice,
    cpu_kernels: CpuKernels,
    metrics: EpochMetrics,
) {
    let (train, test) = (banded_dataset(250, 1), banded_dataset(70, 2));
    let config = follow_config(metrics);
    let mut on_gpu = GpuTrainer::with_kernels(gpu(), spec, config.clone(), kernels, &train, &test).unwrap();
    let mut on_cpu = CpuTrainer::with_kernels(spec, config, cpu_kernels, &train, &test).unwrap();
    for _ in 0..2 {
        let g = pollster::block_on(on_gpu.run_epoch(|_| {})).unwrap();
        let c = pollster::block_on(on_cpu.run_epoch(|_| {})).unwrap();
        let what =
            format!("{} ({:?}, CPU {cpu_kernels:?}, {metrics:?}) epoch {}", spec.name, kernels.dense_forward, g.epoch);
        assert!((g.loss - c.loss).abs() < 1e-4 * c.loss, "{what}: loss GPU {} vs CPU {}", g.loss, c.loss);
        assert!(
            (g.test_loss - c.test_loss).abs() < 1e-4 * c.test_loss,
            "{what}: test loss GPU {} vs CPU {}",
            g.test_loss,
            c.test_loss
        );
        assert!((g.train_accuracy - c.train_accuracy).abs() <= 1.0 / 250.0, "{what}");
        assert!((g.test_accuracy - c.test_accuracy).abs() <= 1.0 / 70.0, "{what}");
    }
    let (mut gpu_params, mut cpu_params) = (pollster::block_on(on_gpu.params()).unwrap(), on_cpu.params());
    // A bias right before a BatchNorm has a gradient of exactly zero in exact arithmetic (the
    // batch mean removes it), so Adam's steps on it follow float noise that differs between
    // backends. Bound those by the steps' size and compare everything else tightly.
    let ops = spec.ops();
    for pair in ops.windows(2) {
        if let [Op::Dense { layout, .. }, Op::BatchNorm { .. }] = pair {
            let biases = layout.bias_offset..layout.bias_offset + layout.units;
            for i in biases {
                assert!((gpu_params[i] - cpu_params[i]).abs() <= 8.0 * 1e-3, "{}: bias {i} before BN", spec.name);
                (gpu_params[i], cpu_params[i]) = (0.0, 0.0);
            }
        }
    }
    assert_close(&format!("{} parameters after 8 steps", spec.name), &gpu_params, &cpu_params, 1e-4);

    let pixels: Vec<f32> = test.images()[..5 * PIXELS_PER_IMAGE].iter().map(|&p| f32::from(p) / 255.0).collect();
    let gpu_probs = pollster::block_on(on_gpu.predict(&pixels)).unwrap();
    assert_close(&format!("{} predictions", spec.name), &gpu_probs, &on_cpu.predict(&pixels).unwrap(), 1e-4);
}

#[test]
fn a_cnn_takes_the_same_steps_on_gpu_and_cpu() {
    let layers = vec![
        Layer::Conv2D { filters: 4, kernel_size: 3, activation: Activation::Relu },
        Layer::MaxPool2D,
        Layer::Conv2D { filters: 8, kernel_size: 3, activation: Activation::Linear },
        Layer::Activation(Activation::Relu),
        Layer::MaxPool2D,
        Layer::Flatten,
        Layer::Dense { units: 16, activation: Activation::Relu },
        Layer::Dropout { rate: 0.25 },
        Layer::Dense { units: 10, activation: Activation::Softmax },
    ];
    assert_gpu_follows_cpu(&ModelSpec::new("small-cnn", PIXELS_PER_IMAGE, layers).unwrap());
}

/// Zero padding (`padding="same"` convs: the first op, and after a pool) and BatchNorm over
/// the channels of conv layers' outputs, after their ReLU, on both kernel sets: the split
/// statistics and gradient sums over batch × positions rows.
#[test]
fn a_padded_cnn_with_batch_norm_takes_the_same_steps_on_gpu_and_cpu() {
    let layers = vec![
        Layer::ZeroPadding2D { padding: 1 },
        // After the ReLU: a conv bias right before a BatchNorm has a gradient of exactly zero
        // (as a β before a linear conv and another BatchNorm), so Adam would follow each
        // backend's float noise, and the moving mean, which holds the bias, with it.
        Layer::Conv2D { filters: 4, kernel_size: 3, activation: Activation::Relu },
        Layer::BatchNorm,
        Layer::MaxPool2D,
        Layer::ZeroPadding2D { padding: 1 },
        Layer::Conv2D { filters: 8, kernel_size: 3, activation: Activation::Relu },
        Layer::BatchNorm,
        Layer::MaxPool2D,
        Layer::Flatten,
        Layer::Dense { units: 10, activation: Activation::Softmax },
    ];
    let spec = ModelSpec::new("padded-bn-cnn", PIXELS_PER_IMAGE, layers).unwrap();
    let channels: Vec<_> = spec.param_layout().batch_norm.iter().map(|bn| (bn.width, bn.positions)).collect();
    assert_eq!(channels, [(4, 28 * 28), (8, 14 * 14)]);
    assert_gpu_follows_cpu(&spec);
}

#[test]
fn gpu_trainer_takes_the_same_steps_as_the_cpu_reference() {
    assert_gpu_follows_cpu(&small_model());
}

#[test]
fn dropout_batch_norm_l2_and_decay_take_the_same_steps_on_gpu_and_cpu() {
    let spec = variants_model();
    assert_gpu_follows_cpu(&spec);
    // The moving statistics sit after the trainable tensors and must have moved from 0 / 1.
    let layout = spec.param_layout();
    assert_eq!(layout.batch_norm.len(), 2);
    assert!(layout.trainable < layout.total);
}

#[test]
fn learns_a_subset_of_real_fashion_mnist() {
    let splits = load_splits(DatasetName::Fashion, None)
        .unwrap_or_else(|e| panic!("{e}\n(the tests need the real data: run scripts/install-data.sh)"));
    let (train, test) = (splits.train.take(2000), splits.test.take(1000));
    let spec = ModelSpec::preset("baseline").unwrap();
    let config = TrainConfig { epochs: 3, ..TrainConfig::default() };
    let mut trainer = GpuTrainer::new(gpu(), &spec, config, &train, &test).unwrap();
    // The adapter's set: the emulator's softmax is one dispatch, the GPU set's two.
    let expected = if trainer.kernels() == KernelChoice::emulator() { 11 } else { 12 };
    assert_eq!(trainer.dispatches_per_step(), expected);
    let mut epochs = Vec::new();
    let mut reports = 0;
    for _ in 0..3 {
        let stats = pollster::block_on(trainer.run_epoch(|_| reports += 1)).unwrap();
        eprintln!("{}", stats.study_line());
        epochs.push(stats);
    }
    assert!(reports >= 3, "progress must be reported during epochs");
    assert!(epochs[2].loss < epochs[0].loss, "loss must fall: {epochs:?}");
    assert!(
        epochs[2].test_accuracy >= 0.78,
        "test accuracy after 3 epochs on 2000 samples: {}",
        epochs[2].test_accuracy
    );

    // Predictions agree with the accuracy the epoch measured on the same images.
    let pixels: Vec<f32> = test.images().iter().map(|&p| f32::from(p) / 255.0).collect();
    let probs = pollster::block_on(trainer.predict(&pixels)).unwrap();
    let hits = probs
        .chunks(10)
        .zip(test.labels())
        .filter(|(p, &label)| {
            let best = p.iter().enumerate().fold(0, |best, (i, &v)| if v > p[best] { i } else { best });
            best == usize::from(label)
        })
        .count();
    assert!((hits as f32 / 1000.0 - epochs[2].test_accuracy).abs() < 1e-6);
    assert!(probs.chunks(10).all(|p| (p.iter().sum::<f32>() - 1.0).abs() < 1e-4));
}

/// The dispatch count is what a step encodes: a batch over 1,000 rows takes one softmax dispatch
/// per 1,000 rows (the count used to say one whatever the batch).
/// The study's figures (measured after each update) agree between the backends too, and
/// measuring them changes nothing of the training: the same weights (BatchNorm's moving
/// statistics included) as a run reporting each step's own figures.
#[test]
fn after_step_figures_agree_on_gpu_and_cpu_and_leave_the_training_alone() {
    let spec = variants_model();
    assert_gpu_follows_cpu_with(&spec, EpochMetrics::AfterStep);
    let (train, test) = (banded_dataset(250, 1), banded_dataset(70, 2));
    for kernels in [KernelChoice::emulator(), KernelChoice::gpu()] {
        let run = |metrics| {
            let mut trainer =
                GpuTrainer::with_kernels(gpu(), &spec, follow_config(metrics), kernels, &train, &test).unwrap();
            let stats = pollster::block_on(trainer.run_epoch(|_| {})).unwrap();
            (stats, pollster::block_on(trainer.params()).unwrap())
        };
        let ((step, step_params), (after, after_params)) = (run(EpochMetrics::Step), run(EpochMetrics::AfterStep));
        assert_eq!(after_params, step_params, "{:?}: the after-step passes changed the weights", kernels.dense_forward);
        assert_eq!((after.test_loss, after.test_accuracy), (step.test_loss, step.test_accuracy));
        assert_ne!(after.loss, step.loss, "{:?}: the same loss under both definitions", kernels.dense_forward);
    }
    let mut cpu_step = CpuTrainer::new(&spec, follow_config(EpochMetrics::Step), &train, &test).unwrap();
    let mut cpu_after = CpuTrainer::new(&spec, follow_config(EpochMetrics::AfterStep), &train, &test).unwrap();
    pollster::block_on(cpu_step.run_epoch(|_| {})).unwrap();
    pollster::block_on(cpu_after.run_epoch(|_| {})).unwrap();
    assert_eq!(cpu_after.params(), cpu_step.params());
}

/// One step over the whole set, evaluated on that same set: the study's train accuracy is the
/// evaluation of the weights the step left, exactly; its loss too for a model whose training
/// and evaluation modes agree (no dropout, no BatchNorm). Each step's own figures are not.
#[test]
fn after_step_figures_are_an_evaluation_of_the_updated_weights() {
    let data = banded_dataset(120, 4);
    let config = |metrics| TrainConfig { batch: 120, eval_batch: 120, seed: 3, metrics, ..TrainConfig::default() };
    let ctx = gpu();
    for spec in [small_model(), variants_model()] {
        let plain = spec.name == "small";
        let epochs = [EpochMetrics::AfterStep, EpochMetrics::Step].map(|metrics| {
            let mut on_gpu = GpuTrainer::new(ctx.clone(), &spec, config(metrics), &data, &data).unwrap();
            let mut on_cpu = CpuTrainer::new(&spec, config(metrics), &data, &data).unwrap();
            let g = pollster::block_on(on_gpu.run_epoch(|_| {})).unwrap();
            let c = pollster::block_on(on_cpu.run_epoch(|_| {})).unwrap();
            (g, c)
        });
        let [(after_gpu, after_cpu), (step_gpu, step_cpu)] = epochs;
        for (what, stats) in [("GPU", after_gpu), ("CPU", after_cpu)] {
            assert_eq!(stats.train_accuracy, stats.test_accuracy, "{} on the {what}: {stats:?}", spec.name);
            if plain {
                let close = (stats.loss - stats.test_loss).abs() <= 1e-5 * stats.test_loss;
                assert!(close, "{} on the {what}: {stats:?}", spec.name);
            }
        }
        if plain {
            for (what, stats) in [("GPU", step_gpu), ("CPU", step_cpu)] {
                assert!(stats.loss > stats.test_loss, "{what}: the step's own loss is before it: {stats:?}");
            }
        }
    }
}

#[test]
fn dispatches_per_step_counts_what_a_step_encodes() {
    let ctx = gpu();
    let data = banded_dataset(40, 3);
    let dispatches = |kernels: KernelChoice, batch: usize| {
        let config = TrainConfig { batch, eval_batch: 10, ..TrainConfig::default() };
        let trainer = GpuTrainer::with_kernels(ctx.clone(), &small_model(), config, kernels, &data, &data).unwrap();
        trainer.dispatches_per_step()
    };
    // gather, 3 dense forward, softmax, dW for 3 layers and dX for the 2 upper ones, Adam.
    assert_eq!(dispatches(KernelChoice::emulator(), 100), 11);
    assert_eq!(dispatches(KernelChoice::emulator(), 2_500), 13);
    // The GPU set: the per-row softmax and its tally, whatever the batch.
    assert_eq!(dispatches(KernelChoice::gpu(), 100), 12);
    assert_eq!(dispatches(KernelChoice::gpu(), 2_500), 12);
    // The study's figures: after Adam, 3 dense forward and the softmax twice.
    let config = TrainConfig { batch: 100, eval_batch: 10, metrics: EpochMetrics::AfterStep, ..TrainConfig::default() };
    let trainer =
        GpuTrainer::with_kernels(ctx.clone(), &small_model(), config, KernelChoice::emulator(), &data, &data).unwrap();
    assert_eq!(trainer.dispatches_per_step(), 11 + 8);
}

/// A trainer restored from the state saved after epoch 1 (through its bytes) trains epochs 2
/// and 3 exactly as the trainer that never stopped: the same figures to the bit and the same
/// weights (dropout masks, shuffles, Adam's step, BatchNorm's moving statistics, the decayed
/// learning rate all follow).
#[test]
fn a_restored_state_goes_on_as_if_never_stopped() {
    use fashion_core::train::{RunIdentity, TrainerState};
    let spec = variants_model();
    let (train, test) = (banded_dataset(250, 1), banded_dataset(70, 2));
    let config = TrainConfig { batch: 64, seed: 5, steps_per_submit: 3, eval_batch: 32, ..TrainConfig::default() };
    let run = RunIdentity {
        model: spec.name.clone(),
        seed: 5,
        batch: 64,
        kernels: "emulator set".into(),
        metrics: "step".into(),
    };
    let figures = |s: &fashion_core::EpochStats| (s.epoch, s.loss, s.train_accuracy, s.test_loss, s.test_accuracy);
    let new_trainer = || GpuTrainer::new(gpu(), &spec, config.clone(), &train, &test).unwrap();

    let mut straight = new_trainer();
    let straight_figures: Vec<_> =
        (0..3).map(|_| figures(&pollster::block_on(straight.run_epoch(|_| {})).unwrap())).collect();

    let mut first = new_trainer();
    pollster::block_on(first.run_epoch(|_| {})).unwrap();
    let bytes = pollster::block_on(first.state(run.clone())).unwrap().to_bytes();
    drop(first);
    let mut resumed = new_trainer();
    resumed.restore(&TrainerState::from_bytes(&bytes).unwrap(), &run).unwrap();
    let resumed_figures: Vec<_> =
        (0..2).map(|_| figures(&pollster::block_on(resumed.run_epoch(|_| {})).unwrap())).collect();
    assert_eq!(resumed_figures, straight_figures[1..], "epochs 2 and 3");
    assert_eq!(pollster::block_on(resumed.params()).unwrap(), pollster::block_on(straight.params()).unwrap());

    // Another run's state is refused, naming the difference.
    let other = RunIdentity { seed: 6, ..run };
    let error = new_trainer().restore(&TrainerState::from_bytes(&bytes).unwrap(), &other).unwrap_err();
    assert!(error.to_string().contains("seed 5, this run 6"), "{error}");
}

/// The CPU trainer, restored through `Trainer` from the bytes of its state after epoch 1, trains
/// epochs 2 and 3 as the one that never stopped, to the bit: figures, weights and Adam's moments
/// (dropout masks, BatchNorm's moving statistics and the decayed learning rate follow its step).
#[test]
fn a_restored_cpu_state_goes_on_as_if_never_stopped() {
    use fashion_core::train::TrainerState;
    use fashion_core::Trainer;
    let spec = variants_model();
    let (train, test) = (banded_dataset(250, 1), banded_dataset(70, 2));
    let config = TrainConfig { batch: 64, seed: 5, steps_per_submit: 1, eval_batch: 32, ..TrainConfig::default() };
    let new_trainer = || Trainer::cpu(&spec, config.clone(), &train, &test).unwrap();
    let bits = |s: &fashion_core::EpochStats| {
        (s.epoch, [s.loss, s.train_accuracy, s.test_loss, s.test_accuracy].map(f32::to_bits))
    };
    let epoch = |t: &mut Trainer| bits(&pollster::block_on(t.run_epoch(|_| {})).unwrap());

    let mut straight = new_trainer();
    let straight_figures: Vec<_> = (0..3).map(|_| epoch(&mut straight)).collect();

    let mut first = new_trainer();
    let run = first.run_identity(&spec.name);
    assert_eq!(run.kernels, "cpu");
    epoch(&mut first);
    let bytes = pollster::block_on(first.state(run.clone())).unwrap().to_bytes();
    drop(first);
    let mut resumed = new_trainer();
    resumed.restore(&TrainerState::from_bytes(&bytes).unwrap(), &run).unwrap();
    assert_eq!(resumed.epoch(), 1);
    let resumed_figures: Vec<_> = (0..2).map(|_| epoch(&mut resumed)).collect();
    assert_eq!(resumed_figures, straight_figures[1..], "epochs 2 and 3");
    let (a, b) = (
        pollster::block_on(resumed.state(run.clone())).unwrap(),
        pollster::block_on(straight.state(run.clone())).unwrap(),
    );
    assert_eq!(
        a.params.iter().map(|p| p.to_bits()).collect::<Vec<_>>(),
        b.params.iter().map(|p| p.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!((a.adam_m, a.adam_v, a.global_step), (b.adam_m, b.adam_v, b.global_step));

    // A state of the GPU's kernels (or any other run) is refused, and the trainer is untouched.
    let mut other = new_trainer();
    let gpu_run = fashion_core::train::RunIdentity { kernels: "emulator set".into(), ..run };
    let error = other.restore(&TrainerState::from_bytes(&bytes).unwrap(), &gpu_run).unwrap_err();
    assert!(error.to_string().contains("kernels cpu, this run emulator set"), "{error}");
    assert_eq!(other.epoch(), 0);
}
