//! The threads this worker's CPU path trains with, and the adapter line that names them
//! (`CPU, 2 threads`, or `CPU, 1 thread (why)`). The threaded build (feature `threads`) starts
//! rayon's pool on the count its script's query asks for (`?threads=n`, chosen by the page:
//! [`crate::page::link::WorkerBuild`]); the one-thread build reads why the page started it
//! (`?one_thread=why`).

/// Starts this worker's threads and describes them for the adapter line.
pub(super) async fn start(query: &str) -> String {
    let params = web_sys::UrlSearchParams::new_with_str(query).ok();
    let param = |name: &str| params.as_ref().and_then(|p| p.get(name));
    #[cfg(feature = "threads")]
    {
        let requested = param("threads").and_then(|n| n.parse::<usize>().ok()).filter(|&n| n > 0).unwrap_or(1);
        match fashion_core::cpu::kernels::start_web_pool(requested).await {
            Ok(threads) => describe(threads, None),
            Err(why) => describe(1, Some(format!("its threads did not start: {why}"))),
        }
    }
    #[cfg(not(feature = "threads"))]
    {
        describe(1, Some(param("one_thread").unwrap_or_else(|| "the one-thread build of the worker".into())))
    }
}

fn describe(threads: usize, why_one: Option<String>) -> String {
    match (threads, why_one) {
        (1, Some(why)) => format!("CPU, 1 thread ({why})"),
        (1, None) => "CPU, 1 thread".into(),
        (n, _) => format!("CPU, {n} threads"),
    }
}
