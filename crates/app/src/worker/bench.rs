//! `?bench=1`: the core's training benchmark (`fashion_core::bench`, what `fashion-gpu bench`
//! runs natively) on the worker's WebGPU adapter, or with `backend=cpu` on the fast CPU kernels
//! (what `fashion-gpu bench --backend cpu` runs). `bench_steps=`, `batch=`, `model=` and
//! `steps_per_submit=` apply.

use std::sync::Arc;

use fashion_core::bench::{self, BenchOptions, BenchReport};
use fashion_core::{CpuKernels, GpuContext};
use fashion_report::bench_report;

use super::device::{browser_adapter_info, browser_has_webgpu};
use crate::settings::{BackendChoice, Settings};

/// Timed steps when `bench_steps=` is not given: a few seconds on SwiftShader.
const DEFAULT_STEPS: usize = 50;

/// The benchmark's summary and its JSON line.
pub(crate) async fn run(settings: &Settings) -> Result<(String, String), String> {
    let report = measure(settings).await?;
    Ok((bench_report::summary(&report), bench_report::to_json(&report).to_string()))
}

async fn measure(settings: &Settings) -> Result<BenchReport, String> {
    let spec = settings.model_spec().map_err(|e| e.to_string())?;
    let defaults = BenchOptions::default();
    let options = BenchOptions {
        batch: settings.batch,
        steps: settings.bench_steps.unwrap_or(DEFAULT_STEPS),
        steps_per_submit: settings.steps_per_submit.unwrap_or(defaults.steps_per_submit),
        ..defaults
    };
    if settings.backend == BackendChoice::Cpu {
        return bench::run_cpu(&spec, &options, CpuKernels::Fast).await.map_err(|e| e.to_string());
    }
    if !browser_has_webgpu() {
        return Err("this browser does not offer WebGPU".into());
    }
    // The core takes an `Arc`; on the web (one thread) WebGPU handles are !Send.
    #[allow(clippy::arc_with_non_send_sync)]
    let ctx = Arc::new(GpuContext::new().await.map_err(|e| e.to_string())?);
    let mut report = bench::run(ctx, &spec, &options).await.map_err(|e| e.to_string())?;
    // wgpu leaves the adapter's name empty on the web: ask the browser.
    if let Some(described) = browser_adapter_info().await {
        report.adapter = described;
    }
    Ok(report)
}
