//! The IDX reader on arbitrary bytes: every input must give a `Dataset` or a `DataError`, never
//! a panic, and what it accepts must be consistent.
//!
//! The first byte picks the entry point and whether the name ends in `.gz` (which changes how
//! a non-gzip body is judged); for a whole dataset the next two bytes say where the images file
//! ends and the labels file begins.
#![no_main]

use fashion_data::{dataset_from_idx_bytes, parse_idx_images, parse_idx_labels, NUM_CLASSES, PIXELS_PER_IMAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let suffix = if mode & 0x80 != 0 { ".gz" } else { "" };
    match mode % 3 {
        0 => {
            if let Ok(pixels) = parse_idx_images(rest, &format!("images{suffix}")) {
                assert_eq!(pixels.len() % PIXELS_PER_IMAGE, 0, "accepted images are whole 28×28 images");
            }
        }
        1 => {
            let _ = parse_idx_labels(rest, &format!("labels{suffix}"));
        }
        _ => {
            let Some((split, rest)) = rest.split_first_chunk::<2>() else { return };
            let split = usize::from(u16::from_le_bytes(*split)).min(rest.len());
            let (images, labels) = rest.split_at(split);
            let names = (format!("images{suffix}"), format!("labels{suffix}"));
            if let Ok(dataset) = dataset_from_idx_bytes(images, &names.0, labels, &names.1) {
                assert_eq!(dataset.images().len(), dataset.len() * PIXELS_PER_IMAGE);
                assert_eq!(dataset.labels().len(), dataset.len());
                assert!(dataset.labels().iter().all(|&l| usize::from(l) < NUM_CLASSES));
            }
        }
    }
});
