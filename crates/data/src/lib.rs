//! Fashion-MNIST / MNIST data: IDX files (gzip or raw) → [`Dataset`], and seeded,
//! platform-independent shuffling.
//!
//! Parsing works from bytes everywhere (including wasm); reading files from disk and the
//! default dataset directories are native-only.

mod dataset;
mod drawing;
mod error;
#[cfg(not(target_arch = "wasm32"))]
mod files;
mod idx;
mod shuffle;

pub use dataset::{Dataset, DatasetName, Splits};
pub use drawing::{preprocess_drawing, INK_BOX_SIDE};
pub use error::DataError;
#[cfg(not(target_arch = "wasm32"))]
pub use files::{load_dataset, load_splits, split_file_path, DATA_DIR_ENV, SPLIT_FILE_STEMS};
pub use idx::{dataset_from_idx_bytes, parse_idx_images, parse_idx_labels, MAX_DECOMPRESSED_BYTES};
pub use shuffle::{shuffled_indices, SplitMix64};

/// Width and height of every image, in pixels.
pub const IMAGE_SIDE: usize = 28;
/// Bytes (one per pixel, 0..=255) per image.
pub const PIXELS_PER_IMAGE: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Labels are `0..NUM_CLASSES`.
pub const NUM_CLASSES: usize = 10;
