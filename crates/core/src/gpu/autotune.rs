//! Picks, for one adapter and model, the fastest implementation of each kernel that has several
//! (the dense kernels, Adam) by timing every [`KernelVariant`] on the model's own shapes: after a
//! warm-up, with GPU timestamps where the device has them (wall clock otherwise). A leaf:
//! it uses the ops, nothing below reads its result, and a trainer is given the
//! [`KernelChoice`] it returns ([`GpuTrainer::with_kernels`](super::trainer::GpuTrainer::with_kernels)).

use std::sync::Mutex;

use web_time::Instant;

use super::context::{AdapterSummary, GpuContext, GpuError, TrackedBuffer};
use super::kernel::{step_buffer, write_steps, Binder, BoundKernel, Kernel, KernelVariant, StepUniform};
use super::ops::adam::{self, AdamIo};
use super::ops::dense::{self, DenseBackwardInputIo, DenseBackwardWeightsIo, DenseForwardIo};
use super::ops::{KernelChoice, KernelSet};
use crate::model::{DenseLayout, ModelSpec};
use crate::optimizer::AdamConfig;

/// The kernels with more than one implementation that are tuned.
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
            TunedKernel::Forward => dense::forward(ctx, variant),
            TunedKernel::BackwardInput => dense::backward_input(ctx, variant),
            TunedKernel::BackwardWeights => dense::backward_weights(ctx, variant),
            TunedKernel::Adam => adam::kernel(ctx, variant),
        }
    }

    fn choose(self, choice: &mut KernelChoice, variant: KernelVariant) {
        match self {
            TunedKernel::Forward => choice.dense_forward = variant,
            TunedKernel::BackwardInput => choice.dense_backward_input = variant,
            TunedKernel::BackwardWeights => choice.dense_backward_weights = variant,
            TunedKernel::Adam => choice.adam = variant,
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

/// Measurements shorter than this are repeated until they are not, so coarse clocks (the
/// browser's) still resolve them.
const MIN_MEASURED_SECONDS: f64 = 0.03;
const ROUNDS: usize = 3;

/// Times every variant of every tuned kernel on `spec`'s layers at batch `batch` and returns the
/// fastest with the figures. A kernel whose variants cannot differ on this model (no layer the
/// vec4 kernels take) keeps the scalar one.
pub async fn autotune(ctx: &GpuContext, spec: &ModelSpec, batch: usize) -> Result<Tuning, GpuError> {
    let layout = spec.param_layout();
    let scratch = Scratch::new(ctx, &layout.dense, layout.total, layout.trainable, batch);
    // The kernels not tuned keep the adapter's set.
    let mut choice = KernelSet::Auto.choice(&ctx.adapter);
    let mut timings = Vec::new();
    for kernel in TunedKernel::ALL {
        let mut candidates = Vec::new();
        for variant in KernelVariant::ALL {
            let bound = scratch.bind(ctx, kernel, &kernel.compile(ctx, variant));
            let falls_back =
                variant != KernelVariant::Scalar && bound.iter().all(|b| b.variant() == KernelVariant::Scalar);
            if bound.is_empty() || falls_back {
                continue; // nothing to run, or the same kernels as the scalar variant
            }
            // A warm-up first (the first dispatch of a pipeline compiles it on some
            // implementations), then one run that sizes the repetitions.
            run(ctx, &scratch, &bound, 1).await?;
            let once = run(ctx, &scratch, &bound, 1).await?;
            let reps = ((MIN_MEASURED_SECONDS / once.max(1e-6)).ceil() as usize).clamp(1, 50);
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
        kernel.choose(&mut choice, fastest.map_or(KernelVariant::Scalar, |&(variant, ..)| variant));
    }
    Ok(Tuning { choice, timings })
}

/// Whether a front-end tunes when not told: on a GPU, not on a CPU adapter (lavapipe,
/// SwiftShader), where the emulator set wins by measurement.
pub fn tunes_by_default(adapter: &AdapterSummary) -> bool {
    !adapter.is_cpu()
}

/// Tunings made in this process, by adapter, model shapes and batch.
static TUNINGS: Mutex<Vec<(String, Tuning)>> = Mutex::new(Vec::new());

/// What a tuning depends on: the adapter (as described), the shapes of the tuned kernels, the
/// batch. The page keys its stored tunings by it too.
pub fn tuning_key(adapter: &str, spec: &ModelSpec, batch: usize) -> String {
    let layout = spec.param_layout();
    let shapes: Vec<(usize, usize)> = layout.dense.iter().map(|d| (d.inputs, d.units)).collect();
    format!("{adapter} | dense {shapes:?} | trainable {} | batch {batch}", layout.trainable)
}

/// [`autotune`], or the tuning this process already made for the same adapter, shapes and
/// batch (a second trainer of them, e.g. the next seed of a comparison, starts at once); `true`
/// when it came from that cache.
pub async fn autotune_cached(ctx: &GpuContext, spec: &ModelSpec, batch: usize) -> Result<(Tuning, bool), GpuError> {
    let key = tuning_key(&ctx.adapter.to_string(), spec, batch);
    let cached = |tunings: &Vec<(String, Tuning)>| tunings.iter().find(|(k, _)| *k == key).map(|(_, t)| t.clone());
    if let Some(tuning) = TUNINGS.lock().ok().as_ref().and_then(|tunings| cached(tunings)) {
        return Ok((tuning, true));
    }
    let tuning = autotune(ctx, spec, batch).await?;
    if let Ok(mut tunings) = TUNINGS.lock() {
        tunings.push((key, tuning.clone()));
    }
    Ok((tuning, false))
}

/// Seconds to run `bound` `reps` times in one submit: GPU time between timestamps written at the
/// start and end of its one compute pass where the device has timestamp queries (no submit, poll
/// or readback in it), wall clock otherwise.
async fn run(ctx: &GpuContext, scratch: &Scratch, bound: &[BoundKernel], reps: usize) -> Result<f64, GpuError> {
    let timestamps = ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY).then(|| {
        ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("tuning timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        })
    });
    let started = Instant::now();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let timestamp_writes = timestamps.as_ref().map(|query_set| wgpu::ComputePassTimestampWrites {
            query_set,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes });
        for _ in 0..reps {
            for kernel in bound {
                kernel.encode(&mut pass, 0, scratch.rows);
            }
        }
    }
    let Some(query_set) = timestamps else {
        ctx.queue.submit([encoder.finish()]);
        ctx.wait_for_submitted_work().await?;
        return Ok(started.elapsed().as_secs_f64());
    };
    let resolved = ctx.create_buffer(&wgpu::BufferDescriptor {
        label: Some("tuning timestamps"),
        size: 16,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    encoder.resolve_query_set(&query_set, 0..2, &resolved, 0);
    let bytes = ctx.read_bytes_after(encoder, &resolved, 16).await?;
    query_set.destroy();
    let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
    Ok(ticks[1].saturating_sub(ticks[0]) as f64 * f64::from(ctx.queue.get_timestamp_period()) * 1e-9)
}

/// Zeroed buffers shaped like a model's dense layers at one batch size (the timings do not
/// depend on the values).
struct Scratch {
    layers: Vec<DenseLayout>,
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
    fn new(ctx: &GpuContext, layers: &[DenseLayout], params: usize, trainable: usize, batch: usize) -> Self {
        let rows = batch.max(1);
        let steps = step_buffer(ctx, 1);
        write_steps(ctx, &steps, &[StepUniform::rows(rows)]);
        let per_layer = |label: &str, width: fn(&DenseLayout) -> usize| -> Vec<TrackedBuffer> {
            layers.iter().map(|layer| ctx.storage(label, (rows * width(layer) * 4) as u64)).collect()
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
            inputs: per_layer("tuning input", |layer| layer.inputs),
            outputs: per_layer("tuning output", |layer| layer.units),
            input_gradients: per_layer("tuning input gradient", |layer| layer.inputs),
            output_gradients: per_layer("tuning output gradient", |layer| layer.units),
        }
    }

    /// `compiled` bound to every layer it runs on in a training step, through the op's own bind
    /// functions (the trainer's).
    fn bind(&self, ctx: &GpuContext, kernel: TunedKernel, compiled: &Kernel) -> Vec<BoundKernel> {
        let b = Binder { ctx, steps: &self.steps };
        if kernel == TunedKernel::Adam {
            let io = AdamIo { params: &self.params, grads: &self.grads, m: &self.adam_m, v: &self.adam_v };
            return vec![adam::bind(&b, compiled, self.trainable, &AdamConfig::default(), io)];
        }
        let params = &self.params;
        self.layers
            .iter()
            .enumerate()
            .filter_map(|(l, layer)| match kernel {
                TunedKernel::Forward => {
                    let io = DenseForwardIo { x: &self.inputs[l], params, y: &self.outputs[l] };
                    Some(dense::bind_forward(&b, compiled, layer, true, io))
                }
                // The first layer propagates no gradient to the images.
                TunedKernel::BackwardInput => (l > 0).then(|| {
                    let (dy, below, dx) = (&self.output_gradients[l], &self.inputs[l], &self.input_gradients[l]);
                    dense::bind_backward_input(
                        &b,
                        compiled,
                        layer,
                        true,
                        DenseBackwardInputIo { dy, params, below, dx },
                    )
                }),
                TunedKernel::BackwardWeights => {
                    let io = DenseBackwardWeightsIo {
                        x: &self.inputs[l],
                        dy: &self.output_gradients[l],
                        grads: &self.grads,
                    };
                    Some(dense::bind_backward_weights(&b, compiled, layer, io))
                }
                TunedKernel::Adam => None,
            })
            .collect()
    }
}
