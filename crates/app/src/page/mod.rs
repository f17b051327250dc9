//! The page: a Leptos view and the remote control of the training worker. It sends commands
//! ([`session::Session`]) and renders the events that come back; it never trains, predicts or
//! stores a run itself, so its main thread stays free to paint and answer.

mod components;
mod image;
mod link;
mod offline;
mod session;
mod study;

/// The page's entry point. The view is built in a task of its own, after the one that
/// instantiated the wasm (together they made one long task on a slow machine).
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::prelude::set_timeout(
        || {
            wasm_bindgen_futures::spawn_local(offline::register_service_worker());
            leptos::mount::mount_to_body(components::App);
        },
        std::time::Duration::ZERO,
    );
}
