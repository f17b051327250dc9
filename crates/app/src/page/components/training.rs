//! The progress bar, the per-epoch table and the study's log lines.

use leptos::prelude::*;

use crate::page::session::{Session, Status};

#[component]
pub fn ProgressPanel() -> impl IntoView {
    let s = expect_context::<Session>();
    let epochs = move || s.settings.with(|s| s.epochs);
    let fraction = move || {
        let done_epochs = s.history.with(Vec::len);
        match s.progress.get() {
            _ if s.status.get() == Status::Done => 1.0,
            Some(p) if p.steps > 0 => ((p.epoch - 1) * p.steps + p.step) as f64 / (epochs() * p.steps) as f64,
            _ => done_epochs as f64 / epochs() as f64,
        }
    };
    let samples_per_sec = move || {
        let live = s.progress.get().filter(|p| p.seconds > 0.0).map(|p| p.samples_done as f64 / p.seconds);
        match s.status.get() {
            Status::Training => live,
            _ => s.history.with(|h| h.last().map(|e| e.samples_per_second())).or(live),
        }
    };
    let text = move || {
        let Some(p) = s.progress.get() else {
            return match s.status.get() {
                Status::Loading => "Loading the data and preparing the trainer…".to_string(),
                _ => "Not training. Choose settings and press Train.".to_string(),
            };
        };
        let rate = p.step as f64 / p.seconds.max(1e-9);
        let remaining_steps = (p.steps - p.step) + (epochs().saturating_sub(p.epoch)) * p.steps;
        let eta = if s.status.get() == Status::Training {
            format!(" · ETA {}", duration(remaining_steps as f64 / rate.max(1e-9)))
        } else {
            String::new()
        };
        format!("Epoch {}/{} · step {}/{}{}", p.epoch, epochs(), p.step, p.steps, eta)
    };
    view! {
        <h2>"Training"</h2>
        <div
            class="progress"
            role="progressbar"
            aria-label="Training progress"
            aria-valuemin="0"
            aria-valuemax="100"
            aria-valuenow=move || format!("{:.0}", fraction() * 100.0)
        >
            // Scaled, not resized: the compositor animates the fill between updates, so the
            // page's thread does not lay out and paint it every frame while training runs.
            <div class="progress-fill" style:transform=move || format!("scaleX({:.4})", fraction())></div>
        </div>
        <p class="progress-text">
            <span data-testid="progress-text">{text}</span>
            " · "
            <span data-testid="samples-per-sec">{move || samples_per_sec().map(|r| format!("{r:.0}")).unwrap_or("–".into())}</span>
            " samples/s"
            {move || {
                s.first_step_ms
                    .get()
                    .map(|ms| {
                        view! {
                            " · first step "
                            <span data-testid="first-step-ms" data-ms=format!("{ms:.0}")>
                                {format!("{:.1} s", ms / 1000.0)}
                            </span>
                            " after page load"
                        }
                    })
            }}
        </p>
        <p class="adapter" data-testid="adapter">{move || {
            // On the GPU the WebGPU adapter; on the CPU its threads (`CPU, 2 threads`).
            match s.backend.get() {
                Some(fashion_core::Backend::Gpu) => s.adapter.get().map(|a| format!("WebGPU adapter: {a}")),
                Some(fashion_core::Backend::Cpu) => s.adapter.get(),
                None => None,
            }
        }}</p>
        {move || {
            s.gpu_allocations
                .get()
                .map(|a| {
                    view! {
                        <p class="adapter">
                            "GPU memory held: "
                            <span
                                data-testid="gpu-bytes"
                                data-bytes=a.bytes.to_string()
                                data-buffers=a.buffers.to_string()
                            >
                                {format!("{:.1} MB in {} buffers", a.bytes as f64 / 1e6, a.buffers)}
                            </span>
                        </p>
                    }
                })
        }}
    }
}

fn duration(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{:.0} min {:.0} s", (seconds / 60.0).floor(), seconds % 60.0)
    }
}

#[component]
pub fn EpochTable() -> impl IntoView {
    let s = expect_context::<Session>();
    view! {
        <table class="epochs">
            <thead>
                <tr>
                    <th>"Epoch"</th>
                    <th>"Loss"</th>
                    <th>"Train acc."</th>
                    <th>"Test loss"</th>
                    <th>"Test acc."</th>
                    <th>"Samples/s"</th>
                </tr>
            </thead>
            <tbody>
                {move || {
                    s.history
                        .get()
                        .into_iter()
                        .map(|e| {
                            view! {
                                <tr
                                    data-testid="epoch-row"
                                    data-epoch=e.epoch
                                    data-loss=e.loss.to_string()
                                    data-train-accuracy=e.train_accuracy.to_string()
                                    data-test-accuracy=e.test_accuracy.to_string()
                                >
                                    <td>{e.epoch}</td>
                                    <td>{format!("{:.4}", e.loss)}</td>
                                    <td>{format!("{:.4}", e.train_accuracy)}</td>
                                    <td>{format!("{:.4}", e.test_loss)}</td>
                                    <td>{format!("{:.4}", e.test_accuracy)}</td>
                                    <td>{format!("{:.0}", e.samples_per_second())}</td>
                                </tr>
                            }
                        })
                        .collect_view()
                }}
            </tbody>
        </table>
    }
}

#[component]
pub fn LogPanel() -> impl IntoView {
    let s = expect_context::<Session>();
    view! {
        <h3>"Log"</h3>
        <pre class="log" data-testid="log" role="log" tabindex="0" aria-label="Training log">{move || s.log.get().join("\n")}</pre>
    }
}
