//! What differs between the browser and a native process, for the core and both front-ends.

/// Lets the browser run its event loop (paint, input) before continuing: a zero-delay timer
/// (gloo's, the global `setTimeout`), which works on the page and in a worker alike. Natively
/// there is nothing to yield to.
#[cfg(target_arch = "wasm32")]
pub async fn yield_now() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

#[cfg(not(target_arch = "wasm32"))]
pub async fn yield_now() {}
