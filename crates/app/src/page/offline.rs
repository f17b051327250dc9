//! Working offline: registers the page's service worker (`web/sw.js`, shipped by Trunk beside
//! `index.html`), which keeps the page and Fashion-MNIST in Cache Storage after a first visit.

use js_sys::Reflect;
use wasm_bindgen_futures::JsFuture;

use crate::describe;

/// Registers `sw.js`; where the browser has no service workers (outside a secure context) or
/// refuses, the page works as before, online only, and the console says why.
pub async fn register_service_worker() {
    let Some(window) = web_sys::window() else { return };
    let navigator = window.navigator();
    if !Reflect::has(&navigator, &"serviceWorker".into()).unwrap_or(false) {
        return;
    }
    if let Err(error) = JsFuture::from(navigator.service_worker().register("sw.js")).await {
        let why = format!(
            "fashion-gpu: the service worker did not register ({}); the page needs the network",
            describe(&error)
        );
        web_sys::console::warn_1(&why.into());
    }
}
