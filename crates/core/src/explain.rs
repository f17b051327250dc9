//! What a trained model does with one image, for the page's "what the model learned": every
//! op's activations and the saliency map, both in evaluation mode (no dropout, BatchNorm with its
//! moving statistics), as [`crate::Trainer::explain`] returns them from either backend; and what
//! its first layer learned, as images ([`first_layer_weight_images`]).

use crate::model::{ModelSpec, Op, OpOutput};
use crate::reference::argmax;
use crate::train::TrainError;

/// One op's output for the image.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerActivations {
    /// The layer's name as the model summary gives it (`dense_1`, `conv2d`).
    pub name: String,
    /// Its dimensions: `[height, width, channels]` (channels last) for images, `[width]` otherwise.
    pub dims: Vec<usize>,
    /// `dims.iter().product()` values, after the op's ReLU when it has one.
    pub values: Vec<f32>,
}

/// A prediction for one image and what it rests on.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Explanation {
    /// Softmax probabilities, one per class.
    pub probabilities: Vec<f32>,
    /// The most probable class (the first of equals).
    pub predicted: usize,
    /// Every op's output, first to last (the last is the logits).
    pub layers: Vec<LayerActivations>,
    /// ∂p_c/∂x: the gradient of the predicted class's probability with respect to each input
    /// pixel, in evaluation mode.
    pub saliency: Vec<f32>,
}

impl Explanation {
    /// Puts a backend's results together: `outputs` holds each op's values, in op order.
    pub(crate) fn new(
        ops: &[OpOutput],
        probabilities: Vec<f32>,
        outputs: impl IntoIterator<Item = Vec<f32>>,
        saliency: Vec<f32>,
    ) -> Self {
        let layers = ops
            .iter()
            .zip(outputs)
            .map(|(op, values)| LayerActivations { name: op.name.clone(), dims: op.dims.clone(), values })
            .collect();
        Explanation { predicted: argmax(&probabilities), probabilities, layers, saliency }
    }
}

/// Refuses anything but one image of `inputs` pixels.
pub(crate) fn check_one_image(pixels: &[f32], inputs: usize) -> Result<(), TrainError> {
    if pixels.len() != inputs {
        return Err(TrainError::Config(format!(
            "explain takes one image of {inputs} pixels, got {} values",
            pixels.len()
        )));
    }
    Ok(())
}

/// [`crate::Trainer::explain`] for `params` of `spec` without a trainer, on the fast CPU
/// kernels: what the page's draw pad uses while the trainer is busy with an epoch (the weights
/// of the last finished epoch, read back once).
pub fn explain_with_params(
    spec: &crate::ModelSpec,
    params: Vec<f32>,
    pixels: &[f32],
) -> Result<Explanation, TrainError> {
    check_one_image(pixels, spec.inputs)?;
    crate::train::check_param_count(&params, spec.total_params())?;
    let model =
        crate::cpu::CpuModel::new(spec, params, crate::AdamConfig::default(), 0).with_kernels(crate::CpuKernels::Fast);
    let (probs, outputs, saliency) = model.explain(pixels, 1);
    Ok(Explanation::new(&spec.op_outputs(), probs, outputs, saliency))
}

/// What the first layer learned, as images: for a Dense layer on square images, each unit's
/// weights over the input pixels; for a Conv2D layer, each filter's taps on the first channel.
/// Each image is `side × side`, row-major, scaled by its largest |w| into [-1, 1] (0 stays 0, so
/// a diverging colour map shows sign and relative strength). `None` for other first layers.
pub fn first_layer_weight_images(spec: &ModelSpec, params: &[f32]) -> Option<(usize, Vec<Vec<f32>>)> {
    let scaled = |w: Vec<f32>| {
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        w.into_iter().map(|v| if max > 0.0 { v / max } else { 0.0 }).collect::<Vec<f32>>()
    };
    // Zero padding has no weights: the first layer is the conv it pads for.
    match spec.ops().into_iter().find(|op| !matches!(op, Op::ZeroPad2D { .. }))? {
        Op::Dense { layout, .. } => {
            let side = (layout.inputs as f64).sqrt() as usize;
            if side * side != layout.inputs {
                return None;
            }
            let kernel = params.get(layout.kernel_offset..layout.kernel_offset + layout.kernel_len())?;
            let images = (0..layout.units)
                .map(|unit| scaled((0..layout.inputs).map(|k| kernel[k * layout.units + unit]).collect()))
                .collect();
            Some((side, images))
        }
        Op::Conv2D { layout, .. } => {
            let (k, channels, filters) = (layout.kernel_size, layout.channels, layout.filters);
            let kernel = params.get(layout.kernel_offset..layout.kernel_offset + layout.kernel_len())?;
            let images = (0..filters)
                .map(|filter| scaled((0..k * k).map(|tap| kernel[tap * channels * filters + filter]).collect()))
                .collect();
            Some((k, images))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_layer_images_are_each_units_column_scaled_by_its_largest_weight() {
        let baseline = ModelSpec::preset("baseline").unwrap();
        let mut params = vec![0.0; baseline.total_params()];
        let units = 256;
        // Unit 2: −3 at pixel 0, +1.5 at pixel 783.
        params[2] = -3.0;
        params[783 * units + 2] = 1.5;
        let (side, images) = first_layer_weight_images(&baseline, &params).unwrap();
        assert_eq!((side, images.len(), images[2].len()), (28, 256, 784));
        assert_eq!((images[2][0], images[2][783], images[2][1]), (-1.0, 0.5, 0.0));
        assert!(images[0].iter().all(|&v| v == 0.0), "an all-zero unit stays 0");
        let cnn = ModelSpec::preset("cnn").unwrap();
        let params = crate::init::glorot_uniform_params(&cnn, 1);
        let (side, filters) = first_layer_weight_images(&cnn, &params).unwrap();
        assert_eq!((side, filters.len()), (3, 32));
        let conv = cnn.param_layout().conv[0];
        let tap = |filter: usize, tap: usize| params[conv.kernel_offset + tap * 32 + filter];
        let max = (0..9).map(|t| tap(5, t).abs()).fold(0.0, f32::max);
        assert!((filters[5][4] - tap(5, 4) / max).abs() < 1e-6);
    }
}
