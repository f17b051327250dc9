//! A canvas that shows an RGBA image pixel for pixel (the saliency map, the activation strips:
//! a few, redrawn when the drawing changes; the weight grid's 64 are `<img>`s, see weights.rs).

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use web_sys::{CanvasRenderingContext2d, ImageData};

/// A canvas of `width × height` pixels painted with `rgba` once it is in the page.
#[component]
pub(super) fn PixelCanvas(
    testid: &'static str,
    class: &'static str,
    width: usize,
    height: usize,
    rgba: Vec<u8>,
    label: String,
    #[prop(optional)] style: String,
) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    Effect::new(move |_| {
        let Some(canvas) = canvas.get() else { return };
        let Some(context) =
            canvas.get_context("2d").ok().flatten().and_then(|c| c.dyn_into::<CanvasRenderingContext2d>().ok())
        else {
            return;
        };
        if let Ok(image) = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), width as u32, height as u32) {
            let _ = context.put_image_data(&image, 0.0, 0.0);
        }
    });
    view! {
        <canvas
            node_ref=canvas
            class=class
            data-testid=testid
            width=width
            height=height
            style=style
            role="img"
            aria-label=label
        ></canvas>
    }
}
