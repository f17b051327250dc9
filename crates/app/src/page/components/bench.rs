//! `?bench=1`: the core's training benchmark (`fashion_core::bench`, what `fashion-gpu bench`
//! runs natively) on this browser's WebGPU adapter, or with `backend=cpu` on the fast CPU
//! kernels (what `fashion-gpu bench --backend cpu` runs). Its JSON line is shown as
//! `data-testid="bench-json"`; `bench_steps=`, `batch=`, `model=` and `steps_per_submit=` apply.

use std::sync::Arc;

use fashion_core::bench::{self, BenchOptions, BenchReport};
use fashion_core::{CpuKernels, GpuContext};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::session::{browser_adapter_info, browser_has_webgpu, Session};
use crate::settings::{BackendChoice, Settings};

/// Timed steps when `bench_steps=` is not given: a few seconds on SwiftShader.
const DEFAULT_STEPS: usize = 50;

#[component]
pub fn BenchPanel() -> impl IntoView {
    let settings = expect_context::<Session>().settings.get_untracked();
    let status = RwSignal::new("running".to_string());
    let report = RwSignal::new(None::<BenchReport>);
    spawn_local(async move {
        match run(&settings).await {
            Ok(done) => {
                report.set(Some(done));
                status.set("done".into());
            }
            Err(message) => status.set(format!("error: {message}")),
        }
    });
    view! {
        <section class="panel">
            <h2>"Benchmark"</h2>
            <p>
                "Status: " <span data-testid="bench-status">{move || status.get()}</span>
            </p>
            <pre class="bench-summary">{move || report.with(|r| r.as_ref().map(BenchReport::summary))}</pre>
            <pre class="bench-json" data-testid="bench-json">
                {move || report.with(|r| r.as_ref().map(|r| r.to_json().to_string()))}
            </pre>
        </section>
    }
}

async fn run(settings: &Settings) -> Result<BenchReport, String> {
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
