//! The page: controls on the left, training figures in the middle, the model's predictions and
//! the draw pad below. Everything is HTML, SVG or a 2D canvas (a WebGPU canvas stays blank in
//! headless browsers, and the GPU is busy training anyway).

mod bench;
mod charts;
mod controls;
mod draw_pad;
mod explain;
mod gallery;
mod pixel_canvas;
mod saved_run;
mod study;
mod training;
mod weights;

use leptos::prelude::*;
use wasm_bindgen::JsValue;

use crate::page::session::Session;
use crate::page::study::StudySession;
use crate::settings::Settings;

#[component]
pub fn App() -> impl IntoView {
    let query = window().location().search().unwrap_or_default();
    let (settings, notices) = Settings::parse_query(&query);
    let study = StudySession::new();
    let session = Session::new(settings, study);
    // A link with a setting the page cannot use waits for the user instead of running another
    // experiment than the link says.
    let autostart = session.settings.get_untracked().autostart && notices.is_empty();
    session.settings_notices.set(notices);
    provide_context(session);
    provide_context(study);
    expose_test_hooks(session);

    // Keep the address bar in step with the controls, so the URL always reproduces the run.
    Effect::new(move |_| {
        let query = session.settings.with(Settings::to_query);
        if let Ok(history) = window().history() {
            let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("?{query}")));
        }
    });
    if session.settings.get_untracked().bench {
        return view! {
            <header class="top">
                <div>
                    <h1>"fashion-gpu benchmark"</h1>
                    <p class="tagline">"Training throughput of this browser's WebGPU adapter, as fashion-gpu bench measures it natively."</p>
                </div>
            </header>
            <main class="layout">
                <bench::BenchPanel />
            </main>
        }
        .into_any();
    }
    // A study link starts its study (studies are not saved); otherwise autostart waits for the
    // look at the saved run: a reload mid-run offers to resume.
    let study_link = session.settings.with_untracked(|s| s.study.is_some());
    // The worker starts (and the link's run with it) in a task after the first view's.
    set_timeout(
        move || {
            if autostart && study_link {
                study.start(session);
            }
            session.look_for_saved_run(autostart && !study_link);
        },
        std::time::Duration::ZERO,
    );

    // The panels appear one after another, each built in a task and laid out in a frame of its
    // own: building and laying out the whole page at once is one long task on a slow machine.
    let built = RwSignal::new(0usize);
    build_in_frames(built, 6);
    let after = move |panels: usize| move || built.get() >= panels;
    view! {
        <header class="top">
            <div>
                <h1>"fashion-gpu"</h1>
                <p class="tagline">"Train an MLP on Fashion-MNIST or MNIST in your browser, on the GPU via WebGPU."</p>
            </div>
            <StatusBadge />
        </header>
        <Banners />
        <saved_run::SavedRunBanner />
        <main class="layout">
            <section class="panel controls">
                <Show when=after(1)>
                    <controls::Controls />
                </Show>
            </section>
            <section class="panel training">
                <Show when=after(2)>
                    <training::ProgressPanel />
                    <charts::Charts />
                    <training::EpochTable />
                    <training::LogPanel />
                </Show>
            </section>
            <section class="panel study" data-testid="study" aria-label="Study">
                <Show when=after(3)>
                    <study::StudyPanel />
                </Show>
            </section>
            <section class="panel predictions">
                <Show when=after(4)>
                    <gallery::Gallery />
                    <weights::WeightsGrid />
                </Show>
            </section>
            <section class="panel draw">
                <Show when=after(5)>
                    <draw_pad::DrawPad />
                </Show>
            </section>
            <section class="panel confusion">
                <Show when=after(6)>
                    <gallery::ConfusionMatrix />
                </Show>
            </section>
        </main>
    }
    .into_any()
}

/// Counts `built` up to `panels`: each step in a task of its own (building a panel's DOM),
/// the next only after a frame has laid it out (a panel's first layout is a task of its own too).
fn build_in_frames(built: RwSignal<usize>, panels: usize) {
    set_timeout(
        move || {
            built.update(|n| *n += 1);
            if built.get_untracked() < panels {
                request_animation_frame(move || build_in_frames(built, panels));
            }
        },
        std::time::Duration::ZERO,
    );
}

/// `window.fashionGpuTestHooks`, for the e2e tests: `loseDevice()` has the worker destroy its
/// WebGPU device, as a driver reset would; `train()` presses Train whatever the page shows (a
/// second Train during a run); `postToWorker(value)` posts a raw message to the worker.
fn expose_test_hooks(session: Session) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsValue;
    let hooks = js_sys::Object::new();
    let hook = |name: &str, function: &JsValue| {
        let _ = js_sys::Reflect::set(&hooks, &name.into(), function);
    };
    let lose_device = Closure::<dyn Fn()>::new(move || session.lose_device());
    let train = Closure::<dyn Fn()>::new(move || session.start_training());
    let post = Closure::<dyn Fn(JsValue)>::new(move |value: JsValue| session.post_raw(&value));
    hook("loseDevice", lose_device.as_ref());
    hook("train", train.as_ref());
    hook("postToWorker", post.as_ref());
    let _ = js_sys::Reflect::set(&window(), &"fashionGpuTestHooks".into(), &hooks);
    // The page lives as long as its hooks.
    lose_device.forget();
    train.forget();
    post.forget();
}

#[component]
fn StatusBadge() -> impl IntoView {
    let s = expect_context::<Session>();
    let backend = move || s.backend.get().map(|b| b.as_str()).unwrap_or("");
    view! {
        <div class="badges">
            <span class=move || format!("status status-{}", s.status.get().as_str()) data-testid="status">
                {move || s.status.get().as_str()}
            </span>
            <span class="backend" data-testid="backend" title=move || s.adapter.get().unwrap_or_default()>
                {backend}
            </span>
        </div>
    }
}

/// Settings of the link that could not be used; why there is no GPU and how to get one; and
/// what failed.
#[component]
fn Banners() -> impl IntoView {
    let s = expect_context::<Session>();
    view! {
        {move || {
            let notices = s.settings_notices.get();
            (!notices.is_empty())
                .then(|| {
                    view! {
                        <div class="banner warning" data-testid="settings-notice" role="alert">
                            <strong>"Some settings in this link cannot be used; training waits for you. "</strong>
                            <ul>
                                {notices
                                    .into_iter()
                                    .map(|notice| {
                                        view! { <li data-key=notice.key.clone()>{notice.to_string()}</li> }
                                    })
                                    .collect_view()}
                            </ul>
                        </div>
                    }
                })
        }}
        {move || {
            s.gpu_notice
                .get()
                .map(|reason| {
                    view! {
                        <div class="banner warning" data-testid="no-webgpu" role="alert">
                            <strong>"No WebGPU — training runs on the CPU (slower). "</strong>
                            {reason}
                            " To train on the GPU, use Chrome or Edge 113+ (on Linux start Chrome with "
                            <code>"--enable-unsafe-webgpu"</code>
                            " or enable chrome://flags/#enable-unsafe-webgpu), Safari 26+, or Firefox 141+ on Windows; "
                            "make sure hardware acceleration is on in the browser settings."
                        </div>
                    }
                })
        }}
        {move || {
            s.refused
                .get()
                .map(|why| {
                    view! {
                        <div class="banner warning" data-testid="refused" role="status">
                            <strong>"Not done: "</strong>
                            {why}
                        </div>
                    }
                })
        }}
        {move || {
            s.error
                .get()
                .map(|message| {
                    view! {
                        <div class="banner error" data-testid="error" role="alert">
                            <strong>"Error: "</strong>
                            {message}
                        </div>
                    }
                })
        }}
    }
}
