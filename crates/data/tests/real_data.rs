//! Loads the installed datasets when present (see scripts/install-data.sh); skips with a
//! note otherwise.

use std::path::Path;

use fashion_data::{load_splits, DatasetName};

fn check_real_splits(name: DatasetName, dir: &Path, first_train: u8, first_test: u8) {
    if !dir.is_dir() {
        eprintln!("skipping: {} not installed at {} (run scripts/install-data.sh)", name, dir.display());
        return;
    }
    let splits = load_splits(name, Some(dir)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(splits.train.len(), 60_000);
    assert_eq!(splits.test.len(), 10_000);
    assert_eq!(splits.train.label(0), first_train);
    assert_eq!(splits.test.label(0), first_test);
}

#[test]
fn real_fashion_mnist() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    check_real_splits(DatasetName::Fashion, dir, 9, 9);
    assert_eq!(DatasetName::Fashion.class_names()[9], "Ankle boot");
}

#[test]
fn real_mnist() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    check_real_splits(DatasetName::Mnist, &dir, 5, 7);
}
