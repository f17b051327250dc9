//! An epoch's training steps, chunk by chunk, for every backend: before each chunk the model is
//! copied into one of two snapshots; after it the epoch's running loss is checked, and the first
//! chunk whose loss is no longer finite is undone back to the start of the last chunk whose
//! losses were all finite (that chunk's first loss may already come from bad weights).

use web_time::Instant;

use super::{Progress, TrainConfig, TrainError};

/// What a backend does for [`train_in_chunks`].
pub(crate) trait ChunkRunner {
    /// The settings: the chunk size and the learning rate.
    fn config(&self) -> &TrainConfig;
    /// The trainer's record of its good snapshot, kept across epochs.
    fn undo(&mut self) -> &mut Undo;
    /// Optimizer steps taken so far, over the whole run.
    fn steps_taken(&self) -> u64;
    /// Copies the model (parameters, Adam's moments and step, BatchNorm's statistics) into
    /// snapshot `copy` (0 or 1).
    fn save_snapshot(&mut self, copy: usize);
    /// Puts snapshot `copy` back; it was taken when `steps` optimizer steps had run.
    async fn restore_snapshot(&mut self, copy: usize, steps: u64) -> Result<(), TrainError>;
    /// Trains one step on each `(start, rows)` batch of the epoch's order and returns the
    /// epoch's running mean loss so far: not finite once any step's loss was not.
    async fn train_steps(&mut self, batches: &[(usize, usize)]) -> Result<f32, TrainError>;
}

/// Which snapshot holds weights known to be good; kept by a trainer across epochs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Undo {
    chunks_run: u64,
    /// The snapshot copy and optimizer step at the start of the last chunk whose losses were
    /// all finite.
    last_good: Option<(usize, u64)>,
}

/// Trains `batches` in chunks of `steps_per_submit`, reporting progress after each chunk, and
/// stops at the first chunk whose running loss is not finite: the model goes back to the last
/// good snapshot and the error names the steps undone.
pub(crate) async fn train_in_chunks<R: ChunkRunner>(
    runner: &mut R,
    epoch: usize,
    batches: &[(usize, usize)],
    started: Instant,
    mut on_progress: impl FnMut(&Progress),
) -> Result<(), TrainError> {
    let mut done = 0;
    for chunk in batches.chunks(runner.config().steps_per_submit.max(1)) {
        let copy = (runner.undo().chunks_run % 2) as usize;
        let chunk_start = runner.steps_taken();
        runner.save_snapshot(copy);
        let loss = runner.train_steps(chunk).await?;
        if !loss.is_finite() {
            let (good_copy, good_step) = runner.undo().last_good.take().unwrap_or((copy, chunk_start));
            runner.restore_snapshot(good_copy, good_step).await?;
            return Err(TrainError::Diverged {
                epoch,
                first_step: good_step + 1,
                last_step: chunk_start + chunk.len() as u64,
                loss,
                learning_rate: runner.config().adam.learning_rate,
            });
        }
        let undo = runner.undo();
        undo.last_good = Some((copy, chunk_start));
        undo.chunks_run += 1;
        done += chunk.len();
        on_progress(&Progress {
            epoch,
            step: done,
            steps: batches.len(),
            samples_done: chunk.last().map_or(0, |&(start, rows)| start + rows),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok(())
}
