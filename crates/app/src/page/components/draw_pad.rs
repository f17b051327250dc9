//! Draw with mouse, touch or pen; the drawing is preprocessed like MNIST and classified live, with
//! what the model does with it ([`super::explain`]).

use fashion_core::Explanation;
use fashion_data::{preprocess_drawing, IMAGE_SIDE, NUM_CLASSES};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, PointerEvent};

use crate::page::components::explain::ExplainView;
use crate::page::components::gallery::bar_color;
use crate::page::image::{grey_data_url, ink, to_bytes};
use crate::page::session::{argmax, Session, Status};

const PAD_SIDE: u32 = 280;
const STROKE_WIDTH: f64 = 22.0;

/// The pad's handles; `Copy` so every event handler can hold one.
#[derive(Clone, Copy)]
struct Pad {
    session: Session,
    canvas: NodeRef<leptos::html::Canvas>,
    /// Where the pen is while it touches the pad.
    pen: StoredValue<Option<(f64, f64)>>,
    inked: StoredValue<bool>,
    predicting: StoredValue<bool>,
    /// The drawing changed while a prediction was running.
    stale: StoredValue<bool>,
    /// The drawing's pixels as the model saw them, and the model's explanation of them.
    explained: RwSignal<Option<(Vec<f32>, Explanation)>>,
    model_input: RwSignal<Option<Vec<u8>>>,
}

impl Pad {
    fn context(self) -> Option<(HtmlCanvasElement, CanvasRenderingContext2d)> {
        let canvas: HtmlCanvasElement = self.canvas.get_untracked()?;
        let context = canvas.get_context("2d").ok()??.dyn_into().ok()?;
        Some((canvas, context))
    }

    fn clear(self) {
        if let Some((_, ctx)) = self.context() {
            ctx.set_fill_style_str("black");
            ctx.fill_rect(0.0, 0.0, f64::from(PAD_SIDE), f64::from(PAD_SIDE));
        }
        self.inked.set_value(false);
        self.explained.set(None);
        self.model_input.set(None);
    }

    /// The pointer's position in canvas pixels (the canvas may be scaled by CSS).
    fn position(self, canvas: &HtmlCanvasElement, ev: &PointerEvent) -> (f64, f64) {
        let rect = canvas.get_bounding_client_rect();
        let sx = f64::from(canvas.width()) / rect.width().max(1.0);
        let sy = f64::from(canvas.height()) / rect.height().max(1.0);
        ((f64::from(ev.client_x()) - rect.left()) * sx, (f64::from(ev.client_y()) - rect.top()) * sy)
    }

    fn pen_down(self, ev: PointerEvent) {
        let Some((canvas, ctx)) = self.context() else { return };
        ev.prevent_default();
        let _ = canvas.set_pointer_capture(ev.pointer_id());
        let (x, y) = self.position(&canvas, &ev);
        ctx.set_fill_style_str("white");
        ctx.begin_path();
        let _ = ctx.arc(x, y, STROKE_WIDTH / 2.0, 0.0, std::f64::consts::TAU);
        ctx.fill();
        self.pen.set_value(Some((x, y)));
        self.inked.set_value(true);
        self.request_prediction();
    }

    fn pen_move(self, ev: PointerEvent) {
        let Some(last) = self.pen.get_value() else { return };
        let Some((canvas, ctx)) = self.context() else { return };
        let (x, y) = self.position(&canvas, &ev);
        ctx.set_stroke_style_str("white");
        ctx.set_line_width(STROKE_WIDTH);
        ctx.set_line_cap("round");
        ctx.set_line_join("round");
        ctx.begin_path();
        ctx.move_to(last.0, last.1);
        ctx.line_to(x, y);
        ctx.stroke();
        self.pen.set_value(Some((x, y)));
        self.request_prediction();
    }

    fn pen_up(self) {
        if self.pen.get_value().is_some() {
            self.pen.set_value(None);
            self.request_prediction();
        }
    }

    /// The drawing as the model sees it: 28×28 values in [0, 1].
    fn model_pixels(self) -> Option<Vec<f32>> {
        let (canvas, ctx) = self.context()?;
        let (w, h) = (canvas.width(), canvas.height());
        let rgba = ctx.get_image_data(0.0, 0.0, f64::from(w), f64::from(h)).ok()?.data();
        let grey: Vec<f32> = rgba.chunks_exact(4).map(|px| f32::from(px[0]) / 255.0).collect();
        Some(preprocess_drawing(&grey, w as usize, h as usize))
    }

    /// Classifies the drawing; while one prediction runs, later strokes only mark it stale.
    fn request_prediction(self) {
        if self.predicting.get_value() {
            self.stale.set_value(true);
            return;
        }
        self.predicting.set_value(true);
        spawn_local(async move {
            loop {
                self.stale.set_value(false);
                let Some(pixels) = self.model_pixels() else { break };
                self.model_input.set(Some(to_bytes(&pixels)));
                if self.inked.get_value() {
                    if let Some(explanation) = self.session.explain_one(&pixels).await {
                        self.explained.set(Some((pixels, explanation)));
                    }
                }
                if !self.stale.get_value() {
                    break;
                }
            }
            self.predicting.set_value(false);
        });
    }
}

#[component]
pub fn DrawPad() -> impl IntoView {
    let session = expect_context::<Session>();
    let pad = Pad {
        session,
        canvas: NodeRef::new(),
        pen: StoredValue::new(None),
        inked: StoredValue::new(false),
        predicting: StoredValue::new(false),
        stale: StoredValue::new(false),
        explained: RwSignal::new(None),
        model_input: RwSignal::new(None),
    };
    pad.canvas.on_load(move |_| pad.clear());
    // A model that becomes ready, and each epoch's new weights (the worker explains from them
    // while the next epoch trains), classify what is already drawn.
    Effect::new(move |_| {
        let epochs = session.history.with(Vec::len);
        let settled = session.status.get() == Status::Done || epochs > 0;
        if session.model_ready.get() && settled && pad.inked.get_value() {
            pad.request_prediction();
        }
    });

    let names = Signal::derive(move || session.class_names.get());
    view! {
        <div class="panel-head">
            <h2>"Draw"</h2>
            <button type="button" data-testid="clear" on:click=move |_| pad.clear()>
                "Clear"
            </button>
        </div>
        <div class="draw-row">
            <canvas
                node_ref=pad.canvas
                class="draw-pad"
                data-testid="draw-pad"
                width=PAD_SIDE
                height=PAD_SIDE
                on:pointerdown=move |ev| pad.pen_down(ev)
                on:pointermove=move |ev| pad.pen_move(ev)
                on:pointerup=move |_| pad.pen_up()
                on:pointercancel=move |_| pad.pen_up()
            ></canvas>
            <div class="model-input">
                <p class="hint">"What the model sees (28×28)"</p>
                {move || {
                    pad.model_input
                        .get()
                        .map(|pixels| {
                            view! {
                                <img
                                    data-testid="model-input"
                                    data-ink=ink(&pixels)
                                    src=grey_data_url(&pixels, IMAGE_SIDE)
                                    width="112"
                                    height="112"
                                    alt="the drawing as a 28×28 image"
                                />
                            }
                        })
                }}
            </div>
            <div class="draw-probs">
                {move || match pad.explained.with(|e| e.as_ref().map(|(_, e)| e.probabilities.clone())) {
                    None => {
                        let hint = if session.model_ready.get() {
                            "Draw something on the pad."
                        } else {
                            "Train a model (or load weights), then draw."
                        };
                        view! { <p class="hint">{hint}</p> }.into_any()
                    }
                    Some(probs) => row_bars(&probs, names.get()).into_any(),
                }}
            </div>
        </div>
        <ExplainView explained=pad.explained names />
    }
}

/// Ten horizontal bars with class names; each bar carries its probability as `data-value`.
fn row_bars(probs: &[f32], names: [&'static str; NUM_CLASSES]) -> impl IntoView {
    let predicted = argmax(probs);
    let (label_width, bar_width, row) = (90.0, 150.0, 18.0);
    view! {
        <svg
            class="row-bars"
            viewBox=format!("0 0 {} {}", label_width + bar_width + 45.0, row * NUM_CLASSES as f64)
            role="img"
            aria-label="class probabilities of the drawing"
        >
            {probs
                .iter()
                .enumerate()
                .map(|(class, &p)| {
                    let y = row * class as f64;
                    let w = bar_width * f64::from(p.clamp(0.0, 1.0));
                    view! {
                        <text x=label_width - 4.0 y=y + 13.0 class="label" text-anchor="end">{names[class]}</text>
                        <rect x=label_width y=y + 3.0 width=bar_width height=row - 6.0 class="track"></rect>
                        <rect
                            data-testid="prob"
                            data-class=class
                            data-value=p.to_string()
                            x=label_width
                            y=y + 3.0
                            width=w
                            height=row - 6.0
                            fill=bar_color(class, predicted, None)
                        ></rect>
                        <text x=label_width + bar_width + 4.0 y=y + 13.0 class="tick">{format!("{:.1}%", p * 100.0)}</text>
                    }
                })
                .collect_view()}
        </svg>
    }
}
