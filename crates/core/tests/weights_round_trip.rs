//! A model saved as safetensors and loaded into a fresh trainer is the same model: the same
//! test figures as the epoch that ended its training, and bit-identical probabilities.

mod common;

use common::gpu;
use fashion_core::weights::{from_safetensors, to_safetensors};
use fashion_core::{CpuTrainer, GpuTrainer, ModelSpec, TrainConfig, Trainer};
use fashion_data::{Dataset, PIXELS_PER_IMAGE};

/// Class `c` brightens band `c` of the image, so one epoch learns something.
fn banded_dataset(count: usize, offset: usize) -> Dataset {
    let mut images = Vec::with_capacity(count * PIXELS_PER_IMAGE);
    let mut labels = Vec::with_capacity(count);
    for i in offset..offset + count {
        let label = (i * 7 % 10) as u8;
        images.extend((0..PIXELS_PER_IMAGE).map(|p| {
            let noise = ((i * 31 + p * 17) % 97) as u8;
            if p * 10 / PIXELS_PER_IMAGE == usize::from(label) {
                150 + noise
            } else {
                noise
            }
        }));
        labels.push(label);
    }
    Dataset::new(images, labels).expect("a well-formed dataset")
}

fn pixels(dataset: &Dataset, rows: usize) -> Vec<f32> {
    dataset.images()[..rows * PIXELS_PER_IMAGE].iter().map(|&p| f32::from(p) / 255.0).collect()
}

/// Trains `trained` one epoch, saves it, loads the file into `fresh` (built with another seed)
/// and compares.
fn assert_reloads_identically(spec: &ModelSpec, mut trained: Trainer, mut fresh: Trainer, test: &Dataset) {
    let stats = pollster::block_on(trained.run_epoch(|_| {})).unwrap();
    let evaluated = pollster::block_on(trained.evaluate()).unwrap();
    assert_eq!((evaluated.loss, evaluated.accuracy), (stats.test_loss, stats.test_accuracy), "{}", spec.name);

    let file = to_safetensors(spec, &pollster::block_on(trained.params()).unwrap());
    let loaded = from_safetensors(spec, &file).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
    fresh.set_params(&loaded).unwrap();
    let reloaded = pollster::block_on(fresh.evaluate()).unwrap();
    assert_eq!(reloaded.accuracy.to_bits(), stats.test_accuracy.to_bits(), "{}: accuracy", spec.name);
    assert_eq!(reloaded.loss.to_bits(), stats.test_loss.to_bits(), "{}: loss", spec.name);

    let images = pixels(test, 37);
    let before = pollster::block_on(trained.predict(&images)).unwrap();
    let after = pollster::block_on(fresh.predict(&images)).unwrap();
    assert!(before.iter().zip(&after).all(|(a, b)| a.to_bits() == b.to_bits()), "{}: probabilities", spec.name);
}

#[test]
fn gpu_weights_reload_to_the_same_figures_and_probabilities() {
    let (train, test) = (banded_dataset(400, 0), banded_dataset(250, 400));
    // Batch norm's moving statistics are not trained by Adam but must travel with the file.
    for preset in ["baseline", "batchnorm", "dropout"] {
        let spec = ModelSpec::preset(preset).unwrap();
        let config = |seed| TrainConfig { epochs: 1, seed, ..TrainConfig::default() };
        let trainer = |seed| Trainer::Gpu(GpuTrainer::new(gpu(), &spec, config(seed), &train, &test).unwrap());
        assert_reloads_identically(&spec, trainer(1), trainer(2), &test);
    }
}

#[test]
fn cpu_weights_reload_to_the_same_figures_and_probabilities() {
    let (train, test) = (banded_dataset(200, 0), banded_dataset(100, 200));
    let spec = ModelSpec::preset("batchnorm").unwrap();
    let config = |seed| TrainConfig { epochs: 1, seed, ..TrainConfig::default() };
    let trainer = |seed| Trainer::Cpu(CpuTrainer::new(&spec, config(seed), &train, &test).unwrap());
    assert_reloads_identically(&spec, trainer(1), trainer(2), &test);
}
