//! One name for "the fast CPU kernels may use rayon's threads" (`cfg(cpu_threads)`): natively
//! always; in wasm only when built with the `threads` feature (the page's threaded worker, built
//! with shared memory by scripts/build-worker-threads.sh).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(cpu_threads)");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32");
    if !wasm || std::env::var_os("CARGO_FEATURE_THREADS").is_some() {
        println!("cargo::rustc-cfg=cpu_threads");
    }
}
