//! The `.keras` reader (zip → config.json → model.weights.h5) on arbitrary bytes: every input
//! must give a model or a `KerasError`, never a panic or a hang; what it accepts must be a
//! valid model with only finite weights, and survive a write/read round trip bit for bit.
#![no_main]

use fashion_interop::{export, import_keras, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: &[u8]| {
    if let Ok((spec, params)) = import_keras(file) {
        assert_eq!(params.len(), spec.total_params());
        assert!(params.iter().all(|p| p.is_finite()));
        let written = export(&spec, &params, Format::Keras).expect("an imported model exports");
        let (again, again_params) = import_keras(&written).expect("a written .keras file reads");
        assert_eq!(again.layers, spec.layers);
        assert!(params.iter().zip(&again_params).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
});
