//! What the page shows of the current weights: the gallery, the confusion matrix over the test
//! set, the error explorer of one confusion cell, the first layer's weights, and the drawing's
//! explanation (probabilities, activations, saliency).

use fashion_core::explain::{explain_with_params, first_layer_weight_images};
use fashion_core::platform::yield_now;
use fashion_core::reference::argmax;
use fashion_core::{Backend, Explanation};
use fashion_data::{NUM_CLASSES, PIXELS_PER_IMAGE};

use super::engine::{Engine, Run};
use crate::protocol::{Event, Explorer, GalleryItem};

pub const GALLERY_SIZE: usize = 15;

/// Test images the error explorer shows of one confusion cell.
pub const EXPLORER_SIZE: usize = 30;

/// Rows per forward pass when predicting the whole test set.
const GPU_PREDICT_CHUNK: usize = 1000;

const CPU_PREDICT_CHUNK: usize = 250;

fn to_unit(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&p| f32::from(p) / 255.0).collect()
}

impl Engine {
    /// The gallery, the first layer's weights and the confusion matrix for the current weights,
    /// which also become the draw pad's snapshot while the next epoch runs.
    pub(super) async fn refresh_predictions(&self, run: &Run) -> Result<(), String> {
        self.refresh_gallery(run).await?;
        let trainer = run.trainer.lock().await;
        let params = trainer.params().await.map_err(|e| e.to_string())?;
        self.emit(Event::WeightImages(first_layer_weight_images(&run.spec, &params)));
        *self.snapshot.borrow_mut() = Some((run.spec.clone(), params));
        // The CPU predicts synchronously: small chunks and a yield between them keep the worker
        // answering (a drawing, Stop).
        let chunk = if trainer.backend() == Backend::Gpu { GPU_PREDICT_CHUNK } else { CPU_PREDICT_CHUNK };
        let mut confusion = vec![0u32; NUM_CLASSES * NUM_CLASSES];
        let mut all_probs = Vec::with_capacity(run.test.len() * NUM_CLASSES);
        for start in (0..run.test.len()).step_by(chunk) {
            yield_now().await;
            let rows = chunk.min(run.test.len() - start);
            let pixels = to_unit(&run.test.images()[start * PIXELS_PER_IMAGE..(start + rows) * PIXELS_PER_IMAGE]);
            let probs = trainer.predict(&pixels).await.map_err(|e| e.to_string())?;
            for (row, p) in probs.chunks_exact(NUM_CLASSES).enumerate() {
                let truth = usize::from(run.test.label(start + row));
                confusion[truth * NUM_CLASSES + argmax(p)] += 1;
            }
            all_probs.extend(probs);
        }
        self.emit(Event::Confusion(Some(confusion)));
        *self.test_probs.borrow_mut() = all_probs;
        // An open explorer follows the new weights.
        if let Some((truth, predicted)) = self.explorer.get() {
            self.explore(truth, predicted);
        }
        Ok(())
    }

    pub(super) async fn refresh_gallery(&self, run: &Run) -> Result<(), String> {
        let len = run.test.len();
        let start = self.gallery_start.get() % len.max(1);
        let indices: Vec<usize> = (0..GALLERY_SIZE.min(len)).map(|i| (start + i) % len).collect();
        let pixels: Vec<u8> = indices.iter().flat_map(|&i| run.test.image(i).iter().copied()).collect();
        let probs = run.trainer.lock().await.predict(&to_unit(&pixels)).await.map_err(|e| e.to_string())?;
        let items = indices
            .iter()
            .zip(probs.chunks_exact(NUM_CLASSES))
            .map(|(&index, p)| GalleryItem {
                index,
                pixels: run.test.image(index).to_vec(),
                label: usize::from(run.test.label(index)),
                probs: p.to_vec(),
            })
            .collect();
        self.emit(Event::Gallery(items));
        Ok(())
    }

    /// Opens the error explorer on the test images of true class `truth` predicted as
    /// `predicted`, most confident first.
    pub(crate) fn explore(&self, truth: usize, predicted: usize) {
        let Some(run) = self.run.borrow().clone() else { return };
        let probs = self.test_probs.borrow();
        let mut matches: Vec<(usize, f32)> = probs
            .chunks_exact(NUM_CLASSES)
            .enumerate()
            .filter(|&(index, p)| usize::from(run.test.label(index)) == truth && argmax(p) == predicted)
            .map(|(index, p)| (index, p[predicted]))
            .collect();
        matches.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let total = matches.len();
        let items = matches
            .iter()
            .take(EXPLORER_SIZE)
            .map(|&(index, _)| GalleryItem {
                index,
                pixels: run.test.image(index).to_vec(),
                label: truth,
                probs: probs[index * NUM_CLASSES..(index + 1) * NUM_CLASSES].to_vec(),
            })
            .collect();
        drop(probs);
        self.set_explorer(Some(Explorer { truth, predicted, total, items }));
    }

    /// Shows 15 other test images.
    pub(crate) async fn another_batch(&self) -> Result<(), String> {
        let Some(run) = self.run.borrow().clone() else { return Ok(()) };
        let len = run.test.len().max(1);
        self.gallery_start.set((js_sys::Math::random() * len as f64) as usize);
        self.refresh_gallery(&run).await
    }

    /// Class probabilities for one 28×28 image with every layer's activations and the saliency
    /// ([`fashion_core::Trainer::explain`]), when a model is ready. While an epoch holds the
    /// trainer, the last finished epoch's weights answer on the CPU: the pad stays live.
    pub(crate) async fn explain_one(&self, pixels: &[f32]) -> Option<Explanation> {
        if !self.model_ready.get() {
            return None;
        }
        let run = self.run.borrow().clone()?;
        if let Some(trainer) = run.trainer.try_lock() {
            return trainer.explain(pixels).await.ok();
        }
        let (spec, params) = self.snapshot.borrow().clone()?;
        explain_with_params(&spec, params, pixels).ok()
    }
}
