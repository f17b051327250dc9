use std::fmt;
use std::str::FromStr;

use crate::{DataError, NUM_CLASSES, PIXELS_PER_IMAGE};

/// Images and labels of one split, kept as raw bytes.
///
/// Invariant: `images.len() == labels.len() * PIXELS_PER_IMAGE` and every label is
/// `< NUM_CLASSES`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `len() * 784` pixels, image after image, each row-major, 0..=255.
    images: Vec<u8>,
    labels: Vec<u8>,
}

impl Dataset {
    /// Builds a dataset from raw pixels (`labels.len() * 784` bytes) and labels (`< 10`).
    pub fn new(images: Vec<u8>, labels: Vec<u8>) -> Result<Self, DataError> {
        Self::from_named_parts(images, "images", labels, "labels")
    }

    /// Like [`Dataset::new`], naming the source files in errors.
    pub(crate) fn from_named_parts(
        images: Vec<u8>,
        images_name: &str,
        labels: Vec<u8>,
        labels_name: &str,
    ) -> Result<Self, DataError> {
        let image_count = images.len() / PIXELS_PER_IMAGE;
        let sizes_match = labels.len().checked_mul(PIXELS_PER_IMAGE).is_some_and(|n| n == images.len());
        if !sizes_match {
            return Err(DataError::CountMismatch {
                images_name: images_name.to_owned(),
                images: image_count,
                labels_name: labels_name.to_owned(),
                labels: labels.len(),
            });
        }
        if let Some((index, &value)) = labels.iter().enumerate().find(|&(_, &l)| usize::from(l) >= NUM_CLASSES) {
            return Err(DataError::LabelOutOfRange { name: labels_name.to_owned(), index, value });
        }
        Ok(Self { images, labels })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All pixels: `len() * 784` bytes, image after image.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels, one byte each, `< 10`.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The 784 pixels of sample `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS_PER_IMAGE..(i + 1) * PIXELS_PER_IMAGE]
    }

    /// The label of sample `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// The first `min(n, len())` samples.
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset { images: self.images[..n * PIXELS_PER_IMAGE].to_vec(), labels: self.labels[..n].to_vec() }
    }
}

/// The training and test splits of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    pub train: Dataset,
    pub test: Dataset,
}

/// Which dataset to use; both share the IDX layout, 28x28 images and 10 classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DatasetName {
    #[default]
    Fashion,
    Mnist,
}

impl DatasetName {
    pub const ALL: [DatasetName; 2] = [DatasetName::Fashion, DatasetName::Mnist];

    /// The canonical name: `"fashion"` or `"mnist"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DatasetName::Fashion => "fashion",
            DatasetName::Mnist => "mnist",
        }
    }

    /// Human-readable class names, indexed by label.
    pub fn class_names(&self) -> [&'static str; NUM_CLASSES] {
        match self {
            DatasetName::Fashion => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
            DatasetName::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = DataError;

    /// Accepts `fashion`, `fashion-mnist` and `mnist` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fashion" | "fashion-mnist" => Ok(DatasetName::Fashion),
            "mnist" => Ok(DatasetName::Mnist),
            _ => Err(DataError::UnknownDatasetName { given: s.to_owned() }),
        }
    }
}
