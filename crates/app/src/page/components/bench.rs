//! `?bench=1`: the core's training benchmark, run by the training worker on its WebGPU adapter
//! (or with `backend=cpu` on the fast CPU kernels), as `fashion-gpu bench` runs it natively. Its
//! JSON line is shown as `data-testid="bench-json"`; `bench_steps=`, `batch=`, `model=` and
//! `steps_per_submit=` apply.

use leptos::prelude::*;

use crate::page::session::Session;

#[component]
pub fn BenchPanel() -> impl IntoView {
    let s = expect_context::<Session>();
    s.run_bench();
    let status = move || match s.bench.get() {
        None => "running".to_string(),
        Some(Ok(_)) => "done".to_string(),
        Some(Err(message)) => format!("error: {message}"),
    };
    let report = move |part: fn(&(String, String)) -> &String| {
        s.bench.with(|b| b.as_ref().and_then(|r| r.as_ref().ok()).map(|r| part(r).clone()))
    };
    view! {
        <section class="panel">
            <h2>"Benchmark"</h2>
            <p>
                "Status: " <span data-testid="bench-status">{status}</span>
            </p>
            <pre class="bench-summary">{move || report(|r| &r.0)}</pre>
            <pre class="bench-json" data-testid="bench-json">
                {move || report(|r| &r.1)}
            </pre>
        </section>
    }
}
