//! What differs between the browser and a native process, for the core and both front-ends.

/// Lets the browser run its event loop (input, painting, a worker's incoming messages) before
/// continuing: a message to itself through a `MessageChannel`, which works on the page and in a
/// worker alike. Unlike a zero-delay timer it is never clamped to 4 ms when nested (a yield
/// every 12 ms would pay a quarter of its time for it), and a hidden page's timer throttling
/// never reaches it. Natively there is nothing to yield to.
#[cfg(target_arch = "wasm32")]
pub async fn yield_now() {
    use wasm_bindgen::JsValue;
    let Ok(channel) = web_sys::MessageChannel::new() else { return };
    let delivered = js_sys::Promise::new(&mut |resolve, _reject| {
        channel.port1().set_onmessage(Some(&resolve));
        if channel.port2().post_message(&JsValue::UNDEFINED).is_err() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(delivered).await;
    // The channel lives (held here) until its message arrived.
    channel.port1().close();
}

#[cfg(not(target_arch = "wasm32"))]
pub async fn yield_now() {}

/// Work between yields on the page: under a frame (16.7 ms), so the page keeps painting and
/// answering, and far over a yield's own cost (a zero-delay timer is clamped to 4 ms once
/// nested, which a yield after every 10 ms step would pay 30 % for; [`yield_now`] is not one).
pub const YIELD_AFTER: std::time::Duration = std::time::Duration::from_millis(12);

/// Yields ([`yield_now`]) once [`YIELD_AFTER`] has passed since the last yield.
#[derive(Debug)]
pub struct YieldBudget {
    since: web_time::Instant,
}

impl Default for YieldBudget {
    fn default() -> Self {
        YieldBudget { since: web_time::Instant::now() }
    }
}

impl YieldBudget {
    /// Call between units of work.
    pub async fn tick(&mut self) {
        if self.since.elapsed() >= YIELD_AFTER {
            yield_now().await;
            self.since = web_time::Instant::now();
        }
    }
}

/// Hands the executor back once, at no cost: the task is woken at once, and whatever else it
/// polls together with this future (several trainers' epochs joined into one, as a study runs
/// them) gets its turn first. Unlike [`yield_now`] it never lets the browser paint.
pub async fn pass_turn() {
    let mut passed = false;
    std::future::poll_fn(|cx| {
        if passed {
            std::task::Poll::Ready(())
        } else {
            passed = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await
}
