//! The safetensors loader on arbitrary bytes: every input must give parameters or a
//! `WeightsError`, never a panic; what it accepts must have the model's parameter count, only
//! finite values, and survive a save/load round trip bit for bit.
//!
//! The first byte picks the model: a tiny one (4 inputs → Dense(10, softmax), 50 parameters, so
//! whole valid files are small enough for the fuzzer to mutate) or the study's baseline.
#![no_main]

use fashion_core::weights::{from_safetensors, to_safetensors};
use fashion_core::{Activation, Layer, ModelSpec};
use libfuzzer_sys::fuzz_target;

fn spec(choice: u8) -> Option<ModelSpec> {
    if choice & 1 == 0 {
        ModelSpec::new("tiny", 4, vec![Layer::Dense { units: 10, activation: Activation::Softmax }]).ok()
    } else {
        ModelSpec::preset("baseline").ok()
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&choice, file)) = input.split_first() else { return };
    let Some(spec) = spec(choice) else { return };
    if let Ok(params) = from_safetensors(&spec, file) {
        assert_eq!(params.len(), spec.total_params());
        assert!(params.iter().all(|p| p.is_finite()));
        let again = from_safetensors(&spec, &to_safetensors(&spec, &params)).expect("a saved file loads");
        assert!(params.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
});
