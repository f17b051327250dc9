//! `ModelSpec::summary()` against the text TensorFlow 2.1 prints for the same models, byte for
//! byte (fixtures/summaries/*.txt, written by tf21_print_summary.py from hand-written layer
//! tables with Keras 2.1's own `print_row`).

use fashion_core::{ModelSpec, PRESETS};

fn expected(preset: &str) -> String {
    let path = format!("{}/tests/fixtures/summaries/{preset}.txt", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_preset_prints_the_tf_2_1_summary() {
    for &preset in PRESETS {
        let ours = ModelSpec::preset(preset).unwrap().summary() + "\n";
        let theirs = expected(preset);
        for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
            assert_eq!(a, b, "{preset}, line {}", i + 1);
        }
        assert_eq!(ours, theirs, "{preset}");
    }
}

#[test]
fn a_custom_model_uses_the_same_layout() {
    let spec = ModelSpec::parse("custom", "64,bn,relu,dropout:0.1").unwrap();
    let summary = spec.summary();
    for line in summary.lines().skip(1) {
        assert!(line.chars().count() == 65 || line.starts_with("Total") || line.contains("params:"), "{line:?}");
    }
    assert!(summary.contains("\nre_lu (ReLU)                 (None, 64)                0         \n"), "{summary}");
}
