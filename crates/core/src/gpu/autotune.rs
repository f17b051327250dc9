//! Picks, per adapter, the fastest implementation of each dense kernel by timing every
//! [`MatmulVariant`] on the model's own layer shapes. The choice is kept for the process, keyed by
//! the adapter, and [`Kernels::new`](super::kernels::Kernels::new) compiles what it says; without
//! a tuning it uses [`MatmulChoice::default`].

use std::sync::Mutex;

use web_time::Instant;

use super::context::{GpuContext, GpuError, TrackedBuffer};
use super::kernels::{
    self, BoundKernel, DenseBackwardInputShape, DenseBackwardWeightsShape, DenseForwardShape, Kernel, MatmulVariant,
    StepUniform,
};
use crate::model::{DenseSlot, ModelSpec};

/// The variant each dense kernel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulChoice {
    pub forward: MatmulVariant,
    pub backward_input: MatmulVariant,
    pub backward_weights: MatmulVariant,
}

impl Default for MatmulChoice {
    /// The vec4 kernels: 2–4× faster than the 4×4 ones on the CPU implementations this app meets
    /// without a GPU (lavapipe, SwiftShader), where every loaded lane costs more than a multiply-add.
    fn default() -> Self {
        let variant = MatmulVariant::Vec4Blocked8x8;
        MatmulChoice { forward: variant, backward_input: variant, backward_weights: variant }
    }
}

/// The three dense kernels, as tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenseKernel {
    Forward,
    BackwardInput,
    BackwardWeights,
}

impl DenseKernel {
    pub const ALL: [DenseKernel; 3] = [DenseKernel::Forward, DenseKernel::BackwardInput, DenseKernel::BackwardWeights];

    pub fn as_str(self) -> &'static str {
        match self {
            DenseKernel::Forward => "dense_forward",
            DenseKernel::BackwardInput => "dense_backward_input",
            DenseKernel::BackwardWeights => "dense_backward_weights",
        }
    }

    fn compile(self, ctx: &GpuContext, variant: MatmulVariant) -> Kernel {
        match self {
            DenseKernel::Forward => kernels::dense_forward_with(ctx, variant),
            DenseKernel::BackwardInput => kernels::dense_backward_input_with(ctx, variant),
            DenseKernel::BackwardWeights => kernels::dense_backward_weights_with(ctx, variant),
        }
    }
}

impl MatmulChoice {
    pub fn get(&self, kernel: DenseKernel) -> MatmulVariant {
        match kernel {
            DenseKernel::Forward => self.forward,
            DenseKernel::BackwardInput => self.backward_input,
            DenseKernel::BackwardWeights => self.backward_weights,
        }
    }

    fn set(&mut self, kernel: DenseKernel, variant: MatmulVariant) {
        match kernel {
            DenseKernel::Forward => self.forward = variant,
            DenseKernel::BackwardInput => self.backward_input = variant,
            DenseKernel::BackwardWeights => self.backward_weights = variant,
        }
    }
}

/// GPU seconds one training step spends in `kernel` (all its layers) with `variant`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub kernel: DenseKernel,
    pub variant: MatmulVariant,
    pub seconds_per_step: f64,
}

/// What [`autotune`] measured and chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuning {
    pub choice: MatmulChoice,
    pub timings: Vec<Timing>,
}

/// Tuned choices of this process, by adapter.
static CHOICES: Mutex<Vec<(String, MatmulChoice)>> = Mutex::new(Vec::new());

fn adapter_key(ctx: &GpuContext) -> String {
    ctx.adapter.to_string()
}

/// The tuned choice for this adapter, or the default when it has not been tuned.
pub fn choice(ctx: &GpuContext) -> MatmulChoice {
    let key = adapter_key(ctx);
    let choices = CHOICES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    choices.iter().find(|(k, _)| *k == key).map(|&(_, choice)| choice).unwrap_or_default()
}

fn remember(ctx: &GpuContext, choice: MatmulChoice) {
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
    let scratch = Scratch::new(ctx, &layout.dense, layout.total, batch);
    let mut choice = MatmulChoice::default();
    let mut timings = Vec::new();
    for kernel in DenseKernel::ALL {
        let mut best: Option<(MatmulVariant, f64)> = None;
        for variant in MatmulVariant::ALL {
            let bound = scratch.bind(ctx, kernel, &kernel.compile(ctx, variant));
            if bound.is_empty() {
                continue;
            }
            if variant != MatmulVariant::Blocked4x4 && bound.iter().all(|b| !b.label().ends_with("_vec4")) {
                continue; // every layer falls back to the 4×4 kernel: nothing to compare
            }
            let seconds_per_step = time_per_step(ctx, &scratch, &bound).await?;
            timings.push(Timing { kernel, variant, seconds_per_step });
            if best.is_none_or(|(_, seconds)| seconds_per_step < seconds) {
                best = Some((variant, seconds_per_step));
            }
        }
        choice.set(kernel, best.map_or(MatmulVariant::Blocked4x4, |(variant, _)| variant));
    }
    remember(ctx, choice);
    Ok(Tuning { choice, timings })
}

/// Seconds per run of `bound` (each dispatched once), the fastest of a few rounds.
async fn time_per_step(ctx: &GpuContext, scratch: &Scratch, bound: &[BoundKernel]) -> Result<f64, GpuError> {
    // The first dispatch of a pipeline compiles it on some implementations: not part of the figure.
    let first = run(ctx, scratch, bound, 1).await?;
    let reps = ((MIN_MEASURED_SECONDS / first.max(1e-6)).ceil() as usize).clamp(1, 50);
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        best = best.min(run(ctx, scratch, bound, reps).await? / reps as f64);
    }
    Ok(best)
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
    /// Per layer: its input, its output, and the gradients at both.
    inputs: Vec<TrackedBuffer>,
    outputs: Vec<TrackedBuffer>,
    input_gradients: Vec<TrackedBuffer>,
    output_gradients: Vec<TrackedBuffer>,
}

impl Scratch {
    fn new(ctx: &GpuContext, layers: &[DenseSlot], params: usize, batch: usize) -> Self {
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
            inputs: per_layer("tuning input", |slot| slot.inputs),
            outputs: per_layer("tuning output", |slot| slot.units),
            input_gradients: per_layer("tuning input gradient", |slot| slot.inputs),
            output_gradients: per_layer("tuning output gradient", |slot| slot.units),
        }
    }

    /// `compiled` bound to every layer it runs on in a training step, as the trainer binds it.
    fn bind(&self, ctx: &GpuContext, kernel: DenseKernel, compiled: &Kernel) -> Vec<BoundKernel> {
        let bind = |shape: &[u8], storage: &[&TrackedBuffer], grid| {
            compiled.bind_bytes(ctx, &self.steps, shape, storage, grid)
        };
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(l, slot)| {
                let (inputs, units) = (slot.inputs as u32, slot.units as u32);
                let (kernel_offset, bias_offset) = (slot.kernel_offset as u32, slot.bias_offset as u32);
                match kernel {
                    DenseKernel::Forward => {
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
                    DenseKernel::BackwardInput => (l > 0).then(|| {
                        let shape = DenseBackwardInputShape { inputs, units, kernel_offset, relu_below: 1 };
                        let storage =
                            [&self.output_gradients[l], &self.params, &self.inputs[l], &self.input_gradients[l]];
                        bind(bytemuck::bytes_of(&shape), &storage, kernels::dense_backward_input_grid(slot.inputs))
                    }),
                    DenseKernel::BackwardWeights => {
                        let shape = DenseBackwardWeightsShape { inputs, units, kernel_offset, bias_offset };
                        let storage = [&self.inputs[l], &self.output_gradients[l], &self.grads];
                        let grid = kernels::dense_backward_weights_grid(slot.inputs, slot.units);
                        Some(bind(bytemuck::bytes_of(&shape), &storage, grid))
                    }
                }
            })
            .collect()
    }
}
