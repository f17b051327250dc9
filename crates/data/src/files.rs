//! Reading IDX files from disk and finding the dataset directories (native only).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::{dataset_from_idx_bytes, DataError, DatasetName, Splits, MAX_DECOMPRESSED_BYTES};

/// Environment variable naming a directory holding `fashion/` and/or `mnist/`.
pub const DATA_DIR_ENV: &str = "FASHION_GPU_DATA_DIR";

/// File stems of a dataset directory, in the order train images, train labels, test
/// images, test labels. Each file may exist as `<stem>.gz` or raw `<stem>`.
pub const SPLIT_FILE_STEMS: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

impl DatasetName {
    /// Directories searched, in order, when no directory is given:
    /// `$FASHION_GPU_DATA_DIR/<name>` (if set), the Debian package's directory (Fashion
    /// only), `data/<name>` relative to the working directory, to the executable
    /// (`target/<profile>/../../data`) and to this workspace's source tree.
    pub fn default_dirs(&self) -> Vec<PathBuf> {
        let name = self.as_str();
        let mut dirs = Vec::new();
        if let Some(root) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
            dirs.push(PathBuf::from(root).join(name));
        }
        if *self == DatasetName::Fashion {
            dirs.push(PathBuf::from("/usr/share/datasets/fashion-mnist"));
        }
        dirs.push(Path::new("data").join(name));
        if let Some(exe_dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
            dirs.push(exe_dir.join("../../data").join(name));
        }
        dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data").join(name));
        dirs
    }
}

/// Reads and validates a pair of IDX files (each gzip or raw).
pub fn load_dataset(images_path: &Path, labels_path: &Path) -> Result<crate::Dataset, DataError> {
    let images = read_file(images_path)?;
    let labels = read_file(labels_path)?;
    dataset_from_idx_bytes(&images, &images_path.display().to_string(), &labels, &labels_path.display().to_string())
}

/// Loads the train and test splits of `name` from `dir`, or from the first of
/// [`DatasetName::default_dirs`] that holds the training images when `dir` is `None`.
pub fn load_splits(name: DatasetName, dir: Option<&Path>) -> Result<Splits, DataError> {
    let dir = match dir {
        Some(d) if d.is_dir() => d.to_path_buf(),
        Some(d) => return Err(DataError::DatasetNotFound { dataset: name, tried: vec![d.to_path_buf()] }),
        None => {
            let tried = name.default_dirs();
            match tried.iter().find(|d| split_file_path(d, SPLIT_FILE_STEMS[0]).is_some()) {
                Some(d) => d.clone(),
                None => return Err(DataError::DatasetNotFound { dataset: name, tried }),
            }
        }
    };
    let path = |stem: &'static str| {
        split_file_path(&dir, stem).ok_or_else(|| DataError::MissingSplitFile { dir: dir.clone(), stem })
    };
    // All four are looked up before the slow part, so a missing file is reported at once.
    let [train_images, train_labels, test_images, test_labels] = SPLIT_FILE_STEMS.map(path);
    let (train_images, train_labels) = (train_images?, train_labels?);
    let (test_images, test_labels) = (test_images?, test_labels?);
    Ok(Splits { train: load_dataset(&train_images, &train_labels)?, test: load_dataset(&test_images, &test_labels)? })
}

/// `dir/<stem>.gz` if it exists, else `dir/<stem>` if it exists.
pub fn split_file_path(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_owned()].into_iter().map(|file| dir.join(file)).find(|p| p.exists())
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let name = || path.display().to_string();
    let io_error = |error: io::Error| match error.kind() {
        io::ErrorKind::NotFound => DataError::FileNotFound { name: name() },
        _ => DataError::Io { name: name(), error },
    };
    // Checked before opening: on Windows opening a directory fails with a vaguer error.
    if std::fs::metadata(path).map_err(io_error)?.is_dir() {
        return Err(DataError::IsDirectory { name: name() });
    }
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut bytes = Vec::new();
    // Compressed or raw, a real file is far below the decompressed cap.
    let cap = u64::try_from(MAX_DECOMPRESSED_BYTES).unwrap_or(u64::MAX);
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes).map_err(io_error)?;
    if bytes.len() as u64 > cap {
        return Err(DataError::TooLarge { name: name(), limit_mib: MAX_DECOMPRESSED_BYTES / (1024 * 1024) });
    }
    Ok(bytes)
}
