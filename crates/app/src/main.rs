//! The fashion-gpu page: pick a dataset and a model, train it in the browser (WebGPU, or the CPU
//! where there is none), watch it learn, and try it on test images and your own drawings.

mod components;
mod data;
mod image;
mod offline;
mod pause;
mod saved_run;
mod session;
mod settings;
mod study;

fn main() {
    console_error_panic_hook::set_once();
    wasm_bindgen_futures::spawn_local(offline::register_service_worker());
    leptos::mount::mount_to_body(components::App);
}
