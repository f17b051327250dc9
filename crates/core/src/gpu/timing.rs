//! Benchmark hook: a training step's dispatches timed one by one with GPU timestamps.

pub use super::dispatches::Phase;
use super::kernel::{write_steps, BoundKernel};
use super::trainer::GpuTrainer;
use crate::train::{batches, TrainError};

/// GPU time one dispatch of a training step took, summed over the timed steps.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchTime {
    /// The implementation that ran, e.g. `dense_forward_vec4`.
    pub kernel: &'static str,
    pub phase: Phase,
    pub seconds: f64,
}

impl GpuTrainer {
    /// Trains `steps` more steps on the first batches of the current order (wrapping around; no
    /// evaluation), each dispatch in its own compute pass between GPU timestamps, and returns the
    /// time of each dispatch of a step, in order, summed over the steps. `None` when the device
    /// has no timestamp queries. The extra passes cost a little: [`GpuTrainer::run_epoch`] runs a
    /// whole step in one.
    pub async fn time_train_dispatches(&mut self, steps: usize) -> Result<Option<Vec<DispatchTime>>, TrainError> {
        if !self.ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Ok(None);
        }
        let dispatches: Vec<(&BoundKernel, Phase)> = self.dispatches.train_step_phases().collect();
        let mut times: Vec<DispatchTime> = dispatches
            .iter()
            .map(|&(kernel, phase)| DispatchTime { kernel: kernel.label(), phase, seconds: 0.0 })
            .collect();
        let epoch_batches: Vec<_> = batches(self.train.len, self.config.batch).collect();
        let train_batches: Vec<_> = epoch_batches.iter().copied().cycle().take(steps).collect();
        for chunk in train_batches.chunks(self.config.steps_per_submit) {
            // The same per-step values as `run_epoch`.
            let step_values = self.training_steps(chunk);
            write_steps(&self.ctx, &self.steps, &step_values);
            // One query set per step: a set holds at most 4,096 queries (2 per dispatch), which a
            // whole chunk of steps passes (200 steps of the baseline's 11 dispatches: 4,400).
            let per_step = (dispatches.len() * 2) as u32;
            let stride = (u64::from(per_step) * 8).next_multiple_of(wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT);
            let query_sets: Vec<wgpu::QuerySet> = (0..chunk.len())
                .map(|_| {
                    self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                        label: Some("dispatch timestamps"),
                        ty: wgpu::QueryType::Timestamp,
                        count: per_step,
                    })
                })
                .collect();
            let resolved = self.ctx.create_buffer(&wgpu::BufferDescriptor {
                label: Some("dispatch timestamps"),
                size: stride * chunk.len() as u64,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
            for (slot, (step, queries)) in step_values.iter().zip(&query_sets).enumerate() {
                for (i, (kernel, _)) in dispatches.iter().enumerate() {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: queries,
                            beginning_of_pass_write_index: Some(2 * i as u32),
                            end_of_pass_write_index: Some(2 * i as u32 + 1),
                        }),
                    });
                    kernel.encode(&mut pass, slot as u32, step.rows);
                }
                encoder.resolve_query_set(queries, 0..per_step, &resolved, stride * slot as u64);
            }
            self.ctx.queue.submit([encoder.finish()]);
            self.global_step += chunk.len() as u64;
            let bytes = self.ctx.read_bytes(&resolved, stride * chunk.len() as u64).await?;
            let seconds_per_tick = f64::from(self.ctx.queue.get_timestamp_period()) * 1e-9;
            for step in bytes.chunks_exact(stride as usize) {
                let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&step[..per_step as usize * 8]);
                for (time, pair) in times.iter_mut().zip(ticks.chunks_exact(2)) {
                    time.seconds += pair[1].saturating_sub(pair[0]) as f64 * seconds_per_tick;
                }
            }
            query_sets.iter().for_each(wgpu::QuerySet::destroy);
        }
        Ok(Some(times))
    }
}
