//! The fashion-gpu page: pick a dataset and a model, train it in the browser (WebGPU, or the CPU
//! where there is none) in a worker, watch it learn, and try it on test images and drawings.

fn main() {
    fashion_app::page::start();
}
