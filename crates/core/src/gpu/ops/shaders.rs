//! The `shaders/` files as strings, and which `override` constants a kernel gets.

/// A file of `shaders/`, as a string: its path there (`"dense/forward.wgsl"`), or that path in
/// pieces.
macro_rules! wgsl {
    ($($piece:literal),+) => {
        include_str!(concat!("../../../../../shaders/", $($piece),+))
    };
}
pub(crate) use wgsl;

/// A kernel that adds to a metrics tally: `common/tally.wgsl` (`add_to_tally`) then the file.
macro_rules! with_tally {
    ($file:literal) => {
        concat!(wgsl!("common/tally.wgsl"), wgsl!($file))
    };
}
pub(crate) use with_tally;

/// `override` constants `names`, natively; none on the web. lavapipe runs the kernels several
/// times faster with sizes known at compile time (5× for dense_backward_input_vec4): it inlines
/// uniforms only into pipelines whose uniforms have no dynamic offset, and the step uniform has
/// one. SwiftShader compiles every pipeline for up to a second at its first dispatch and runs
/// these no faster specialised.
pub(crate) const fn native_overrides(names: &'static [&'static str]) -> &'static [&'static str] {
    if cfg!(target_arch = "wasm32") {
        &[]
    } else {
        names
    }
}
