//! Pausing a training epoch between chunks without changing what it computes: the epoch's
//! future is simply not polled while paused. A pause takes hold at the first point the epoch
//! waits after it reported a finished chunk ([`PauseSwitch::chunk_done`]), so the model is
//! never left mid-step; on the GPU the chunk already queued behind it finishes meanwhile and
//! is read when training resumes. Nothing is undone or redone, so a paused and resumed epoch
//! ends with exactly the figures of one that never paused.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::task::{Poll, Waker};

/// Asked to pause or to go on; shared by the page's buttons and the running epoch.
#[derive(Default)]
pub struct PauseSwitch {
    requested: Cell<bool>,
    /// The last poll of the epoch ended with a chunk reported.
    after_chunk: Cell<bool>,
    /// The task of a parked epoch, woken on [`PauseSwitch::resume`].
    parked: RefCell<Option<Waker>>,
}

impl PauseSwitch {
    pub fn pause(&self) {
        self.requested.set(true);
    }

    pub fn resume(&self) {
        self.requested.set(false);
        if let Some(waker) = self.parked.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Called from the epoch's progress report: a chunk is finished.
    pub fn chunk_done(&self) {
        self.after_chunk.set(true);
    }

    /// Runs `epoch`, holding it between chunks while a pause is asked for; `on_parked(true)`
    /// when it holds, `on_parked(false)` when it goes on.
    pub async fn run<F: Future>(&self, epoch: F, on_parked: impl Fn(bool)) -> F::Output {
        let mut epoch = pin!(epoch);
        let mut holding = false;
        std::future::poll_fn(|cx| {
            if self.requested.get() && self.after_chunk.get() {
                if !holding {
                    holding = true;
                    on_parked(true);
                }
                *self.parked.borrow_mut() = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if holding {
                holding = false;
                on_parked(false);
            }
            self.after_chunk.set(false);
            epoch.as_mut().poll(cx)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::task::Context;

    /// An "epoch" of three chunks that waits once after each (as a trainer awaits a readback).
    async fn three_chunks(switch: Rc<PauseSwitch>, log: Rc<RefCell<Vec<u32>>>) -> u32 {
        for chunk in 1..=3 {
            log.borrow_mut().push(chunk);
            switch.chunk_done();
            yield_once().await;
        }
        3
    }

    async fn yield_once() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }

    #[test]
    fn a_pause_holds_after_the_chunk_and_resume_goes_on() {
        let switch = Rc::new(PauseSwitch::default());
        let log = Rc::new(RefCell::new(Vec::new()));
        let parked = Rc::new(RefCell::new(Vec::new()));
        let on_parked = {
            let parked = parked.clone();
            move |p| parked.borrow_mut().push(p)
        };
        let epoch = three_chunks(switch.clone(), log.clone());
        let mut run = pin!(switch.run(epoch, on_parked));
        let mut cx = Context::from_waker(Waker::noop());

        assert!(run.as_mut().poll(&mut cx).is_pending());
        assert_eq!(*log.borrow(), [1]);
        switch.pause();
        for _ in 0..5 {
            assert!(run.as_mut().poll(&mut cx).is_pending(), "held while paused");
        }
        assert_eq!(*log.borrow(), [1], "no chunk runs while paused");
        assert_eq!(*parked.borrow(), [true]);
        switch.resume();
        let mut output = None;
        for _ in 0..10 {
            if let Poll::Ready(v) = run.as_mut().poll(&mut cx) {
                output = Some(v);
                break;
            }
        }
        assert_eq!(output, Some(3));
        assert_eq!(*log.borrow(), [1, 2, 3]);
        assert_eq!(*parked.borrow(), [true, false]);
    }
}
