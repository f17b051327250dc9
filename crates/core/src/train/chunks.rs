//! An epoch's training steps, chunk by chunk, for every backend, with the next chunk submitted
//! before the current one's loss is read (a GPU never waits for the host to encode): before each
//! chunk the model is copied into one of [`SNAPSHOTS`] snapshots; after it the epoch's running
//! loss is checked, and the first chunk whose loss is no longer finite is undone back to the
//! start of the last chunk whose losses were all finite (that chunk's first loss may already come
//! from bad weights). Three snapshots: while chunk k is checked, chunk k + 1 has overwritten one,
//! chunk k's start is in another, and chunk k − 1's (the last good one) is still whole.

use std::collections::VecDeque;

use web_time::Instant;

use super::{Progress, TrainConfig, TrainError};
use crate::platform::pass_turn;

/// Snapshots a trainer keeps for [`train_in_chunks`].
pub(crate) const SNAPSHOTS: usize = 3;

/// What a backend does for [`train_in_chunks`].
pub(crate) trait ChunkRunner {
    /// The settings: the chunk size and the learning rate.
    fn config(&self) -> &TrainConfig;
    /// The trainer's record of its good snapshot, kept across epochs.
    fn undo(&mut self) -> &mut Undo;
    /// Optimizer steps submitted so far, over the whole run.
    fn steps_taken(&self) -> u64;
    /// Starts training one step on each `(start, rows)` batch of the epoch's order, after copying
    /// the model (parameters, Adam's moments and step, BatchNorm's statistics) into snapshot
    /// `copy`; its loss is read by [`ChunkRunner::finished_loss`], in submission order.
    async fn submit_steps(&mut self, copy: usize, batches: &[(usize, usize)]) -> Result<(), TrainError>;
    /// The epoch's running mean loss after the oldest submitted chunk not read yet: not finite
    /// once any step's loss was not.
    async fn finished_loss(&mut self) -> Result<f32, TrainError>;
    /// Drops every chunk not read yet, waits for the work, and puts snapshot `copy` back; it was
    /// taken when `steps` optimizer steps had run.
    async fn restore_snapshot(&mut self, copy: usize, steps: u64) -> Result<(), TrainError>;
}

/// Which snapshot holds weights known to be good; kept by a trainer across epochs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Undo {
    chunks_run: u64,
    /// The snapshot copy and optimizer step at the start of the last chunk whose losses were
    /// all finite.
    last_good: Option<(usize, u64)>,
}

/// A submitted chunk: its snapshot, first step and length.
struct InFlight {
    copy: usize,
    start: u64,
    len: usize,
}

/// Trains `batches` in chunks of `steps_per_submit`, chunk k + 1 submitted before chunk k's loss
/// is read, reporting progress after each chunk, and stops at the first chunk whose running loss
/// is not finite: the model goes back to the last good snapshot and the error names the steps
/// undone.
pub(crate) async fn train_in_chunks<R: ChunkRunner>(
    runner: &mut R,
    epoch: usize,
    batches: &[(usize, usize)],
    started: Instant,
    mut on_progress: impl FnMut(&Progress),
) -> Result<(), TrainError> {
    let chunks: Vec<&[(usize, usize)]> = batches.chunks(runner.config().steps_per_submit.max(1)).collect();
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut submitted = 0;
    let mut done = 0;
    for k in 0..chunks.len() {
        // Keep one chunk ahead of the one being read.
        while submitted < chunks.len() && submitted <= k + 1 {
            let copy = ((runner.undo().chunks_run + in_flight.len() as u64) % SNAPSHOTS as u64) as usize;
            let start = runner.steps_taken();
            runner.submit_steps(copy, chunks[submitted]).await?;
            in_flight.push_back(InFlight { copy, start, len: chunks[submitted].len() });
            submitted += 1;
        }
        let chunk = in_flight.pop_front().expect("chunk k was submitted");
        let loss = runner.finished_loss().await?;
        if !loss.is_finite() {
            let (good_copy, good_step) = runner.undo().last_good.take().unwrap_or((chunk.copy, chunk.start));
            runner.restore_snapshot(good_copy, good_step).await?;
            return Err(TrainError::Diverged {
                epoch,
                first_step: good_step + 1,
                last_step: chunk.start + chunk.len as u64,
                loss,
                learning_rate: runner.config().adam.learning_rate,
            });
        }
        let undo = runner.undo();
        undo.last_good = Some((chunk.copy, chunk.start));
        undo.chunks_run += 1;
        done += chunk.len;
        on_progress(&Progress {
            epoch,
            step: done,
            steps: batches.len(),
            samples_done: chunks[k].last().map_or(0, |&(start, rows)| start + rows),
            seconds: started.elapsed().as_secs_f64(),
        });
        pass_turn().await;
    }
    Ok(())
}
