//! The saliency and activations of `Trainer::explain`: its two new kernels against their CPU
//! twins on odd shapes (BatchNorm's evaluation-mode gradient also against finite differences),
//! the GPU trainer's whole explanation against the CPU trainer's on the same weights, and the
//! saliency of both against finite differences of the predicted class's probability.

use crate::common::{assert_close, assert_matches_finite_differences, banded_dataset, gpu, values, widen};
use crate::single_kernel;
use fashion_core::explain::explain_with_params;
use fashion_core::model::BATCH_NORM_EPSILON;
use fashion_core::reference::{self, BatchNormTensors};
use fashion_core::{CpuKernels, CpuTrainer, Explanation, GpuTrainer, KernelChoice, ModelSpec, TrainConfig, Trainer};
use fashion_data::{NUM_CLASSES, PIXELS_PER_IMAGE};

/// (rows, width): batch 1, widths that are not multiples of a workgroup, a full batch.
const SHAPES: &[(usize, usize)] = &[(37, 53), (1, 5), (3, 300), (100, 256), (64, 10)];

#[test]
fn saliency_seed_matches_reference() {
    let ctx = gpu();
    for (i, &(rows, classes)) in [(1, 10), (7, 10), (130, 10), (5, 3), (2, 1)].iter().enumerate() {
        let logits = values(rows * classes, 700 + i as u64);
        let probs = reference::softmax_cross_entropy(&logits, &vec![0; rows], classes).probs;
        let gpu_seed = pollster::block_on(single_kernel::saliency_seed(&ctx, &probs, classes)).unwrap();
        let cpu_seed = reference::saliency_seed(&probs, classes);
        assert_close(&format!("saliency_seed {rows}x{classes}"), &gpu_seed, &cpu_seed, 1e-6);
    }
    // Ties go to the first class, as the softmax's hit count decides them.
    let tied = [0.4, 0.4, 0.2];
    assert_eq!(reference::saliency_seed(&tied, 3), vec![0.4 * 0.6, -0.4 * 0.4, -0.4 * 0.2]);
    let gpu_tied = pollster::block_on(single_kernel::saliency_seed(&ctx, &tied, 3)).unwrap();
    assert_close("saliency_seed tie", &gpu_tied, &reference::saliency_seed(&tied, 3), 1e-6);

    // The seed is the gradient of p_c at the logits (c fixed at the argmax of the point itself).
    let classes = 10;
    let logits = values(classes, 710);
    let probs = reference::softmax_cross_entropy(&logits, &[0], classes).probs;
    let c = reference::argmax(&probs);
    let seed = pollster::block_on(single_kernel::saliency_seed(&ctx, &probs, classes)).unwrap();
    let p_c = |z: &[f64]| {
        let max = z.iter().copied().fold(f64::MIN, f64::max);
        let sum: f64 = z.iter().map(|v| (v - max).exp()).sum();
        (z[c] - max).exp() / sum
    };
    assert_matches_finite_differences("saliency seed", &seed, &widen(&logits), 1e-6, p_c);
}

#[test]
fn batch_norm_backward_eval_matches_reference_and_finite_differences() {
    let ctx = gpu();
    for (i, &(rows, width)) in SHAPES.iter().enumerate() {
        let dy = values(rows * width, 720 + i as u64);
        let below = values(rows * width, 730 + i as u64);
        let gamma: Vec<f32> = values(width, 740 + i as u64).iter().map(|v| 1.0 + 0.5 * v).collect();
        let (beta, moving_mean) = (values(width, 750 + i as u64), values(width, 760 + i as u64));
        let moving_variance: Vec<f32> = values(width, 770 + i as u64).iter().map(|v| 1.0 + 0.5 * v).collect();
        let tensors = BatchNormTensors {
            gamma: &gamma,
            beta: &beta,
            moving_mean: &moving_mean,
            moving_variance: &moving_variance,
        };
        for mask in [None, Some(below.as_slice())] {
            let gpu_dx =
                pollster::block_on(single_kernel::batch_norm_backward_eval(&ctx, &dy, rows, &tensors, mask)).unwrap();
            let cpu_dx = reference::batch_norm_backward_eval(&dy, &gamma, &moving_variance, mask);
            let what = format!("batch_norm_backward_eval {rows}x{width} masked {}", mask.is_some());
            assert_close(&what, &gpu_dx, &cpu_dx, 1e-5);
        }
    }
    // L = Σ g ⊙ BN_eval(x): the GPU's dx must be L's finite differences.
    let (rows, width) = (3, 7);
    let (x, g) = (values(rows * width, 780), values(rows * width, 781));
    let gamma: Vec<f32> = values(width, 782).iter().map(|v| 1.0 + 0.5 * v).collect();
    let (beta, moving_mean) = (values(width, 783), values(width, 784));
    let moving_variance: Vec<f32> = values(width, 785).iter().map(|v| 0.2 + 0.5 * v.abs()).collect();
    let tensors =
        BatchNormTensors { gamma: &gamma, beta: &beta, moving_mean: &moving_mean, moving_variance: &moving_variance };
    let dx = pollster::block_on(single_kernel::batch_norm_backward_eval(&ctx, &g, rows, &tensors, None)).unwrap();
    let loss = |x: &[f64]| -> f64 {
        x.iter()
            .enumerate()
            .map(|(i, &v)| {
                let j = i % width;
                let scale =
                    f64::from(gamma[j]) / (f64::from(moving_variance[j]) + f64::from(BATCH_NORM_EPSILON)).sqrt();
                (scale * (v - f64::from(moving_mean[j])) + f64::from(beta[j])) * f64::from(g[i])
            })
            .sum()
    };
    assert_matches_finite_differences("bn eval dx", &dx, &widen(&x), 1e-4, loss);
}

/// The models the page explains: the study's MLPs with and without BatchNorm and dropout, and
/// three small CNNs (one with an odd feature-map side, 5×5 after two convs and a pool, and odd
/// unit counts; one with zero padding, the first op among them, and BatchNorm over channels).
fn models() -> Vec<ModelSpec> {
    let mut specs: Vec<ModelSpec> =
        ["baseline", "batchnorm", "dropout"].iter().map(|name| ModelSpec::preset(name).unwrap()).collect();
    specs.push(ModelSpec::parse("small-cnn", "conv:8,pool,flatten,32").unwrap());
    specs.push(ModelSpec::parse("odd-cnn", "conv:12,pool,dropout:0.25,conv:4,flatten,13,dropout:0.5").unwrap());
    specs.push(ModelSpec::parse("padded-bn-cnn", "pad:1,conv:8,bn,pool,pad:2,conv:4,bn,flatten,17").unwrap());
    specs
        .push(ModelSpec::parse("odd-mlp", "13:linear,bn,relu,dropout:0.3,7,dropout:0.2,10:linear,bn,softmax").unwrap());
    specs
}

/// A trainer on the banded data after one short epoch: its moving statistics are not the
/// initial ones, its weights have left their initialisation.
fn trained_gpu(spec: &ModelSpec, kernels: KernelChoice) -> GpuTrainer {
    let (train, test) = (banded_dataset(130, 1), banded_dataset(20, 2));
    let config = TrainConfig { batch: 32, seed: 3, eval_batch: 20, ..TrainConfig::default() };
    let mut trainer = GpuTrainer::with_kernels(gpu(), spec, config, kernels, &train, &test).unwrap();
    pollster::block_on(trainer.run_epoch(|_| {})).unwrap();
    trainer
}

/// A CPU trainer holding `params`.
fn cpu_with(spec: &ModelSpec, kernels: CpuKernels, params: &[f32]) -> CpuTrainer {
    let (train, test) = (banded_dataset(10, 1), banded_dataset(10, 2));
    let config = TrainConfig { batch: 10, eval_batch: 10, ..TrainConfig::default() };
    let mut trainer = CpuTrainer::with_kernels(spec, config, kernels, &train, &test).unwrap();
    trainer.set_params(params).unwrap();
    trainer
}

/// A test image of band `band` (pixels in [0, 1]).
fn image(band: usize, seed: u64) -> Vec<f32> {
    let data = banded_dataset(20, seed);
    let i = (0..20).find(|&i| data.labels()[i] as usize == band).unwrap();
    data.images()[i * PIXELS_PER_IMAGE..(i + 1) * PIXELS_PER_IMAGE].iter().map(|&p| f32::from(p) / 255.0).collect()
}

/// Half of band `a`'s image and half of band `b`'s: an image the model is unsure of, where the
/// predicted probability is far from 0 and 1 and its gradient is not tiny.
fn blend(a: usize, b: usize, seed: u64) -> Vec<f32> {
    image(a, seed).iter().zip(image(b, seed)).map(|(x, y)| 0.5 * (x + y)).collect()
}

/// Asserts two explanations agree: the same layers, probabilities and class, activations and
/// saliency within `tolerance` of their largest magnitude.
fn assert_same_explanation(what: &str, gpu: &Explanation, cpu: &Explanation, tolerance: f32) {
    assert_close(&format!("{what} probabilities"), &gpu.probabilities, &cpu.probabilities, 1e-4);
    assert_eq!(gpu.predicted, cpu.predicted, "{what}: predicted class");
    assert_eq!(gpu.layers.len(), cpu.layers.len(), "{what}: layers");
    let scaled_close = |name: &str, a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len(), "{name}: length");
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tolerance * scale, "{name}[{i}]: GPU {x} vs CPU {y} (largest {scale})");
        }
    };
    for (g, c) in gpu.layers.iter().zip(&cpu.layers) {
        assert_eq!((&g.name, &g.dims), (&c.name, &c.dims), "{what}: layer");
        assert_eq!(g.values.len(), g.dims.iter().product::<usize>(), "{what} {}: values", g.name);
        scaled_close(&format!("{what} {} activations", g.name), &g.values, &c.values);
    }
    scaled_close(&format!("{what} saliency"), &gpu.saliency, &cpu.saliency);
}

#[test]
fn the_gpu_explains_as_the_cpu_does() {
    for spec in models() {
        for (kernels, cpu_kernels) in
            [(KernelChoice::emulator(), CpuKernels::Reference), (KernelChoice::gpu(), CpuKernels::Fast)]
        {
            let on_gpu = trained_gpu(&spec, kernels);
            let params = pollster::block_on(on_gpu.params()).unwrap();
            let on_cpu = cpu_with(&spec, cpu_kernels, &params);
            for band in [2, 7] {
                let x = image(band, 9);
                let what = format!("{} ({kernels}) band {band}", spec.name);
                let g = pollster::block_on(on_gpu.explain(&x)).unwrap();
                let c = on_cpu.explain(&x).unwrap();
                assert_same_explanation(&what, &g, &c, 1e-4);
                assert_eq!(g.saliency.len(), PIXELS_PER_IMAGE, "{what}");
                assert!(g.saliency.iter().any(|&s| s != 0.0), "{what}: an all-zero saliency");
                // The explanation's probabilities are the prediction's.
                let predicted = pollster::block_on(on_gpu.predict(&x)).unwrap();
                assert_close(&format!("{what} vs predict"), &g.probabilities, &predicted, 1e-6);
            }
        }
    }
}

/// The draw pad's explanation while an epoch runs comes from the last epoch's weights without a
/// trainer ([`explain_with_params`]): the same figures as the trainer holding those weights, and
/// a snapshot of another model's size is refused by name.
#[test]
fn a_weights_snapshot_explains_as_its_trainer() {
    for spec in models() {
        let params = fashion_core::init::glorot_uniform_params(&spec, 3);
        let trainer = cpu_with(&spec, CpuKernels::Fast, &params);
        let x = image(7, 9);
        let snapshot = explain_with_params(&spec, params.clone(), &x).unwrap();
        assert_eq!(snapshot, trainer.explain(&x).unwrap(), "{}", spec.name);
        let short = explain_with_params(&spec, params[1..].to_vec(), &x).unwrap_err().to_string();
        assert!(short.contains(&format!("expected {} parameters", params.len())), "{short}");
    }
}

#[test]
fn explain_names_the_layers_as_the_summary_does() {
    let spec = ModelSpec::preset("cnn").unwrap();
    let names: Vec<String> = spec.op_outputs().into_iter().map(|op| format!("{} {:?}", op.name, op.dims)).collect();
    assert_eq!(
        names,
        [
            "zero_padding2d [30, 30, 1]",
            "conv2d [28, 28, 32]",
            "max_pooling2d [14, 14, 32]",
            "dropout [14, 14, 32]",
            "zero_padding2d_1 [16, 16, 32]",
            "conv2d_1 [14, 14, 64]",
            "max_pooling2d_1 [7, 7, 64]",
            "dropout_1 [7, 7, 64]",
            "dense [128]",
            "dropout_2 [128]",
            "dense_1 [10]",
        ]
    );
    for name in &names {
        let layer = name.split(' ').next().unwrap();
        let row = format!("{layer} (");
        assert!(spec.summary().lines().any(|line| line.starts_with(&row)), "{layer} is not in the summary");
    }
    let batchnorm = ModelSpec::preset("batchnorm").unwrap().op_outputs();
    assert_eq!(batchnorm.len(), 10);
    assert_eq!(batchnorm[1].name, "batch_normalization");
}

#[test]
fn explain_refuses_anything_but_one_image() {
    let spec = ModelSpec::preset("baseline").unwrap();
    let (train, test) = (banded_dataset(10, 1), banded_dataset(10, 2));
    let config = TrainConfig { batch: 10, eval_batch: 10, ..TrainConfig::default() };
    let cpu = Trainer::cpu(&spec, config.clone(), &train, &test).unwrap();
    let gpu_trainer = Trainer::Gpu(GpuTrainer::new(gpu(), &spec, config, &train, &test).unwrap());
    for trainer in [&cpu, &gpu_trainer] {
        for pixels in [vec![], vec![0.5; PIXELS_PER_IMAGE - 1], vec![0.5; 2 * PIXELS_PER_IMAGE]] {
            let error = pollster::block_on(trainer.explain(&pixels)).unwrap_err().to_string();
            assert!(error.contains("one image of 784 pixels"), "{error}");
        }
    }
}

/// Step sizes of the differences: a kink (a ReLU's, or a pooling window changing its winner)
/// nearer than `h` spoils the larger ones, f32 rounding of the probabilities the smaller.
const STEPS: [f32; 4] = [1e-2, 3e-3, 1e-3, 3e-4];

/// The saliency at the pixels where it is largest and at a few others must be the central
/// difference (p_c(x + h·e_i) − p_c(x − h·e_i)) / 2h of the predicted class's probability, from
/// the trainer's own predictions (evaluation mode), for one of [`STEPS`] — or, where a kink sits
/// at x itself (pooling winners that tie there), one of the one-sided differences: the gradient
/// is then the derivative from one side, as training's gradients are.
fn assert_saliency_matches_finite_differences(what: &str, trainer: &Trainer, x: &[f32]) {
    let explanation = pollster::block_on(trainer.explain(x)).unwrap();
    let c = explanation.predicted;
    let saliency = &explanation.saliency;
    let mut by_size: Vec<usize> = (0..saliency.len()).collect();
    by_size.sort_by(|&a, &b| saliency[b].abs().total_cmp(&saliency[a].abs()));
    let largest = saliency[by_size[0]].abs();
    assert!(largest > 1e-4, "{what}: the saliency is all but zero (largest {largest})");
    let pixels: Vec<usize> = by_size[..6].iter().copied().chain([100, 333, 406, 601]).collect();
    let mut batch = Vec::new();
    for &i in &pixels {
        for h in STEPS {
            for sign in [1.0, -1.0] {
                let mut shifted = x.to_vec();
                shifted[i] += sign * h;
                batch.extend(shifted);
            }
        }
    }
    let probs = pollster::block_on(trainer.predict(&batch)).unwrap();
    let p_c = |image: usize| f64::from(probs[image * NUM_CLASSES + c]);
    let at_x = f64::from(explanation.probabilities[c]);
    for (k, &i) in pixels.iter().enumerate() {
        let analytic = f64::from(saliency[i]);
        let differences: Vec<f64> = STEPS
            .iter()
            .enumerate()
            .flat_map(|(s, &h)| {
                let (plus, minus) = (p_c(2 * (k * STEPS.len() + s)), p_c(2 * (k * STEPS.len() + s) + 1));
                let h = f64::from(h);
                [(plus - minus) / (2.0 * h), (plus - at_x) / h, (at_x - minus) / h]
            })
            .collect();
        let bound = 5e-3 * f64::from(largest) + 0.02 * analytic.abs();
        assert!(
            differences.iter().any(|fd| (fd - analytic).abs() <= bound),
            "{what} pixel {i}: finite differences {differences:?} (central, right, left for each of \
             {STEPS:?}) vs saliency {analytic} (largest {largest}, p_c {at_x})",
        );
    }
}

#[test]
fn the_saliency_is_the_finite_difference_of_the_predicted_probability() {
    let specs = [
        ModelSpec::parse("bn-dropout-mlp", "64:linear,bn,relu,dropout:0.3,32,dropout:0.2,10:linear,bn,softmax")
            .unwrap(),
        ModelSpec::parse("small-cnn", "conv:8,pool,dropout:0.25,flatten,32").unwrap(),
        ModelSpec::parse("padded-bn-cnn", "pad:1,conv:8,bn,pool,dropout:0.25,flatten,32").unwrap(),
    ];
    for spec in &specs {
        let on_gpu = trained_gpu(spec, KernelChoice::emulator());
        let params = pollster::block_on(on_gpu.params()).unwrap();
        let on_cpu = Trainer::Cpu(cpu_with(spec, CpuKernels::Fast, &params));
        let on_gpu = Trainer::Gpu(on_gpu);
        for (a, b) in [(3, 8), (1, 6)] {
            let x = blend(a, b, 11);
            assert_saliency_matches_finite_differences(&format!("{} GPU bands {a}+{b}", spec.name), &on_gpu, &x);
            assert_saliency_matches_finite_differences(&format!("{} CPU bands {a}+{b}", spec.name), &on_cpu, &x);
        }
    }
}
