//! Loss and accuracy per epoch as SVG line charts: one model's, and several models' overlaid
//! (the study).

use leptos::prelude::*;

use crate::page::session::Session;

const LEFT: f64 = 40.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 24.0;
/// One model's chart; the study's overlay is wider (the same text, smaller on the page).
const SIZE: (f64, f64) = (320.0, 170.0);
const OVERLAY_SIZE: (f64, f64) = (460.0, 210.0);

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

/// A chart's coordinates: epochs 1..=`epochs` across, `low..=high` up, in a `width × height`
/// view box.
#[derive(Clone, Copy)]
struct Frame {
    epochs: usize,
    low: f32,
    high: f32,
    width: f64,
    height: f64,
}

impl Frame {
    /// At least `epochs` and as many as the longest curve has.
    fn new<'a>(
        curves: impl Iterator<Item = &'a Vec<f32>>,
        epochs: usize,
        low: f32,
        high: f32,
        size: (f64, f64),
    ) -> Self {
        let epochs = epochs.max(curves.map(Vec::len).max().unwrap_or(0)).max(1);
        Frame { epochs, low, high, width: size.0, height: size.1 }
    }

    /// Where epoch `i` (0-based) is; a single epoch sits in the middle.
    fn x(self, i: usize) -> f64 {
        let span = self.width - LEFT - RIGHT;
        if self.epochs == 1 {
            LEFT + span / 2.0
        } else {
            LEFT + span * i as f64 / (self.epochs - 1) as f64
        }
    }

    fn y(self, v: f32) -> f64 {
        let span = f64::from((self.high - self.low).max(1e-6));
        TOP + (self.height - TOP - BOTTOM) * (1.0 - f64::from(v.clamp(self.low, self.high) - self.low) / span)
    }

    fn view_box(self) -> String {
        format!("0 0 {} {}", self.width, self.height)
    }

    /// The grid with its value ticks, and the epoch labels.
    fn axes(self) -> impl IntoView {
        let ticks: Vec<f32> = (0..=4).map(|i| self.low + (self.high - self.low) * i as f32 / 4.0).collect();
        let epochs = self.epochs;
        let x_labels: Vec<usize> =
            if epochs <= 10 { (0..epochs).collect() } else { (0..epochs).step_by(epochs / 5).collect() };
        view! {
            {ticks
                .into_iter()
                .map(|t| {
                    view! {
                        <line x1=LEFT x2=self.width - RIGHT y1=self.y(t) y2=self.y(t) class="grid"></line>
                        <text x=LEFT - 4.0 y=self.y(t) + 3.0 class="tick" text-anchor="end">{format!("{t:.2}")}</text>
                    }
                })
                .collect_view()}
            {x_labels
                .into_iter()
                .map(|i| {
                    view! {
                        <text x=self.x(i) y=self.height - 8.0 class="tick" text-anchor="middle">{i + 1}</text>
                    }
                })
                .collect_view()}
        }
    }

    /// `values` as a line with a dot per epoch, in `color`.
    fn curve(self, values: &[f32], color: &str, radius: &'static str) -> impl IntoView {
        let points = values
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", self.x(i), self.y(v)))
            .collect::<Vec<_>>()
            .join(" ");
        let dots = values
            .iter()
            .enumerate()
            .map(|(i, &v)| view! { <circle cx=self.x(i) cy=self.y(v) r=radius fill=color.to_string()></circle> })
            .collect_view();
        view! {
            <polyline points=points fill="none" stroke=color.to_string() stroke-width="2"></polyline>
            {dots}
        }
    }
}

fn line_chart(title: &'static str, series: Vec<Series>, low: f32, high: f32, epochs: usize) -> impl IntoView {
    let frame = Frame::new(series.iter().map(|s| &s.values), epochs, low, high, SIZE);
    view! {
        <svg class="chart" viewBox=frame.view_box() role="img" aria-label=title>
            <text x=LEFT y="14" class="chart-title">{title}</text>
            {series
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let lx = frame.width - RIGHT - 110.0 + 55.0 * k as f64;
                    view! {
                        <rect x=lx y="6" width="10" height="4" fill=s.color></rect>
                        <text x=lx + 13.0 y="12" class="legend">{s.name}</text>
                    }
                })
                .collect_view()}
            {frame.axes()}
            {series.iter().map(|s| frame.curve(&s.values, s.color, "3")).collect_view()}
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
/// the legend and the figures are in the element `described_by` names (the study's table), the
/// chart's text equivalent.
pub fn overlay_chart(
    title: &'static str,
    description: &'static str,
    described_by: &'static str,
    series: Vec<ModelSeries>,
    low: f32,
    high: f32,
    epochs: usize,
) -> impl IntoView {
    let frame = Frame::new(series.iter().map(|s| &s.values), epochs, low, high, OVERLAY_SIZE);
    view! {
        <svg
            class="chart"
            data-testid="study-chart"
            viewBox=frame.view_box()
            role="img"
            aria-label=format!("{title}: {description}")
            aria-describedby=described_by
        >
            <text x=LEFT y="14" class="chart-title">{title}</text>
            {frame.axes()}
            {series
                .into_iter()
                .map(|s| {
                    let mark = s.mark.map(|level| {
                        view! {
                            <line
                                class="study-mark"
                                x1=LEFT
                                x2=frame.width - RIGHT
                                y1=frame.y(level)
                                y2=frame.y(level)
                                stroke=s.color.clone()
                                stroke-dasharray="5 3"
                            ></line>
                        }
                    });
                    view! {
                        <g data-testid="study-series" data-model=s.model.clone() data-points=s.values.len()>
                            {mark}
                            {frame.curve(&s.values, &s.color, "2.5")}
                        </g>
                    }
                })
                .collect_view()}
        </svg>
    }
}
