//! The fashion-gpu page and its training worker: two wasm entry points of one crate.
//!
//! - [`page`] (entry `src/main.rs`): the Leptos view and remote control. It computes nothing: it
//!   sends commands and renders what comes back.
//! - [`worker`] (entry `src/bin/fashion-worker.rs`): a dedicated Web Worker that owns the data,
//!   the trainer (WebGPU or CPU), the study, predictions, weights files and saved runs.
//! - [`protocol`]: the typed, versioned messages between them; [`settings`]: the page's link,
//!   which both read.

pub mod page;
pub mod protocol;
pub mod settings;
pub mod worker;

/// A JavaScript exception as text (both sides name what the browser refused).
pub fn describe(error: &wasm_bindgen::JsValue) -> String {
    use wasm_bindgen::JsCast;
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}
