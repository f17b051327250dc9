//! What differs between the browser and a native process, for the core and both front-ends.

/// Lets the browser run its event loop (paint, input) before continuing: a zero-delay timer, which
/// works on the page and in a worker alike. Natively there is nothing to yield to.
#[cfg(target_arch = "wasm32")]
pub async fn yield_now() {
    use wasm_bindgen::{JsCast, JsValue};
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let set_timeout = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("setTimeout"))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        let scheduled = set_timeout.map(|f| f.call2(&JsValue::NULL, &resolve, &JsValue::from(0)).is_ok());
        if scheduled != Some(true) {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

#[cfg(not(target_arch = "wasm32"))]
pub async fn yield_now() {}

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
