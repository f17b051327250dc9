//! Loss and accuracy per epoch as SVG line charts: one model's, and several models' overlaid
//! (the study).

use leptos::prelude::*;

use crate::session::Session;

const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 24.0;

struct Series {
    name: &'static str,
    color: &'static str,
    values: Vec<f32>,
}

#[component]
pub fn Charts() -> impl IntoView {
    let s = expect_context::<Session>();
    let loss = move || {
        let history = s.history.get();
        let losses: Vec<f32> = history.iter().map(|e| e.loss).collect();
        let max = history.iter().flat_map(|e| [e.loss, e.test_loss]).fold(0.0f32, f32::max).max(0.1) * 1.1;
        let series = vec![
            Series { name: "train", color: "#d62728", values: losses },
            Series { name: "test", color: "#1f77b4", values: history.iter().map(|e| e.test_loss).collect() },
        ];
        line_chart("Loss", series, 0.0, max, s.settings.with(|s| s.epochs))
    };
    let accuracy = move || {
        let history = s.history.get();
        let min = history.iter().flat_map(|e| [e.train_accuracy, e.test_accuracy]).fold(1.0f32, f32::min);
        let low = ((min * 10.0).floor() / 10.0).clamp(0.0, 0.9);
        let series = vec![
            Series { name: "train", color: "#d62728", values: history.iter().map(|e| e.train_accuracy).collect() },
            Series { name: "test", color: "#1f77b4", values: history.iter().map(|e| e.test_accuracy).collect() },
        ];
        line_chart("Accuracy", series, low, 1.0, s.settings.with(|s| s.epochs))
    };
    view! { <div class="charts">{loss} {accuracy}</div> }
}

fn line_chart(title: &'static str, series: Vec<Series>, low: f32, high: f32, epochs: usize) -> impl IntoView {
    let epochs = epochs.max(series.iter().map(|s| s.values.len()).max().unwrap_or(0)).max(1);
    let x = move |i: usize| {
        if epochs == 1 {
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0
        } else {
            LEFT + (WIDTH - LEFT - RIGHT) * i as f64 / (epochs - 1) as f64
        }
    };
    let span = f64::from((high - low).max(1e-6));
    let y = move |v: f32| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - f64::from(v - low) / span);
    let ticks: Vec<f32> = (0..=4).map(|i| low + (high - low) * i as f32 / 4.0).collect();
    let x_labels: Vec<usize> =
        if epochs <= 10 { (0..epochs).collect() } else { (0..epochs).step_by(epochs / 5).collect() };
    view! {
        <svg class="chart" viewBox=format!("0 0 {WIDTH} {HEIGHT}") role="img" aria-label=title>
            <text x=LEFT y="14" class="chart-title">{title}</text>
            {series
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let lx = WIDTH - RIGHT - 110.0 + 55.0 * k as f64;
                    view! {
                        <rect x=lx y="6" width="10" height="4" fill=s.color></rect>
                        <text x=lx + 13.0 y="12" class="legend">{s.name}</text>
                    }
                })
                .collect_view()}
            {ticks
                .into_iter()
                .map(|t| {
                    view! {
                        <line x1=LEFT x2=WIDTH - RIGHT y1=y(t) y2=y(t) class="grid"></line>
                        <text x=LEFT - 4.0 y=y(t) + 3.0 class="tick" text-anchor="end">{format!("{t:.2}")}</text>
                    }
                })
                .collect_view()}
            {x_labels
                .into_iter()
                .map(|i| {
                    view! {
                        <text x=x(i) y=HEIGHT - 8.0 class="tick" text-anchor="middle">{i + 1}</text>
                    }
                })
                .collect_view()}
            {series
                .into_iter()
                .map(|s| {
                    let points = s
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
                        .collect::<Vec<_>>()
                        .join(" ");
                    let dots = s
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| view! { <circle cx=x(i) cy=y(v) r="3" fill=s.color></circle> })
                        .collect_view();
                    view! {
                        <polyline points=points fill="none" stroke=s.color stroke-width="2"></polyline>
                        {dots}
                    }
                })
                .collect_view()}
        </svg>
    }
}

/// One model's curve in an overlay chart, with the level the study reached marked beside it.
pub struct ModelSeries {
    pub model: String,
    pub color: String,
    pub values: Vec<f32>,
    /// The study's figure for this chart, drawn as a dashed line in the model's colour.
    pub mark: Option<f32>,
}

/// Several models' curves on shared axes (`data-testid="study-series"` each, with `data-model`);
/// the legend and the figures are in the study's table, the chart's text equivalent.
pub fn overlay_chart(
    title: &'static str,
    description: String,
    series: Vec<ModelSeries>,
    low: f32,
    high: f32,
    epochs: usize,
) -> impl IntoView {
    let epochs = epochs.max(series.iter().map(|s| s.values.len()).max().unwrap_or(0)).max(1);
    let x = move |i: usize| {
        if epochs == 1 {
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0
        } else {
            LEFT + (WIDTH - LEFT - RIGHT) * i as f64 / (epochs - 1) as f64
        }
    };
    let span = f64::from((high - low).max(1e-6));
    let y = move |v: f32| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - f64::from(v.clamp(low, high) - low) / span);
    let ticks: Vec<f32> = (0..=4).map(|i| low + (high - low) * i as f32 / 4.0).collect();
    let x_labels: Vec<usize> =
        if epochs <= 10 { (0..epochs).collect() } else { (0..epochs).step_by(epochs / 5).collect() };
    view! {
        <svg
            class="chart"
            data-testid="study-chart"
            viewBox=format!("0 0 {WIDTH} {HEIGHT}")
            role="img"
            aria-label=format!("{title}: {description}")
        >
            <text x=LEFT y="14" class="chart-title">{title}</text>
            {ticks
                .into_iter()
                .map(|t| {
                    view! {
                        <line x1=LEFT x2=WIDTH - RIGHT y1=y(t) y2=y(t) class="grid"></line>
                        <text x=LEFT - 4.0 y=y(t) + 3.0 class="tick" text-anchor="end">{format!("{t:.2}")}</text>
                    }
                })
                .collect_view()}
            {x_labels
                .into_iter()
                .map(|i| {
                    view! {
                        <text x=x(i) y=HEIGHT - 8.0 class="tick" text-anchor="middle">{i + 1}</text>
                    }
                })
                .collect_view()}
            {series
                .into_iter()
                .map(|s| {
                    let points = s
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
                        .collect::<Vec<_>>()
                        .join(" ");
                    let dots = s
                        .values
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| view! { <circle cx=x(i) cy=y(v) r="2.5" fill=s.color.clone()></circle> })
                        .collect_view();
                    let mark = s.mark.map(|level| {
                        view! {
                            <line
                                class="study-mark"
                                x1=LEFT
                                x2=WIDTH - RIGHT
                                y1=y(level)
                                y2=y(level)
                                stroke=s.color.clone()
                                stroke-dasharray="4 3"
                            ></line>
                        }
                    });
                    view! {
                        <g data-testid="study-series" data-model=s.model.clone() data-points=s.values.len()>
                            {mark}
                            <polyline points=points fill="none" stroke=s.color.clone() stroke-width="2"></polyline>
                            {dots}
                        </g>
                    }
                })
                .collect_view()}
        </svg>
    }
}
