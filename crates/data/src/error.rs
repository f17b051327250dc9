use std::path::PathBuf;

use crate::DatasetName;

/// Everything that can go wrong while loading a dataset.
///
/// Each message is one line that names the file (or directory) and says what to fix.
/// I/O errors are folded into the message rather than exposed as `source()`, so printing
/// the error chain does not repeat them.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{name}: file not found")]
    FileNotFound { name: String },

    #[error("{name}: is a directory, expected an IDX file")]
    IsDirectory { name: String },

    #[error("{name}: cannot read file: {error}")]
    Io { name: String, error: std::io::Error },

    #[error("{name}: file is empty (re-download or reinstall the dataset)")]
    EmptyFile { name: String },

    #[error("{name}: name ends in .gz but the data is not gzip (no 1f 8b magic); re-download it, or drop the .gz suffix if it is a raw IDX file")]
    NotGzip { name: String },

    #[error("{name}: corrupt gzip stream ({reason}); re-download the file")]
    CorruptGzip { name: String, reason: String },

    #[error("{name}: larger than the {limit_mib} MiB limit (after decompression); not a Fashion-MNIST/MNIST file")]
    TooLarge { name: String, limit_mib: usize },

    #[error("{name}: truncated IDX header: need {needed} bytes, file has {found}")]
    TruncatedHeader { name: String, needed: usize, found: usize },

    #[error("{name}: not an IDX file: magic is {found:#010x}, expected {expected:#010x}")]
    BadMagic { name: String, found: u32, expected: u32 },

    #[error("{name}: IDX element type is {found:#04x}, only 0x08 (unsigned byte) is supported")]
    WrongElementType { name: String, found: u8 },

    #[error("{name}: IDX file has {found} dimension(s), expected {expected} ({})", what_ndim_means(*.expected))]
    WrongDimensionCount { name: String, found: u8, expected: u8 },

    #[error("{name}: images are {rows}x{cols}, expected 28x28")]
    WrongImageSize { name: String, rows: u32, cols: u32 },

    #[error("{name}: IDX dimensions {dims:?} are too large (their product overflows)")]
    DimensionOverflow { name: String, dims: Vec<u32> },

    #[error(
        "{name}: truncated body: header promises {expected} bytes of data, file has {found}; re-download the file"
    )]
    TruncatedBody { name: String, expected: usize, found: usize },

    #[error("{name}: {extra} unexpected trailing bytes after the {expected} bytes the header promises")]
    TrailingBytes { name: String, expected: usize, extra: usize },

    #[error(
        "{images_name} has {images} images but {labels_name} has {labels} labels; the files do not belong together"
    )]
    CountMismatch { images_name: String, images: usize, labels_name: String, labels: usize },

    #[error("{name}: label {value} at index {index} is out of range (labels are 0..=9)")]
    LabelOutOfRange { name: String, index: usize, value: u8 },

    #[error("{dir}: neither {stem}.gz nor {stem} found in the dataset directory")]
    MissingSplitFile { dir: PathBuf, stem: &'static str },

    #[error("{dataset} dataset not found (looked in: {}); run scripts/install-data.sh{}, or point FASHION_GPU_DATA_DIR at a directory holding {dataset}/", list_dirs(.tried), install_hint(*.dataset))]
    DatasetNotFound { dataset: DatasetName, tried: Vec<PathBuf> },

    #[error("unknown dataset {given:?}; valid names are: fashion, fashion-mnist, mnist")]
    UnknownDatasetName { given: String },
}

fn what_ndim_means(expected: u8) -> &'static str {
    match expected {
        3 => "an images file has magic 0x00000803",
        1 => "a labels file has magic 0x00000801",
        _ => "unexpected IDX layout",
    }
}

fn list_dirs(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "no directories".to_owned();
    }
    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn install_hint(dataset: DatasetName) -> &'static str {
    match dataset {
        DatasetName::Fashion => " (or `apt-get install dataset-fashion-mnist`)",
        DatasetName::Mnist => "",
    }
}
