//! Picks, per adapter, the fastest implementation of each kernel that has several (the dense
//! kernels, Adam) by timing every [`KernelVariant`] on the model's own shapes. The choice is kept for the process, keyed by
//! the adapter, and [`Kernels::new`](super::kernels::Kernels::new) compiles what it says; without
//! a tuning it uses [`KernelChoice::default`].

use std::sync::Mutex;

use web_time::Instant;

use super::context::{GpuContext, GpuError, TrackedBuffer};
use super::kernels::{
    self, AdamShape, BoundKernel, DenseBackwardInputShape, DenseBackwardWeightsShape, DenseForwardShape, Kernel,
    KernelVariant, StepUniform,
};
use crate::model::{DenseSlot, ModelSpec};

/// The variant each tuned kernel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelChoice {
    pub forward: KernelVariant,
    pub backward_input: KernelVariant,
    pub backward_weights: KernelVariant,
    pub adam: KernelVariant,
}

impl Default for KernelChoice {
    /// The vec4 kernels: 2–5× faster than the scalar ones on the CPU implementations this app
    /// meets without a GPU (lavapipe, SwiftShader), where every loaded lane costs more than a
    /// multiply-add.
    fn default() -> Self {
        let variant = KernelVariant::Vec4;
        KernelChoice { forward: variant, backward_input: variant, backward_weights: variant, adam: variant }
    }
}

/// The kernels with more than one implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunedKernel {
    Forward,
    BackwardInput,
    BackwardWeights,
    Adam,
}

impl TunedKernel {
    pub const ALL: [TunedKernel; 4] =
        [TunedKernel::Forward, TunedKernel::BackwardInput, TunedKernel::BackwardWeights, TunedKernel::Adam];

    pub fn as_str(self) -> &'static str {
        match self {
            TunedKernel::Forward => "dense_forward",
            TunedKernel::BackwardInput => "dense_backward_input",
            TunedKernel::BackwardWeights => "dense_backward_weights",
            TunedKernel::Adam => "adam",
        }
    }

    fn compile(self, ctx: &GpuContext, variant: KernelVariant) -> Kernel {
        match self {
            TunedKernel::Forward => kernels::dense_forward_with(ctx, variant),
            TunedKernel::BackwardInput => kernels::dense_backward_input_with(ctx, variant),
            TunedKernel::BackwardWeights => kernels::dense_backward_weights_with(ctx, variant),
            TunedKernel::Adam => kernels::adam_with(ctx, variant),
        }
    }
}

impl KernelChoice {
    pub fn get(&self, kernel: TunedKernel) -> KernelVariant {
        match kernel {
            TunedKernel::Forward => self.forward,
            TunedKernel::BackwardInput => self.backward_input,
            TunedKernel::BackwardWeights => self.backward_weights,
            TunedKernel::Adam => self.adam,
        }
    }

    fn set(&mut self, kernel: TunedKernel, variant: KernelVariant) {
        match kernel {
            TunedKernel::Forward => self.forward = variant,
            TunedKernel::BackwardInput => self.backward_input = variant,
            TunedKernel::BackwardWeights => self.backward_weights = variant,
            TunedKernel::Adam => self.adam = variant,
        }
    }
}

/// GPU seconds one training step spends in `kernel` (all its layers) with `variant`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub kernel: TunedKernel,
    pub variant: KernelVariant,
    pub seconds_per_step: f64,
}

/// What [`autotune`] measured and chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    pub choice: KernelChoice,
    pub timings: Vec<Timing>,
}

/// Tuned choices of this process, by adapter.
static CHOICES: Mutex<Vec<(String, KernelChoice)>> = Mutex::new(Vec::new());

fn adapter_key(ctx: &GpuContext) -> String {
    ctx.adapter.to_string()
}

/// The tuned choice for this adapter, or the default when it has not been tuned.
pub fn choice(ctx: &GpuContext) -> KernelChoice {
    let key = adapter_key(ctx);
    let choices = CHOICES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    choices.iter().find(|(k, _)| *k == key).map(|&(_, choice)| choice).unwrap_or_default()
}

fn remember(ctx: &GpuContext, choice: KernelChoice) {
    let key = adapter_key(ctx);
    let mut choices = CHOICES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    choices.retain(|(k, _)| *k != key);
    choices.push((key, choice));
}

/// Measurements shorter than this are repeated until they are not, so coarse clocks (the
/// browser's) still resolve them.
const MIN_MEASURED_SECONDS: f64 = 0.03;
const ROUNDS: usize = 3;

/// Times every variant of every dense kernel on `spec`'s layers at batch `batch`, remembers the
/// fastest for this adapter (later [`Kernels::new`](super::kernels::Kernels::new) use it) and
/// returns the figures. A kernel whose variants cannot differ on this model (no layer the vec4
/// kernels take) keeps the 4×4 one.
pub async fn autotune(ctx: &GpuContext, spec: &ModelSpec, batch: usize) -> Result<Tuning, GpuError> {
    let layout = spec.param_layout();
    let scratch = Scratch::new(ctx, &layout.dense, layout.total, layout.trainable, batch);
    let mut choice = KernelChoice::default();
    let mut timings = Vec::new();
    for kernel in TunedKernel::ALL {
        let mut candidates = Vec::new();
        for variant in KernelVariant::ALL {
            let bound = scratch.bind(ctx, kernel, &kernel.compile(ctx, variant));
            let falls_back = variant != KernelVariant::Scalar && bound.iter().all(|b| !b.label().ends_with("_vec4"));
            if bound.is_empty() || falls_back {
                continue; // nothing to run, or the same kernels as the scalar variant
            }
            // The first dispatch of a pipeline compiles it on some implementations: not timed.
            let first = run(ctx, &scratch, &bound, 1).await?;
            let reps = ((MIN_MEASURED_SECONDS / first.max(1e-6)).ceil() as usize).clamp(1, 50);
            candidates.push((variant, bound, reps, f64::INFINITY));
        }
        // Rounds alternate between the variants, so a busy moment of the machine hits them alike.
        for _ in 0..ROUNDS {
            for (_, bound, reps, best) in &mut candidates {
                *best = best.min(run(ctx, &scratch, bound, *reps).await? / *reps as f64);
            }
        }
        for &(variant, _, _, seconds_per_step) in &candidates {
            timings.push(Timing { kernel, variant, seconds_per_step });
        }
        let fastest = candidates.iter().min_by(|a, b| a.3.total_cmp(&b.3));
        choice.set(kernel, fastest.map_or(KernelVariant::Scalar, |&(variant, ..)| variant));
    }
    remember(ctx, choice);
    Ok(Tuning { choice, timings })
}

/// Wall-clock seconds to run `bound` `reps` times in one submit.
async fn run(ctx: &GpuContext, scratch: &Scratch, bound: &[BoundKernel], reps: usize) -> Result<f64, GpuError> {
    let started = Instant::now();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for _ in 0..reps {
            for kernel in bound {
                kernel.encode(&mut pass, 0, scratch.rows);
            }
        }
    }
    ctx.queue.submit([encoder.finish()]);
    ctx.wait_for_submitted_work().await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Zeroed buffers shaped like a model's dense layers at one batch size (the timings do not
/// depend on the values).
struct Scratch {
    layers: Vec<DenseSlot>,
    rows: u32,
    steps: TrackedBuffer,
    params: TrackedBuffer,
    grads: TrackedBuffer,
    adam_m: TrackedBuffer,
    adam_v: TrackedBuffer,
    trainable: usize,
    /// Per layer: its input, its output, and the gradients at both.
    inputs: Vec<TrackedBuffer>,
    outputs: Vec<TrackedBuffer>,
    input_gradients: Vec<TrackedBuffer>,
    output_gradients: Vec<TrackedBuffer>,
}

impl Scratch {
    fn new(ctx: &GpuContext, layers: &[DenseSlot], params: usize, trainable: usize, batch: usize) -> Self {
        let rows = batch.max(1);
        let steps = kernels::step_buffer(ctx, 1);
        kernels::write_steps(ctx, &steps, &[StepUniform { rows: rows as u32, ..Default::default() }]);
        let per_layer = |label: &str, width: fn(&DenseSlot) -> usize| -> Vec<TrackedBuffer> {
            layers.iter().map(|slot| ctx.storage(label, (rows * width(slot) * 4) as u64)).collect()
        };
        Scratch {
            layers: layers.to_vec(),
            rows: rows as u32,
            steps,
            params: ctx.storage("tuning params", (params * 4) as u64),
            grads: ctx.storage("tuning grads", (params * 4) as u64),
            adam_m: ctx.storage("tuning adam m", (trainable * 4) as u64),
            adam_v: ctx.storage("tuning adam v", (trainable * 4) as u64),
            trainable,
            inputs: per_layer("tuning input", |slot| slot.inputs),
            outputs: per_layer("tuning output", |slot| slot.units),
            input_gradients: per_layer("tuning input gradient", |slot| slot.inputs),
            output_gradients: per_layer("tuning output gradient", |slot| slot.units),
        }
    }

    /// `compiled` bound to every layer it runs on in a training step, as the trainer binds it.
    fn bind(&self, ctx: &GpuContext, kernel: TunedKernel, compiled: &Kernel) -> Vec<BoundKernel> {
        let bind = |shape: &[u8], storage: &[&TrackedBuffer], grid| {
            compiled.bind_bytes(ctx, &self.steps, shape, storage, grid)
        };
        if kernel == TunedKernel::Adam {
            let shape = AdamShape { count: self.trainable as u32, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };
            let storage = [&self.params, &self.grads, &self.adam_m, &self.adam_v];
            return vec![bind(bytemuck::bytes_of(&shape), &storage, kernels::adam_grid(self.trainable))];
        }
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(l, slot)| {
                let (inputs, units) = (slot.inputs as u32, slot.units as u32);
                let (kernel_offset, bias_offset) = (slot.kernel_offset as u32, slot.bias_offset as u32);
                match kernel {
                    TunedKernel::Forward => {
                        let shape = DenseForwardShape {
                            inputs,
                            units,
                            kernel_offset,
                            bias_offset,
                            relu: 1,
                            ..Default::default()
                        };
                        let storage = [&self.inputs[l], &self.params, &self.outputs[l]];
                        Some(bind(bytemuck::bytes_of(&shape), &storage, kernels::dense_forward_grid(slot.units)))
                    }
                    // The first layer propagates no gradient to the images.
                    TunedKernel::BackwardInput => (l > 0).then(|| {
                        let shape = DenseBackwardInputShape { inputs, units, kernel_offset, relu_below: 1 };
                        let storage =
                            [&self.output_gradients[l], &self.params, &self.inputs[l], &self.input_gradients[l]];
                        bind(bytemuck::bytes_of(&shape), &storage, kernels::dense_backward_input_grid(slot.inputs))
                    }),
                    TunedKernel::BackwardWeights => {
                        let shape = DenseBackwardWeightsShape { inputs, units, kernel_offset, bias_offset };
                        let storage = [&self.inputs[l], &self.output_gradients[l], &self.grads];
                        let grid = kernels::dense_backward_weights_grid(slot.inputs, slot.units);
                        Some(bind(bytemuck::bytes_of(&shape), &storage, grid))
                    }
                    TunedKernel::Adam => None,
                }
            })
            .collect()
    }
}
