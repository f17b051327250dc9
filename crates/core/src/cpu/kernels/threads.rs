//! The threads the fast CPU kernels may use, decided in one place. Natively: rayon's global
//! pool, started here once with flush-to-zero on every worker (`RAYON_NUM_THREADS` sets its
//! size). In the page's threaded worker (a wasm build with the `threads` feature: nightly Rust,
//! shared memory, `scripts/build-worker-threads.sh`): the pool of Web Workers that
//! [`start_web_pool`] starts through `wasm-bindgen-rayon`. Everywhere else, and in a threaded
//! worker whose pool did not start, one thread. Every threaded pass asks [`threads`] first, and
//! no pass splits a sum by threads (a convolutional model's shards depend on the batch alone:
//! `CpuModel::shards`), so results do not depend on the count.

#[cfg(all(target_arch = "wasm32", feature = "threads"))]
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the worker's pool of Web Workers runs; rayon must not start a pool of its own in
/// wasm (it would try `std::thread::spawn`, which wasm lacks).
#[cfg(all(target_arch = "wasm32", feature = "threads"))]
static WEB_POOL: AtomicBool = AtomicBool::new(false);

/// The threads the kernels may use now (1: no threaded pass runs).
pub fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        super::float_mode::start_pool();
        rayon::current_num_threads()
    }
    #[cfg(all(target_arch = "wasm32", feature = "threads"))]
    {
        if WEB_POOL.load(Ordering::Acquire) {
            rayon::current_num_threads()
        } else {
            1
        }
    }
    #[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
    {
        1
    }
}

/// Starts rayon's pool on `count` Web Workers sharing this module's memory, and resolves when
/// they run (or names why they could not start; the kernels then stay on one thread). Call it
/// once, from a worker (the threads block with `Atomics.wait`, which a page's main thread may
/// not), before the kernels run.
#[cfg(all(target_arch = "wasm32", feature = "threads"))]
pub async fn start_web_pool(count: usize) -> Result<usize, String> {
    if WEB_POOL.load(Ordering::Acquire) {
        return Ok(rayon::current_num_threads());
    }
    let started = wasm_bindgen_futures::JsFuture::from(wasm_bindgen_rayon::init_thread_pool(count)).await;
    match started {
        Ok(_) => {
            WEB_POOL.store(true, Ordering::Release);
            Ok(rayon::current_num_threads())
        }
        Err(error) => Err(error.as_string().unwrap_or_else(|| format!("{error:?}"))),
    }
}
