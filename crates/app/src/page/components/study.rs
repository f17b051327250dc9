//! The study view: which models, Run the study / Stop, the overlaid test-accuracy and loss
//! charts (the study's 30-epoch figure marked per model), the results table with the model
//! picker, the history as CSV and JSON, and the link that runs the same study again.

use fashion_core::study::{ModelSummary, Study, STUDY_MODELS};
use fashion_core::PRESETS;
use fashion_report::history::{study_csv, study_json};
use fashion_report::palette::SERIES_COLORS;
use leptos::prelude::*;

use super::charts::{overlay_chart, ModelSeries};
use super::controls::download;
use crate::describe;
use crate::page::session::{Session, Status};
use crate::page::study::StudySession;
use crate::settings::Settings;

/// The results table, the charts' text equivalent.
const STUDY_TABLE_ID: &str = "study-table";

#[component]
pub fn StudyPanel() -> impl IntoView {
    let s = expect_context::<Session>();
    let study = expect_context::<StudySession>();
    let busy = move || s.status.get().busy();
    let chosen = move || {
        s.settings.with(|settings| {
            settings.study.clone().unwrap_or_else(|| STUDY_MODELS.iter().map(|m| m.to_string()).collect())
        })
    };
    let toggle = move |model: &'static str, on: bool| {
        let mut models = chosen();
        models.retain(|m| m != model);
        if on {
            models.push(model.to_string());
        }
        // The presets' order, whatever order they were ticked in.
        models.sort_by_key(|m| PRESETS.iter().position(|p| p == m));
        s.settings.update(|settings| settings.study = Some(models));
    };
    let recipe = move || {
        s.settings.with(|st| {
            let images = st.train_limit.map_or("every".to_string(), |n| format!("the first {n}"));
            let epochs = if st.epochs == 1 { "1 epoch".to_string() } else { format!("{} epochs", st.epochs) };
            format!(
                "One recipe for every model: Adam, learning rate {}, batch {}, {epochs}, on {images} training images \
                 (the settings on the left; the study's own: 0.001, 100, 30 epochs on all 60,000).",
                st.learning_rate, st.batch
            )
        })
    };
    let training = move || study.study.with(Option::is_some) && s.status.get() == Status::Training;
    view! {
        <div class="panel-head">
            <h2>"Study: several models, one recipe"</h2>
        </div>
        <fieldset class="study-models" disabled=busy>
            <legend>"Models"</legend>
            {PRESETS
                .iter()
                .map(|&model| {
                    view! {
                        <label>
                            <input
                                type="checkbox"
                                data-testid="study-model"
                                value=model
                                prop:checked=move || chosen().iter().any(|m| m == model)
                                on:change=move |ev| toggle(model, event_target_checked(&ev))
                            />
                            {model}
                        </label>
                    }
                })
                .collect_view()}
        </fieldset>
        <p class="hint">{recipe}</p>
        <div class="buttons">
            <button
                type="button"
                data-testid="study-start"
                class="primary"
                disabled=move || busy() || chosen().is_empty()
                on:click=move |_| {
                    s.settings.update(|settings| settings.study = Some(chosen()));
                    study.start(s);
                }
            >
                "Run the study"
            </button>
            <button type="button" data-testid="study-stop" disabled=move || !training() on:click=move |_| study.stop(s)>
                "Stop the study"
            </button>
        </div>
        {move || study.study.get().map(|st| view! { <StudyResults study=st /> })}
    }
}

/// The charts, the table, the downloads and the link of a study that has started.
#[component]
fn StudyResults(study: Study) -> impl IntoView {
    let s = expect_context::<Session>();
    let session = expect_context::<StudySession>();
    let summaries = study.summaries();
    let color = |i: usize| {
        let (r, g, b) = SERIES_COLORS[i % SERIES_COLORS.len()];
        format!("#{r:02x}{g:02x}{b:02x}")
    };
    let accuracy: Vec<ModelSeries> = summaries
        .iter()
        .enumerate()
        .map(|(i, m)| ModelSeries {
            model: m.model.clone(),
            color: color(i),
            values: m.test_accuracy_curve.clone(),
            mark: m.study,
        })
        .collect();
    let loss: Vec<ModelSeries> = summaries
        .iter()
        .enumerate()
        .map(|(i, m)| ModelSeries { model: m.model.clone(), color: color(i), values: m.loss_curve.clone(), mark: None })
        .collect();
    let (acc_low, acc_high) = bounds(accuracy.iter().flat_map(|s| s.values.iter().chain(&s.mark)).copied(), 0.05);
    let (loss_low, loss_high) = bounds(loss.iter().flat_map(|s| s.values.iter()).copied(), 0.1);
    let epochs = study.epochs();
    let csv = study_csv(&study);
    let adapter = s.adapter.get_untracked().unwrap_or_else(|| "cpu".into());
    let json = study_json(&study, &adapter, s.settings.with_untracked(|st| st.metrics));
    let dataset = s.settings.with_untracked(|st| st.dataset.as_str());
    let save = move |name: String, text: &str| {
        if let Err(e) = download(&name, text.as_bytes()) {
            s.log(format!("Could not save {name}: {}", describe(&e)));
        }
    };
    let link = s.settings.with_untracked(|st| format!("?{}", Settings { autostart: true, ..st.clone() }.to_query()));
    let notes: Vec<(String, f32, &'static str)> =
        summaries.iter().filter_map(|m| Some((m.model.clone(), m.study?, m.study_note?))).collect();
    let progress = session.progress;
    view! {
        <div class="charts study-charts">
            {overlay_chart(
                "Test accuracy",
                "per epoch, one line per model; dashed: the study's figure after 30 epochs; the figures are in the table below",
                STUDY_TABLE_ID,
                accuracy,
                acc_low,
                acc_high,
                epochs,
            )}
            {overlay_chart(
                "Training loss",
                "per epoch, one line per model (with the L2 penalty where there is one); the figures are in the table below",
                STUDY_TABLE_ID,
                loss,
                loss_low,
                loss_high,
                epochs,
            )}
        </div>
        <table class="epochs study-table" data-testid="study-table" id=STUDY_TABLE_ID>
            <caption>
                {format!(
                    "Figures after {} of {epochs} epochs; the study's figure (dashed in the accuracy chart) is after 30. \
                     Seconds: each model's training time while the models share the GPU. The row picked is the model \
                     the rest of the page shows.",
                    summaries.iter().map(|m| m.epochs).min().unwrap_or(0)
                )}
            </caption>
            <thead>
                <tr>
                    <th scope="col">"Shown"</th>
                    <th scope="col">"Model"</th>
                    <th scope="col">"Epoch"</th>
                    <th scope="col">"Final test acc."</th>
                    <th scope="col">"Best test acc."</th>
                    <th scope="col">"Best epoch"</th>
                    <th scope="col">"Train acc."</th>
                    <th scope="col">"Loss"</th>
                    <th scope="col">"Seconds"</th>
                    <th scope="col">"Study (30 ep.)"</th>
                    <th scope="col">"Difference"</th>
                </tr>
            </thead>
            <tbody>
                {summaries
                    .into_iter()
                    .enumerate()
                    .map(|(i, m)| {
                        let model = m.model.clone();
                        let done = m.epochs;
                        let picked = {
                            let model = model.clone();
                            move || session.shown.get().as_deref() == Some(model.as_str())
                        };
                        let pick = {
                            let model = model.clone();
                            move |_| session.pick(s, model.clone())
                        };
                        let step = move || {
                            progress
                                .with(|all| all.get(i).copied().flatten())
                                .map(|p| format!("{} · {}/{}", p.epoch, p.step, p.steps))
                                .unwrap_or_else(|| done.to_string())
                        };
                        view! {
                            <tr data-testid="study-row" data-model=model.clone()>
                                <td>
                                    <input
                                        type="radio"
                                        name="study-shown"
                                        data-testid="study-pick"
                                        aria-label=format!("Show {model} in the rest of the page")
                                        prop:checked=picked
                                        disabled=done == 0
                                        on:change=pick
                                    />
                                </td>
                                <th scope="row" data-col="model" class="study-model">
                                    <span class="swatch" style:background=color(i)></span>
                                    {model.clone()}
                                </th>
                                <td data-col="epochs">{step}</td>
                                <td data-col="final-test-acc">{figure(&m, m.test_accuracy)}</td>
                                <td data-col="best-test-acc">{figure(&m, m.best_test_accuracy)}</td>
                                <td data-col="best-epoch">{m.best_epoch}</td>
                                <td data-col="train-acc">{figure(&m, m.train_accuracy)}</td>
                                <td data-col="loss">{figure(&m, m.loss)}</td>
                                <td data-col="seconds">{format!("{:.1}", m.seconds)}</td>
                                <td data-col="study-acc">{m.study.map(|a| format!("{a:.4}")).unwrap_or_else(|| "–".into())}</td>
                                <td data-col="difference">
                                    {m.difference().map(|d| format!("{d:+.4}")).unwrap_or_else(|| "–".into())}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        {notes
            .into_iter()
            .map(|(model, figure, note)| {
                view! {
                    <p class="hint" data-testid="study-note" data-model=model.clone()>
                        {format!("{model}: the study's {figure:.4} — {note}.")}
                    </p>
                }
            })
            .collect_view()}
        <div class="buttons">
            <button
                type="button"
                data-testid="study-csv"
                on:click={
                    let csv = csv.clone();
                    move |_| save(format!("{dataset}-study-history.csv"), &csv)
                }
            >
                "history.csv"
            </button>
            <button
                type="button"
                data-testid="study-json"
                on:click={
                    let json = json.clone();
                    move |_| save(format!("{dataset}-study-history.json"), &json)
                }
            >
                "history.json"
            </button>
            <a data-testid="study-link" href=link.clone() class="study-link">
                "Link that runs this study again"
            </a>
        </div>
    }
}

/// A figure as a plain number with four decimals, or a dash before the model's first epoch.
fn figure(summary: &ModelSummary, value: f32) -> String {
    if summary.epochs == 0 {
        "–".into()
    } else {
        format!("{value:.4}")
    }
}

/// A range around `values` padded by `pad` of its span (at least `pad` / 10), for a chart axis.
fn bounds(values: impl Iterator<Item = f32>, pad: f32) -> (f32, f32) {
    let (lo, hi) = values.fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let margin = ((hi - lo) * pad).max(pad / 10.0);
    ((lo - margin).max(0.0), hi + margin)
}
