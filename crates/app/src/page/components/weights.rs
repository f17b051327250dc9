//! What the first layer learned: each unit's weights over the 28×28 input (a CNN: each first-layer
//! filter) as a small image, blue for negative, white for 0, red for positive, each scaled by its
//! own largest weight; refreshed after every epoch. Each is an `<img>`, not a canvas: 64 canvases
//! changed at once cost the page's main thread a long frame at every epoch's end.

use leptos::prelude::*;

use crate::page::image::rgba_data_url;
use crate::page::session::Session;

/// Units shown (the baseline's first layer has 256).
const SHOWN: usize = 64;
const NEGATIVE: [f32; 3] = [31.0, 119.0, 180.0];
const POSITIVE: [f32; 3] = [214.0, 39.0, 40.0];

#[component]
pub fn WeightsGrid() -> impl IntoView {
    let s = expect_context::<Session>();
    move || {
        s.weight_images.get().map(|(side, images)| {
            let total = images.len();
            let title = if total > SHOWN {
                format!("What the first layer learned: the first {SHOWN} of its {total} units")
            } else {
                format!("What the first layer learned: its {total} units")
            };
            view! {
                <h3>{title}</h3>
                <p class="hint">"Each unit's weights on the input pixels: red raises it, blue lowers it."</p>
                <div class="weights-grid" data-testid="weights-grid">
                    {images
                        .into_iter()
                        .take(SHOWN)
                        .enumerate()
                        .map(|(unit, weights)| view! { <WeightImage unit side weights /> })
                        .collect_view()}
                </div>
            }
        })
    }
}

#[component]
fn WeightImage(unit: usize, side: usize, weights: Vec<f32>) -> impl IntoView {
    view! {
        <img
            data-testid="weight-image"
            class="weight-image"
            data-unit=unit
            width=side
            height=side
            src=rgba_data_url(&diverging_rgba(&weights), side, side)
            alt=format!("weights of unit {unit}")
        />
    }
}

/// Values in [-1, 1] as RGBA: white at 0, towards blue below and red above.
pub(crate) fn diverging_rgba(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| {
            let strength = v.abs().min(1.0);
            let color = if v < 0.0 { NEGATIVE } else { POSITIVE };
            let channel = |c: f32| (255.0 * (1.0 - strength) + c * strength).round() as u8;
            [channel(color[0]), channel(color[1]), channel(color[2]), 255]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_white_and_the_extremes_are_the_two_colours() {
        assert_eq!(
            diverging_rgba(&[0.0, -1.0, 1.0, 0.5]),
            [255, 255, 255, 255, 31, 119, 180, 255, 214, 39, 40, 255, 235, 147, 148, 255]
        );
    }
}
