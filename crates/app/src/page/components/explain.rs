//! What the model does with the drawing, from the core's `Trainer::explain` (evaluation mode, on
//! whichever backend trains): each layer's activations as a strip, and the saliency map, the
//! gradient of the predicted class's probability with respect to each input pixel, drawn over the
//! 28×28 input. Both follow the draw pad's predictions.

use fashion_core::{Explanation, LayerActivations};
use fashion_data::{IMAGE_SIDE, NUM_CLASSES};
use leptos::prelude::*;

use super::pixel_canvas::PixelCanvas;
use super::weights::diverging_rgba;
use crate::page::image::{ink, to_bytes};

/// Pixels between two feature maps of a conv strip (transparent).
const MAP_GAP: usize = 1;
/// The saliency's colours: it raises the probability (red) or lowers it (blue).
const RAISES: [f32; 3] = [214.0, 39.0, 40.0];
const LOWERS: [f32; 3] = [31.0, 119.0, 180.0];

/// The explanation of the drawing `(pixels in [0, 1], explanation)`, when there is one.
#[component]
pub fn ExplainView(
    explained: RwSignal<Option<(Vec<f32>, Explanation)>>,
    names: Signal<[&'static str; NUM_CLASSES]>,
) -> impl IntoView {
    move || {
        explained.get().map(|(pixels, explanation)| {
            let class = names.get()[explanation.predicted];
            let largest = largest_magnitude(&explanation.saliency);
            let saliency_label = format!(
                "saliency map over the drawing: red pixels raise the probability of {class}, blue ones lower it \
                 (largest gradient {largest:.3})"
            );
            let layers = explanation.layers.len();
            view! {
                <div class="explain" data-testid="explanation" data-ink=ink(&to_bytes(&pixels))>
                    <figure class="saliency-figure">
                        <PixelCanvas
                            testid="saliency"
                            class="saliency"
                            width=IMAGE_SIDE
                            height=IMAGE_SIDE
                            rgba=saliency_rgba(&pixels, &explanation.saliency)
                            label=saliency_label
                        />
                        <figcaption class="hint">
                            "Saliency for “" {class} "”: red raises its probability, blue lowers it"
                        </figcaption>
                    </figure>
                    <div class="activations" data-testid="activations" data-layers=layers>
                        <p class="hint">"Each layer's activations for the drawing (red positive, blue negative)"</p>
                        {explanation.layers.iter().map(strip).collect_view()}
                    </div>
                </div>
            }
        })
    }
}

/// One layer's strip: a dense layer as a row of cells, an image-shaped one as its feature maps
/// side by side, each scaled by the layer's largest magnitude.
fn strip(layer: &LayerActivations) -> impl IntoView {
    let (width, height, rgba) = strip_rgba(layer);
    let dims = layer.dims.iter().map(usize::to_string).collect::<Vec<_>>().join("×");
    let largest = largest_magnitude(&layer.values);
    let label = format!("activations of {} ({dims}), largest {largest:.3}", layer.name);
    // Cells of a dense row at least 6 px wide; maps at 3 px a pixel; neither wider than the panel.
    let style = match layer.dims.as_slice() {
        [_, _, _] => format!("width: min(100%, {}px)", 3 * width),
        _ => format!("width: min(100%, {}px); height: 14px", 6 * width),
    };
    view! {
        <div class="activation-strip" data-testid="activation-strip" data-layer=layer.name.clone()>
            <span class="strip-name">{format!("{} · {dims}", layer.name)}</span>
            <PixelCanvas testid="activation-canvas" class="strip" width height rgba label style />
        </div>
    }
}

/// A layer's strip as RGBA `(width, height, bytes)`.
fn strip_rgba(layer: &LayerActivations) -> (usize, usize, Vec<u8>) {
    let scale = largest_magnitude(&layer.values).max(f32::MIN_POSITIVE);
    let scaled: Vec<f32> = layer.values.iter().map(|v| v / scale).collect();
    match *layer.dims.as_slice() {
        [h, w, channels] => {
            let width = channels * (w + MAP_GAP) - MAP_GAP;
            let mut rgba = vec![0u8; width * h * 4];
            let colours = diverging_rgba(&scaled);
            for y in 0..h {
                for x in 0..w {
                    for c in 0..channels {
                        let from = ((y * w + x) * channels + c) * 4;
                        let to = (y * width + c * (w + MAP_GAP) + x) * 4;
                        rgba[to..to + 4].copy_from_slice(&colours[from..from + 4]);
                    }
                }
            }
            (width, h, rgba)
        }
        _ => (scaled.len(), 1, diverging_rgba(&scaled)),
    }
}

/// The input dimmed to a dark grey, with each pixel's saliency over it: red where raising the pixel
/// raises the predicted class's probability, blue where it lowers it, opaque at the largest.
fn saliency_rgba(pixels: &[f32], saliency: &[f32]) -> Vec<u8> {
    let scale = largest_magnitude(saliency).max(f32::MIN_POSITIVE);
    pixels
        .iter()
        .zip(saliency)
        .flat_map(|(&p, &s)| {
            let grey = 30.0 + 140.0 * p.clamp(0.0, 1.0);
            // A square root lifts the faint pixels into view.
            let strength = (s.abs() / scale).sqrt().min(1.0);
            let colour = if s < 0.0 { LOWERS } else { RAISES };
            let channel = |c: f32| (grey * (1.0 - strength) + c * strength).round() as u8;
            [channel(colour[0]), channel(colour[1]), channel(colour[2]), 255]
        })
        .collect()
}

fn largest_magnitude(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_maps_sit_side_by_side_with_a_gap() {
        // 2×2 pixels, 2 channels (channels last): channel 0 positive, channel 1 negative.
        let layer = LayerActivations { name: "conv2d".into(), dims: vec![2, 2, 2], values: [1.0, -1.0].repeat(4) };
        let (width, height, rgba) = strip_rgba(&layer);
        assert_eq!((width, height), (5, 2));
        let pixel = |x: usize, y: usize| &rgba[(y * width + x) * 4..(y * width + x) * 4 + 4];
        assert_eq!(pixel(0, 1), [214, 39, 40, 255]);
        assert_eq!(pixel(2, 0), [0, 0, 0, 0]);
        assert_eq!(pixel(4, 1), [31, 119, 180, 255]);
    }

    #[test]
    fn the_saliency_colours_the_input_by_sign_and_size() {
        let rgba = saliency_rgba(&[0.0, 1.0, 0.5], &[0.0, -2.0, 2.0]);
        assert_eq!(&rgba[..4], [30, 30, 30, 255]);
        assert_eq!(&rgba[4..8], [31, 119, 180, 255]);
        assert_eq!(&rgba[8..], [214, 39, 40, 255]);
    }
}
