//! Threads kept awake through training steps, for splits too small to wake a sleeping thread
//! for. A rayon worker that finds no work sleeps within microseconds, and waking it again costs
//! 0.1–0.5 ms on a small virtual machine (more for a browser's Web Worker): about what the
//! baseline's 20 M multiply-add product at batch 100 takes on one core, so rayon's split of such
//! a product gains nothing. While a [`Session`] lasts (a chunk of training steps), `threads() − 1`
//! of the pool's threads spin instead, each on a [`Slot`]; [`for_each_chunk_mut`] posts a chunk
//! to each of them, computes the first chunk itself, then takes back any chunk no thread has
//! picked up yet and computes it too. So it never waits for a thread that has not come, and the
//! spinning threads go back to rayon's pool when the session ends.
//!
//! One session at a time, owned by the thread that started it, which must not be one of the
//! pool's (the native trainer's thread, the page worker's own): the pool then always keeps a
//! thread that does not spin, for whatever rayon work the steps still hand to it. A chunk that
//! panics on a spinning thread takes the process down (rayon's handler aborts): never a hang.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::float_mode::FloatMode;
use super::threads;

/// A chunk's work, its borrows' lifetime erased (see [`for_each_chunk_mut`]'s safety note).
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Where one spinning thread finds its next chunk. Each on a cache line of its own (128 bytes:
/// two lines, as adjacent-line prefetchers pair them), as is [`SESSION`]: a spinning thread reads
/// them all the time, and a write nearby (another slot, a lock of the allocator's) would
/// otherwise take the line from it each time. (Before they were aligned, the page's baseline
/// trained at 21 K samples/s on 2 threads or at 31 K, as unrelated statics moved.)
#[repr(align(128))]
struct Slot {
    job: Mutex<Option<Job>>,
    /// A job was put in `job` (a hint: the mutex decides who takes it).
    posted: AtomicBool,
    /// The job a spinning thread took has run.
    ran: AtomicBool,
}

/// The most threads a session keeps awake.
const MOST_AWAKE: usize = 15;

static SLOTS: [Slot; MOST_AWAKE] =
    [const { Slot { job: Mutex::new(None), posted: AtomicBool::new(false), ran: AtomicBool::new(false) } }; MOST_AWAKE];

/// The running session's number (0: none); its threads spin while it stays theirs.
static SESSION: OwnLine<AtomicU64> = OwnLine(AtomicU64::new(0));

#[repr(align(128))]
struct OwnLine<T>(T);
static LAST_SESSION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Threads kept awake for this thread's session (0 where it runs none).
    static AWAKE_FOR_THIS_THREAD: Cell<usize> = const { Cell::new(0) };
}

/// Keeps `threads() − 1` of rayon's threads spinning for [`for_each_chunk_mut`] until dropped;
/// `None` where there is one thread, on a pool thread, or while another session runs.
pub struct Session {
    /// Not `Send`: the session is this thread's ([`awake`] is a thread-local).
    _owned_here: std::marker::PhantomData<*const ()>,
}

impl Session {
    pub fn start() -> Option<Session> {
        let awake = (threads() - 1).min(MOST_AWAKE);
        if awake == 0 || rayon::current_thread_index().is_some() {
            return None;
        }
        let session = LAST_SESSION.fetch_add(1, Ordering::Relaxed) + 1;
        SESSION.0.compare_exchange(0, session, Ordering::AcqRel, Ordering::Acquire).ok()?;
        for slot in &SLOTS[..awake] {
            rayon::spawn(move || spin(slot, session));
        }
        AWAKE_FOR_THIS_THREAD.set(awake);
        Some(Session { _owned_here: std::marker::PhantomData })
    }
}

#[cfg(test)]
impl Session {
    /// A session as soon as no other test holds one (`None` with one thread).
    pub fn waited_for() -> Option<Session> {
        loop {
            match Session::start() {
                None if threads() > 1 => std::thread::yield_now(),
                session => return session,
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        AWAKE_FOR_THIS_THREAD.set(0);
        SESSION.0.store(0, Ordering::Release);
    }
}

/// Threads spinning for this thread's session now (0: none; [`for_each_chunk_mut`] then runs
/// every chunk here).
pub fn awake() -> usize {
    AWAKE_FOR_THIS_THREAD.get()
}

/// A pool thread's part of session `session`: run what is posted to `slot` until it ends.
fn spin(slot: &Slot, session: u64) {
    while SESSION.0.load(Ordering::Acquire) == session {
        // Read until something is posted (a read keeps the line shared), then take it.
        if slot.posted.load(Ordering::Relaxed) && slot.posted.swap(false, Ordering::Acquire) {
            let job = slot.job.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(job) = job {
                job();
                slot.ran.store(true, Ordering::Release);
            }
        } else {
            std::hint::spin_loop();
        }
    }
}

/// `work(i, chunk)` for every `chunk_len`-long chunk `i` of `data`: chunk 0 here, the next
/// [`awake`] ones on the spinning threads (any a thread has not taken by then here too), the
/// rest here. One call writes each chunk, in this thread's flush-to-zero mode wherever it runs,
/// so the values do not depend on who computed it.
pub fn for_each_chunk_mut<T: Send>(data: &mut [T], chunk_len: usize, work: impl Fn(usize, &mut [T]) + Sync) {
    let work = &work;
    let mut chunks = data.chunks_mut(chunk_len.max(1)).enumerate();
    let Some((_, first)) = chunks.next() else { return };
    let slots = &SLOTS[..awake()];
    // A chunk is computed in this thread's flush-to-zero mode wherever it runs.
    let mode = FloatMode::of_this_thread();
    // Every posted job is taken back or has run before this returns or unwinds.
    struct Collects<'a>(&'a [Slot]);
    impl Drop for Collects<'_> {
        fn drop(&mut self) {
            for slot in self.0 {
                slot.posted.store(false, Ordering::Relaxed);
                let taken_back = slot.job.lock().unwrap_or_else(|e| e.into_inner()).take();
                match taken_back {
                    Some(job) if !std::thread::panicking() => job(),
                    Some(_) => {}
                    None => {
                        while !slot.ran.load(Ordering::Acquire) {
                            std::hint::spin_loop();
                        }
                    }
                }
            }
        }
    }
    let mut posted = 0;
    for slot in slots {
        let Some((i, chunk)) = chunks.next() else { break };
        let job: Box<dyn FnOnce() + Send + '_> = Box::new(move || mode.run(|| work(i, chunk)));
        // SAFETY: the job borrows `work` and a chunk of `data`, both alive until this function
        // returns. It does not return, nor unwind, before `Collects` has taken every posted job
        // back (dropping it unrun when unwinding) or seen it run (`ran`), so the job never
        // outlives its borrows; the lifetime is erased only to pass it through a static slot.
        let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + '_>, Job>(job) };
        slot.ran.store(false, Ordering::Relaxed);
        *slot.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(job);
        slot.posted.store(true, Ordering::Release);
        posted += 1;
    }
    let _collects = Collects(&slots[..posted]);
    work(0, first);
    for (i, chunk) in chunks {
        work(i, chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chunk computed once, in or out of a session, whether or not the threads came.
    #[test]
    fn every_chunk_is_computed_once() {
        let check = |len: usize, chunk_len: usize| {
            let mut data = vec![0u32; len];
            for_each_chunk_mut(&mut data, chunk_len, |i, chunk| chunk.iter_mut().for_each(|x| *x += i as u32 + 1));
            let expected: Vec<u32> = (0..len).map(|j| (j / chunk_len) as u32 + 1).collect();
            assert_eq!(data, expected, "{len} values in chunks of {chunk_len} (awake: {})", awake());
        };
        for (len, chunk_len) in [(0, 3), (7, 3), (100, 50), (100, 7), (5, 9)] {
            check(len, chunk_len);
            let session = Session::waited_for();
            (0..20).for_each(|_| check(len, chunk_len));
            drop(session);
        }
        assert_eq!(awake(), 0, "the session ended");
        // Inside a pool thread no session starts: all here.
        rayon::scope(|_| assert!(Session::start().is_none()));
    }

    /// A session whose threads never come (every pool thread busy elsewhere) still finishes.
    #[test]
    fn a_session_does_not_wait_for_threads_that_do_not_come() {
        use std::sync::atomic::AtomicUsize;
        use std::sync::Arc;
        let (hold, started) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicUsize::new(0)));
        let pool_threads = rayon::current_num_threads();
        for _ in 0..pool_threads {
            let (hold, started) = (hold.clone(), started.clone());
            rayon::spawn(move || {
                started.fetch_add(1, Ordering::AcqRel);
                while hold.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            });
        }
        while started.load(Ordering::Acquire) < pool_threads {
            std::hint::spin_loop();
        }
        let mut data = vec![0u8; 64];
        let session = Session::waited_for();
        for_each_chunk_mut(&mut data, 16, |i, c| c.fill(i as u8 + 1));
        drop(session);
        hold.store(false, Ordering::Release);
        assert_eq!(data.chunks(16).map(|c| c[0]).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }
}
