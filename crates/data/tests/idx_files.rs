//! Loading small IDX files written by the tests themselves: round trips and every error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use fashion_data::{
    dataset_from_idx_bytes, load_dataset, load_splits, parse_idx_images, parse_idx_labels, DataError, Dataset,
    DatasetName, PIXELS_PER_IMAGE, SPLIT_FILE_STEMS,
};
use flate2::{write::GzEncoder, Compression};

/// A fresh, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fashion-data-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, file: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn idx(type_code: u8, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, type_code, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Pixels of `count` images; pixel values depend on image and position.
fn pixels(count: usize) -> Vec<u8> {
    (0..count * PIXELS_PER_IMAGE).map(|i| (i * 7 + i / PIXELS_PER_IMAGE) as u8).collect()
}

fn labels(count: usize) -> Vec<u8> {
    (0..count).map(|i| (i % 10) as u8).collect()
}

fn images_file(count: usize) -> Vec<u8> {
    idx(8, &[count as u32, 28, 28], &pixels(count))
}

fn labels_file(count: usize) -> Vec<u8> {
    idx(8, &[count as u32], &labels(count))
}

/// Parses `bytes` as images named `name` and returns the error; checks that the message
/// names the file.
fn images_error(bytes: &[u8], name: &str) -> DataError {
    let err = parse_idx_images(bytes, name).expect_err("expected an error");
    assert!(err.to_string().contains(name), "message lacks {name}: {err}");
    err
}

fn labels_error(bytes: &[u8], name: &str) -> DataError {
    let err = parse_idx_labels(bytes, name).expect_err("expected an error");
    assert!(err.to_string().contains(name), "message lacks {name}: {err}");
    err
}

#[test]
fn raw_files_round_trip() {
    let dir = TempDir::new("raw");
    let images = dir.write("imgs", &images_file(5));
    let labels_path = dir.write("lbls", &labels_file(5));
    let ds = load_dataset(&images, &labels_path).unwrap();
    assert_eq!(ds.len(), 5);
    assert_eq!(ds.images(), pixels(5).as_slice());
    assert_eq!(ds.labels(), labels(5).as_slice());
    assert_eq!(ds.image(2), &pixels(5)[2 * 784..3 * 784]);
    assert_eq!(ds.label(3), 3);
}

#[test]
fn gzip_and_raw_give_the_same_dataset() {
    let dir = TempDir::new("gz");
    let raw = load_dataset(&dir.write("i", &images_file(4)), &dir.write("l", &labels_file(4))).unwrap();
    let gz =
        load_dataset(&dir.write("i.gz", &gzip(&images_file(4))), &dir.write("l.gz", &gzip(&labels_file(4)))).unwrap();
    assert_eq!(raw, gz);
}

#[test]
fn gzip_bytes_are_detected_without_gz_name() {
    let ds = dataset_from_idx_bytes(&gzip(&images_file(2)), "i", &labels_file(2), "l").unwrap();
    assert_eq!(ds.len(), 2);
}

#[test]
fn empty_dataset_is_valid() {
    let ds = dataset_from_idx_bytes(&images_file(0), "i", &labels_file(0), "l").unwrap();
    assert!(ds.is_empty());
}

#[test]
fn take_keeps_the_first_samples() {
    let ds = dataset_from_idx_bytes(&images_file(6), "i", &labels_file(6), "l").unwrap();
    let first = ds.take(2);
    assert_eq!(first.len(), 2);
    assert_eq!(first.labels(), &[0, 1]);
    assert_eq!(first.images(), &ds.images()[..2 * 784]);
    assert_eq!(ds.take(100), ds);
    assert!(ds.take(0).is_empty());
}

#[test]
fn dataset_new_validates() {
    assert!(Dataset::new(vec![0; 784 * 2], vec![1, 9]).is_ok());
    assert!(matches!(Dataset::new(vec![0; 784 * 2 + 1], vec![1, 9]), Err(DataError::CountMismatch { .. })));
    assert!(matches!(
        Dataset::new(vec![0; 784 * 2], vec![1, 10]),
        Err(DataError::LabelOutOfRange { index: 1, value: 10, .. })
    ));
}

#[test]
fn missing_file() {
    let dir = TempDir::new("missing");
    let labels_path = dir.write("l", &labels_file(1));
    let images = dir.0.join("no-such-file");
    let err = load_dataset(&images, &labels_path).unwrap_err();
    assert!(matches!(err, DataError::FileNotFound { .. }), "{err}");
    assert!(err.to_string().contains("no-such-file"), "{err}");
}

#[test]
fn directory_instead_of_file() {
    let dir = TempDir::new("isdir");
    let labels_path = dir.write("l", &labels_file(1));
    std::fs::create_dir(dir.0.join("subdir")).unwrap();
    let err = load_dataset(&dir.0.join("subdir"), &labels_path).unwrap_err();
    assert!(matches!(err, DataError::IsDirectory { .. }), "{err}");
    assert!(err.to_string().contains("subdir"), "{err}");
}

#[test]
fn empty_file() {
    let dir = TempDir::new("empty");
    let images = dir.write("empty-images", &[]);
    let labels_path = dir.write("l", &labels_file(1));
    let err = load_dataset(&images, &labels_path).unwrap_err();
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err}");
    assert!(err.to_string().contains("empty-images"), "{err}");
}

#[test]
fn gz_name_without_gzip_data() {
    let err = images_error(&images_file(1), "train-images-idx3-ubyte.gz");
    assert!(matches!(err, DataError::NotGzip { .. }), "{err}");
}

#[test]
fn corrupt_gzip_stream() {
    let mut gz = gzip(&images_file(3));
    // Truncated stream.
    let err = images_error(&gz[..gz.len() / 2], "cut.gz");
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err}");
    // Flipped byte in the trailer: CRC mismatch.
    let last = gz.len() - 5;
    gz[last] ^= 0xff;
    let err = images_error(&gz, "crc.gz");
    assert!(matches!(err, DataError::CorruptGzip { .. }), "{err}");
}

#[test]
fn truncated_header() {
    for bytes in [&[0u8, 0][..], &[0, 0, 8, 3, 0, 0, 0, 1, 0, 0][..]] {
        let err = images_error(bytes, "short-images");
        assert!(matches!(err, DataError::TruncatedHeader { .. }), "{err}");
    }
    let err = labels_error(&[0, 0, 8, 1, 0], "short-labels");
    assert!(matches!(err, DataError::TruncatedHeader { .. }), "{err}");
}

#[test]
fn wrong_magic() {
    let mut bytes = images_file(1);
    bytes[0] = 0x89; // e.g. a PNG
    let err = images_error(&bytes, "not-idx");
    assert!(matches!(err, DataError::BadMagic { expected: 0x0000_0803, .. }), "{err}");
}

#[test]
fn wrong_element_type() {
    let err = images_error(&idx(0x0d, &[1, 28, 28], &[0; 784 * 4]), "floats");
    assert!(matches!(err, DataError::WrongElementType { found: 0x0d, .. }), "{err}");
}

#[test]
fn wrong_number_of_dimensions() {
    // A labels file given as images, and an images file given as labels.
    let err = images_error(&labels_file(3), "swapped-labels");
    assert!(matches!(err, DataError::WrongDimensionCount { found: 1, expected: 3, .. }), "{err}");
    let err = labels_error(&images_file(1), "swapped-images");
    assert!(matches!(err, DataError::WrongDimensionCount { found: 3, expected: 1, .. }), "{err}");
}

#[test]
fn images_not_28_by_28() {
    let err = images_error(&idx(8, &[2, 32, 32], &[0; 2 * 32 * 32]), "cifar-ish");
    assert!(matches!(err, DataError::WrongImageSize { rows: 32, cols: 32, .. }), "{err}");
}

#[test]
fn dimension_product_overflow() {
    // (2^32 - 1)^3 overflows usize on every target; reported before any size check.
    let err = images_error(&idx(8, &[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]), "huge-dims");
    assert!(matches!(err, DataError::DimensionOverflow { .. }), "{err}");
}

#[test]
fn truncated_body() {
    let mut bytes = images_file(3);
    bytes.truncate(bytes.len() - 10);
    let err = images_error(&bytes, "cut-images");
    assert!(matches!(err, DataError::TruncatedBody { expected: 2352, found: 2342, .. }), "{err}");
}

#[test]
fn trailing_bytes() {
    let mut bytes = labels_file(3);
    bytes.extend_from_slice(&[1, 2]);
    let err = labels_error(&bytes, "long-labels");
    assert!(matches!(err, DataError::TrailingBytes { extra: 2, .. }), "{err}");
}

#[test]
fn image_label_count_mismatch_names_both_files() {
    let err = dataset_from_idx_bytes(&images_file(3), "the-images", &labels_file(4), "the-labels").unwrap_err();
    assert!(matches!(err, DataError::CountMismatch { images: 3, labels: 4, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("the-images") && msg.contains("the-labels"), "{msg}");
}

#[test]
fn label_out_of_range() {
    let err = dataset_from_idx_bytes(&images_file(3), "i", &idx(8, &[3], &[0, 9, 10]), "bad-labels").unwrap_err();
    assert!(matches!(err, DataError::LabelOutOfRange { index: 2, value: 10, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("bad-labels") && msg.contains("index 2"), "{msg}");
}

fn write_splits(dir: &Path, gz: bool) {
    let files = [images_file(6), labels_file(6), images_file(2), labels_file(2)];
    for (stem, bytes) in SPLIT_FILE_STEMS.iter().zip(files) {
        if gz {
            std::fs::write(dir.join(format!("{stem}.gz")), gzip(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(stem), bytes).unwrap();
        }
    }
}

#[test]
fn load_splits_from_explicit_dir() {
    for gz in [false, true] {
        let dir = TempDir::new("splits");
        write_splits(&dir.0, gz);
        let splits = load_splits(DatasetName::Mnist, Some(&dir.0)).unwrap();
        assert_eq!(splits.train.len(), 6);
        assert_eq!(splits.test.len(), 2);
    }
}

#[test]
fn load_splits_prefers_gz() {
    let dir = TempDir::new("prefer");
    write_splits(&dir.0, true);
    // A broken raw copy next to the .gz must be ignored.
    dir.write(SPLIT_FILE_STEMS[0], b"garbage");
    let splits = load_splits(DatasetName::Fashion, Some(&dir.0)).unwrap();
    assert_eq!(splits.train.len(), 6);
}

#[test]
fn load_splits_missing_file() {
    let dir = TempDir::new("partial");
    write_splits(&dir.0, false);
    std::fs::remove_file(dir.0.join(SPLIT_FILE_STEMS[3])).unwrap();
    let err = load_splits(DatasetName::Mnist, Some(&dir.0)).unwrap_err();
    assert!(matches!(err, DataError::MissingSplitFile { .. }), "{err}");
    assert!(err.to_string().contains(SPLIT_FILE_STEMS[3]), "{err}");
}

#[test]
fn dataset_dir_not_found_lists_dirs_and_install_hint() {
    let dir = TempDir::new("nodata");
    let missing = dir.0.join("nowhere");
    let err = load_splits(DatasetName::Fashion, Some(&missing)).unwrap_err();
    assert!(matches!(err, DataError::DatasetNotFound { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("nowhere"), "{msg}");
    assert!(msg.contains("scripts/install-data.sh"), "{msg}");
    assert!(msg.contains("apt-get install dataset-fashion-mnist"), "{msg}");
}

#[test]
fn default_dirs() {
    let fashion = DatasetName::Fashion.default_dirs();
    assert!(fashion.contains(&PathBuf::from("/usr/share/datasets/fashion-mnist")));
    assert!(fashion.contains(&PathBuf::from("data/fashion")));
    let mnist = DatasetName::Mnist.default_dirs();
    assert!(mnist.contains(&PathBuf::from("data/mnist")));
    let from_source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    assert!(mnist.contains(&from_source));
}

#[test]
fn dataset_names() {
    assert_eq!("fashion".parse::<DatasetName>().unwrap(), DatasetName::Fashion);
    assert_eq!("fashion-mnist".parse::<DatasetName>().unwrap(), DatasetName::Fashion);
    assert_eq!("mnist".parse::<DatasetName>().unwrap(), DatasetName::Mnist);
    let err = "cifar".parse::<DatasetName>().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("cifar") && msg.contains("fashion") && msg.contains("mnist"));
    assert_eq!(DatasetName::default(), DatasetName::Fashion);
    assert_eq!(DatasetName::Mnist.as_str(), "mnist");
    assert_eq!(DatasetName::Fashion.class_names()[9], "Ankle boot");
    assert_eq!(DatasetName::Fashion.class_names()[0], "T-shirt/top");
    assert_eq!(DatasetName::Mnist.class_names()[7], "7");
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = fashion_data::SplitMix64::new(99);
    let valid = gzip(&images_file(1));
    for len in 0..200 {
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
        let _ = parse_idx_images(&bytes, "fuzz");
        let _ = parse_idx_labels(&bytes, "fuzz.gz");
        // Also mutate a valid header/stream.
        bytes = valid.clone();
        let at = rng.next_below(bytes.len() as u32) as usize;
        bytes[at] ^= 1 << rng.next_below(8);
        let _ = parse_idx_images(&bytes, "fuzz.gz");
    }
}
