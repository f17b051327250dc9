//! What the model thinks of test images: a gallery of 15 with their probabilities, and the
//! confusion matrix over the whole test set.

use fashion_data::{IMAGE_SIDE, NUM_CLASSES};
use leptos::prelude::*;

use crate::image::grey_data_url;
use crate::session::{argmax, GalleryItem, Session};

pub const RIGHT_COLOR: &str = "#1f77b4";
pub const WRONG_COLOR: &str = "#d62728";
const OTHER_COLOR: &str = "#999999";

#[component]
pub fn Gallery() -> impl IntoView {
    let s = expect_context::<Session>();
    view! {
        <div class="panel-head">
            <h2>"Predictions on test images"</h2>
            <button
                type="button"
                data-testid="another-batch"
                disabled=move || !s.model_ready.get() || s.gallery.with(Vec::is_empty)
                on:click=move |_| s.another_batch()
            >
                "Another batch"
            </button>
        </div>
        <Show
            when=move || !s.gallery.with(Vec::is_empty)
            fallback=|| view! { <p class="hint">"Train a model (or load weights) to see its predictions."</p> }
        >
            <div class="gallery">
                {move || {
                    let names = s.class_names.get();
                    s.gallery.get().into_iter().map(|item| gallery_item(item, names)).collect_view()
                }}
            </div>
        </Show>
    }
}

fn gallery_item(item: GalleryItem, names: [&'static str; NUM_CLASSES]) -> impl IntoView {
    let predicted = argmax(&item.probs);
    let right = predicted == item.label;
    let caption = format!("{} {:.0}% ({})", names[predicted], item.probs[predicted] * 100.0, names[item.label]);
    view! {
        <figure
            class="gallery-item"
            data-testid="gallery-item"
            data-index=item.index
            data-predicted=predicted
            data-label=item.label
        >
            <img
                src=grey_data_url(&item.pixels, IMAGE_SIDE)
                width="56"
                height="56"
                alt=format!("test image {}", item.index)
            />
            {column_bars(&item.probs, predicted, Some(item.label))}
            <figcaption style:color=if right { RIGHT_COLOR } else { WRONG_COLOR }>{caption}</figcaption>
        </figure>
    }
}

/// Ten vertical bars, one per class: the predicted one red, the true one blue.
fn column_bars(probs: &[f32], predicted: usize, truth: Option<usize>) -> impl IntoView {
    let (width, height) = (100.0, 56.0);
    let bar_pitch = width / NUM_CLASSES as f64;
    view! {
        <svg class="column-bars" viewBox=format!("0 0 {width} {}", height + 10.0) role="img" aria-label="class probabilities">
            {probs
                .iter()
                .enumerate()
                .map(|(class, &p)| {
                    let h = height * f64::from(p.clamp(0.0, 1.0));
                    let color = bar_color(class, predicted, truth);
                    view! {
                        <rect x=bar_pitch * class as f64 + 1.0 y=height - h width=bar_pitch - 2.0 height=h fill=color>
                            <title>{format!("{class}: {:.1}%", p * 100.0)}</title>
                        </rect>
                        <text x=bar_pitch * (class as f64 + 0.5) y=height + 9.0 class="tick" text-anchor="middle">{class}</text>
                    }
                })
                .collect_view()}
        </svg>
    }
}

pub fn bar_color(class: usize, predicted: usize, truth: Option<usize>) -> &'static str {
    if Some(class) == truth {
        RIGHT_COLOR
    } else if class == predicted {
        WRONG_COLOR
    } else {
        OTHER_COLOR
    }
}

#[component]
pub fn ConfusionMatrix() -> impl IntoView {
    let s = expect_context::<Session>();
    view! {
        <h2>"Confusion matrix (test set)"</h2>
        {move || match s.confusion.get() {
            None => view! { <p class="hint">"Shown after each epoch."</p> }.into_any(),
            Some(counts) => {
                let names = s.class_names.get();
                view! {
                    <table class="confusion" data-testid="confusion">
                        <thead>
                            <tr>
                                <th class="corner">"true ↓ / predicted →"</th>
                                {(0..NUM_CLASSES).map(|c| view! { <th title=names[c]>{c}</th> }).collect_view()}
                            </tr>
                        </thead>
                        <tbody>
                            {(0..NUM_CLASSES)
                                .map(|truth| {
                                    let row = &counts[truth * NUM_CLASSES..(truth + 1) * NUM_CLASSES];
                                    let total = row.iter().sum::<u32>().max(1);
                                    view! {
                                        <tr>
                                            <th class="row-name">{row_name(truth, names[truth])}</th>
                                            {row
                                                .iter()
                                                .enumerate()
                                                .map(|(predicted, &n)| {
                                                    let share = f64::from(n) / f64::from(total);
                                                    let tint = if predicted == truth { [31, 119, 180] } else { [214, 39, 40] };
                                                    // At most 65% of the tint over white: the page's dark
                                                    // text keeps a contrast of 4.5:1 or more (WCAG AA).
                                                    let alpha = share.sqrt() * 0.65;
                                                    let [r, g, b] = tint;
                                                    view! {
                                                        <td style:background=format!("rgba({r}, {g}, {b}, {alpha:.3})")>{n}</td>
                                                    }
                                                })
                                                .collect_view()}
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                }
                    .into_any()
            }
        }}
    }
}

/// `3 Dress` for Fashion-MNIST, just `3` for MNIST (whose class names are the digits).
fn row_name(class: usize, name: &str) -> String {
    if name == class.to_string() {
        name.to_string()
    } else {
        format!("{class} {name}")
    }
}
