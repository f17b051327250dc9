//! What the model thinks of test images: a gallery of 15 with their probabilities, and the
//! confusion matrix over the whole test set.

use fashion_data::{IMAGE_SIDE, NUM_CLASSES};
use leptos::prelude::*;

use crate::page::image::grey_data_url;
use crate::page::session::{argmax, GalleryItem, Session};

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
                    s.gallery.get().into_iter().map(|item| gallery_item(item, names, "gallery-item")).collect_view()
                }}
            </div>
        </Show>
    }
}

fn gallery_item(item: GalleryItem, names: [&'static str; NUM_CLASSES], test_id: &'static str) -> impl IntoView {
    let predicted = argmax(&item.probs);
    let right = predicted == item.label;
    let caption = format!("{} {:.0}% ({})", names[predicted], item.probs[predicted] * 100.0, names[item.label]);
    view! {
        <figure
            class="gallery-item"
            data-testid=test_id
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
                                                    let label = format!(
                                                        "{n} test images of {} predicted as {}: show them",
                                                        names[truth],
                                                        names[predicted]
                                                    );
                                                    view! {
                                                        <td style:background=format!("rgba({r}, {g}, {b}, {alpha:.3})")>
                                                            <button
                                                                type="button"
                                                                class="cell"
                                                                data-testid="confusion-cell"
                                                                data-true=truth
                                                                data-pred=predicted
                                                                data-count=n
                                                                aria-label=label
                                                                on:click=move |_| s.explore(truth, predicted)
                                                            >
                                                                {n}
                                                            </button>
                                                        </td>
                                                    }
                                                })
                                                .collect_view()}
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                    {class_figures(&counts, names)}
                }
                    .into_any()
            }
        }}
        <ErrorExplorer />
    }
}

/// Precision and recall of every class, from the confusion counts (tfjs-vis shows the same).
fn class_figures(counts: &[u32], names: [&'static str; NUM_CLASSES]) -> impl IntoView {
    let ratio = |hits: u32, of: u32| {
        if of == 0 {
            "–".to_string()
        } else {
            format!("{:.4}", f64::from(hits) / f64::from(of))
        }
    };
    view! {
        <table class="class-figures" data-testid="class-figures">
            <thead>
                <tr>
                    <th>"class"</th>
                    <th>"precision"</th>
                    <th>"recall"</th>
                    <th>"test images"</th>
                </tr>
            </thead>
            <tbody>
                {(0..NUM_CLASSES)
                    .map(|c| {
                        let hits = counts[c * NUM_CLASSES + c];
                        let predicted: u32 = (0..NUM_CLASSES).map(|t| counts[t * NUM_CLASSES + c]).sum();
                        let actual: u32 = counts[c * NUM_CLASSES..(c + 1) * NUM_CLASSES].iter().sum();
                        view! {
                            <tr data-testid="class-row" data-class=c>
                                <th class="row-name">{row_name(c, names[c])}</th>
                                <td data-col="precision">{ratio(hits, predicted)}</td>
                                <td data-col="recall">{ratio(hits, actual)}</td>
                                <td>{actual}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}

/// The test images of the confusion cell last clicked, most confident first.
#[component]
fn ErrorExplorer() -> impl IntoView {
    let s = expect_context::<Session>();
    move || {
        s.explorer.get().map(|explorer| {
            let names = s.class_names.get();
            let title = format!(
                "{} {} predicted as {}: {} test image{}{}",
                if explorer.truth == explorer.predicted { "Right:" } else { "Errors:" },
                names[explorer.truth],
                names[explorer.predicted],
                explorer.total,
                if explorer.total == 1 { "" } else { "s" },
                if explorer.total > explorer.items.len() {
                    format!(", the {} most confident", explorer.items.len())
                } else {
                    String::new()
                }
            );
            view! {
                <section
                    class="explorer"
                    data-testid="error-explorer"
                    data-true=explorer.truth
                    data-pred=explorer.predicted
                >
                    <div class="panel-head">
                        <h3>{title}</h3>
                        <button type="button" on:click=move |_| s.explorer.set(None)>
                            "Close"
                        </button>
                    </div>
                    <div class="gallery">
                        {explorer.items.into_iter().map(|item| gallery_item(item, names, "explorer-item")).collect_view()}
                    </div>
                </section>
            }
        })
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
