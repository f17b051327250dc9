//! Dataset, model and training settings, Train / Stop, the model summary, and weights files.

use fashion_core::{EpochMetrics, ModelSpec, PRESETS};
use fashion_data::DatasetName;
use fashion_interop::Format;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{HtmlAnchorElement, HtmlInputElement, Url};

use crate::describe;
use crate::page::session::{Session, Status};
use crate::settings::{BackendChoice, Settings};

#[component]
pub fn Controls() -> impl IntoView {
    let s = expect_context::<Session>();
    let settings = s.settings;
    let busy = move || s.status.get().busy();
    let number = move |ev: &leptos::ev::Event| event_target_value(ev).trim().parse::<f64>().ok();

    view! {
        <h2>"Settings"</h2>
        <form class="settings" on:submit=move |ev| ev.prevent_default()>
            <label>
                "Dataset"
                <ChoiceSelect testid="dataset" choices=DATASETS get=|s| s.dataset set=|s, dataset| s.dataset = dataset />
            </label>
            <label>
                "Model"
                <select
                    data-testid="model"
                    disabled=busy
                    on:change=move |ev| settings.update(|s| s.model = event_target_value(&ev))
                >
                    {PRESETS
                        .iter()
                        .map(|&name| {
                            view! {
                                <option value=name selected=move || settings.with(|s| s.model == name)>
                                    {name}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Learning rate"
                <input
                    type="number"
                    min="0"
                    step="any"
                    data-testid="lr"
                    disabled=busy
                    prop:value=move || settings.with(|s| s.learning_rate.to_string())
                    on:change=move |ev| {
                        if let Some(lr) = number(&ev).filter(|lr| *lr > 0.0) {
                            settings.update(|s| s.learning_rate = lr as f32);
                        }
                    }
                />
            </label>
            <label>
                "Dropout rate"
                <input
                    type="number"
                    min="0"
                    max="0.95"
                    step="0.05"
                    data-testid="dropout"
                    title="Rate of every Dropout layer (the study: 0.3); only models with Dropout layers use it"
                    disabled=move || busy() || !settings.with(|s| s.model_spec().is_ok_and(|m| m.has_dropout()))
                    placeholder=move || preset_dropout(&settings.with(|s| s.model.clone()))
                    prop:value=move || settings.with(|s| s.dropout.map(|r| r.to_string()).unwrap_or_default())
                    on:change=move |ev| {
                        let rate = number(&ev).filter(|r| (0.0..1.0).contains(r)).map(|r| r as f32);
                        settings.update(|s| s.dropout = rate);
                    }
                />
            </label>
            <label>
                "L2 λ"
                <input
                    type="number"
                    min="0"
                    step="any"
                    data-testid="l2"
                    title="L2 factor on every Dense kernel (the study's l2 model: 0.002); 0 turns it off"
                    disabled=busy
                    placeholder=move || {
                        ModelSpec::preset(&settings.with(|s| s.model.clone())).map(|m| m.l2.to_string()).unwrap_or_default()
                    }
                    prop:value=move || settings.with(|s| s.l2.map(|l| l.to_string()).unwrap_or_default())
                    on:change=move |ev| {
                        let l2 = number(&ev).filter(|l| *l >= 0.0).map(|l| l as f32);
                        settings.update(|s| s.l2 = l2);
                    }
                />
            </label>
            <label>
                "Batch size"
                <input
                    type="number"
                    min="1"
                    step="1"
                    data-testid="batch"
                    disabled=busy
                    prop:value=move || settings.with(|s| s.batch.to_string())
                    on:change=move |ev| {
                        if let Some(n) = number(&ev).filter(|n| *n >= 1.0) {
                            settings.update(|s| s.batch = n as usize);
                        }
                    }
                />
            </label>
            <label>
                "Epochs"
                <input
                    type="number"
                    min="1"
                    step="1"
                    data-testid="epochs"
                    disabled=busy
                    prop:value=move || settings.with(|s| s.epochs.to_string())
                    on:change=move |ev| {
                        if let Some(n) = number(&ev).filter(|n| *n >= 1.0) {
                            settings.update(|s| s.epochs = n as usize);
                        }
                    }
                />
            </label>
            <label>
                "Training images"
                <input
                    type="number"
                    min="1"
                    step="1"
                    placeholder="all"
                    data-testid="train-limit"
                    disabled=busy
                    prop:value=move || settings.with(|s| s.train_limit.map(|n| n.to_string()).unwrap_or_default())
                    on:change=move |ev| {
                        let limit = number(&ev).filter(|n| *n >= 1.0).map(|n| n as usize);
                        settings.update(|s| s.train_limit = limit);
                    }
                />
            </label>
            <label>
                "Train figures"
                <ChoiceSelect
                    testid="metrics"
                    title="What the epoch's loss and train accuracy measure: each step's own figures before its update (as Keras's fit), or measured after each update on the batch just trained (as the study's loop; two extra forward passes per step)"
                    choices=METRICS
                    get=|s| s.metrics
                    set=|s, metrics| s.metrics = metrics
                />
            </label>
            <label>
                "Backend"
                <ChoiceSelect
                    testid="backend-choice"
                    choices=BACKENDS
                    get=|s| s.backend
                    set=|s, backend| s.backend = backend
                />
            </label>
            <div class="buttons">
                <button type="button" data-testid="train" disabled=busy on:click=move |_| s.start_training()>
                    "Train"
                </button>
                <button
                    type="button"
                    data-testid="stop"
                    disabled=move || !matches!(s.status.get(), Status::Training | Status::Paused)
                    on:click=move |_| s.stop_training()
                >
                    "Stop"
                </button>
                <Show
                    when=move || s.status.get() == Status::Paused
                    fallback=move || {
                        view! {
                            <button
                                type="button"
                                data-testid="pause"
                                title="Hold training after the current chunk"
                                disabled=move || s.status.get() != Status::Training
                                on:click=move |_| s.pause_training()
                            >
                                "Pause"
                            </button>
                        }
                    }
                >
                    <button type="button" data-testid="resume" on:click=move |_| s.resume_training()>
                        "Resume"
                    </button>
                </Show>
                <Show when=move || s.can_continue.get()>
                    <button
                        type="button"
                        data-testid="continue"
                        title="Continue from the last good weights with the learning rate above"
                        on:click=move |_| s.continue_training()
                    >
                        "Continue"
                    </button>
                </Show>
            </div>
        </form>
        <h3>"Model summary"</h3>
        <pre class="summary" data-testid="summary" role="region" tabindex="0" aria-label="Model summary">
            {move || {
                settings
                    .with(|s| s.model_spec())
                    .map(|spec| spec.summary())
                    .unwrap_or_else(|e| e.to_string())
            }}
        </pre>
        <WeightsFiles />
    }
}

/// The settings picked from fixed choices: (the value the URL and the tests use, the label, the
/// setting).
const DATASETS: &[(&str, &str, DatasetName)] =
    &[("fashion", "Fashion-MNIST", DatasetName::Fashion), ("mnist", "MNIST", DatasetName::Mnist)];
const METRICS: &[(&str, &str, EpochMetrics)] = &[
    ("step", "Each step's own (Keras fit)", EpochMetrics::Step),
    ("study", "After each step (the study)", EpochMetrics::AfterStep),
];
const BACKENDS: &[(&str, &str, BackendChoice)] =
    &[("gpu", "GPU (WebGPU)", BackendChoice::Gpu), ("cpu", "CPU", BackendChoice::Cpu)];

/// A `<select>` of one setting's `choices` (`get` reads it, `set` writes it), disabled while busy.
#[component]
fn ChoiceSelect<T>(
    testid: &'static str,
    #[prop(optional)] title: Option<&'static str>,
    choices: &'static [(&'static str, &'static str, T)],
    get: fn(&Settings) -> T,
    set: fn(&mut Settings, T),
) -> impl IntoView
where
    T: Copy + PartialEq + Send + Sync + 'static,
{
    let s = expect_context::<Session>();
    let settings = s.settings;
    view! {
        <select
            data-testid=testid
            title=title
            disabled=move || s.status.get().busy()
            on:change=move |ev| {
                let value = event_target_value(&ev);
                if let Some(&(_, _, choice)) = choices.iter().find(|(v, _, _)| *v == value) {
                    settings.update(|s| set(s, choice));
                }
            }
        >
            {choices
                .iter()
                .map(|&(value, label, choice)| {
                    view! {
                        <option value=value selected=move || settings.with(|s| get(s) == choice)>
                            {label}
                        </option>
                    }
                })
                .collect_view()}
        </select>
    }
}

/// The preset's dropout rate as a placeholder, or "none" when it has no Dropout layer.
fn preset_dropout(model: &str) -> String {
    let rate = ModelSpec::preset(model).ok().and_then(|m| {
        m.layers.iter().find_map(|l| match l {
            fashion_core::Layer::Dropout { rate } => Some(*rate),
            _ => None,
        })
    });
    rate.map_or("none".to_string(), |r| r.to_string())
}

/// Save the trained model as our `.safetensors` or as a Keras, ONNX or TF.js file; or load a
/// `.safetensors` or Keras `.keras` file (picked, or dropped on the buttons) to predict without
/// training.
#[component]
fn WeightsFiles() -> impl IntoView {
    let s = expect_context::<Session>();
    let save = move |export: Option<Format>| {
        spawn_local(async move {
            let saved = match s.weights_file(export).await {
                Ok((name, bytes)) => download(&name, &bytes).map(|()| name).map_err(|e| describe(&e)),
                Err(e) => Err(e),
            };
            match saved {
                Ok(name) => s.log(format!("Saved the model as {name}")),
                Err(e) => s.log(format!("Could not save the model: {e}")),
            }
        });
    };
    let can_save = move || s.model_ready.get() && !s.status.get().busy();
    let save_button = move |export: Option<Format>, test_id: &'static str, label: &'static str, title: &'static str| {
        view! {
            <button type="button" data-testid=test_id title=title disabled=move || !can_save() on:click=move |_| save(export)>
                {label}
            </button>
        }
    };
    let load_file = move |file: gloo_file::File| {
        spawn_local(async move {
            match gloo_file::futures::read_as_bytes(&file).await {
                Ok(bytes) => s.load_weights(bytes),
                Err(e) => s.log(format!("Could not read {}: {e}", file.name())),
            }
        });
    };
    let load = move |ev: leptos::ev::Event| {
        let input: HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|files| files.get(0)) {
            load_file(file.into());
        }
        input.set_value("");
    };
    // A file dropped on the buttons loads as a picked one does.
    let dragging = RwSignal::new(false);
    let drag_over = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(!s.status.get_untracked().busy());
    };
    let drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        let file = ev.data_transfer().and_then(|data| data.files()).and_then(|files| files.get(0));
        if let Some(file) = file.filter(|_| !s.status.get_untracked().busy()) {
            load_file(file.into());
        }
    };
    view! {
        <h3>"Weights"</h3>
        <div
            class="weights-files"
            class:dragging=move || dragging.get()
            data-testid="weights-drop"
            title="Drop a .safetensors or .keras file here to load it"
            on:dragover=drag_over
            on:dragleave=move |_| dragging.set(false)
            on:drop=drop
        >
        <div class="buttons">
            {save_button(None, "save-weights", "Save .safetensors", "fashion-gpu's weights (numpy and safetensors read them)")}
            {save_button(Some(Format::Keras), "export-keras", "Keras", "Keras 3: keras.saving.load_model(\"….keras\")")}
            {save_button(Some(Format::Onnx), "export-onnx", "ONNX", "ONNX Runtime: onnxruntime.InferenceSession(\"….onnx\")")}
            {save_button(Some(Format::Tfjs), "export-tfjs", "TF.js", "TF.js: unzip, then tf.loadLayersModel(\"…/model.json\")")}
        </div>
        <div class="buttons">
            <label class="file-button">
                "Load .safetensors / .keras"
                <input
                    type="file"
                    accept=".safetensors,.keras"
                    data-testid="load-weights"
                    disabled=move || s.status.get().busy()
                    on:change=load
                />
            </label>
        </div>
        </div>
    }
}

pub(crate) fn download(name: &str, bytes: &[u8]) -> Result<(), JsValue> {
    let blob = gloo_file::Blob::new_with_options(bytes, Some("application/octet-stream"));
    // The URL is not revoked (gloo's `ObjectUrl` would on drop): revoking right after click()
    // can cancel the download in some browsers, and the page holds at most a few such files.
    let url = Url::create_object_url_with_blob(blob.as_ref())?;
    let anchor: HtmlAnchorElement = document().create_element("a")?.dyn_into()?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    Ok(())
}
