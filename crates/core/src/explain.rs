//! What a trained model does with one image, for the page's "what the model learned": every
//! op's activations and the saliency map, both in evaluation mode (no dropout, BatchNorm with its
//! moving statistics), as [`crate::Trainer::explain`] returns them from either backend.

use crate::model::OpOutput;
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
