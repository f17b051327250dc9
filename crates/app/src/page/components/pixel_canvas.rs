//! A canvas that shows an RGBA image pixel for pixel (the weight images, the saliency map, the
//! activation strips).

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
    /// `data-unit`, for a canvas that shows one unit.
    #[prop(optional)]
    unit: Option<usize>,
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
            data-unit=unit
            width=width
            height=height
            style=style
            role="img"
            aria-label=label
        ></canvas>
    }
}
