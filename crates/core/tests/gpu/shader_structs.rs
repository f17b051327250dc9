//! The WGSL structs every kernel binds (the `Step` uniform, each kernel's `Shape`) against the
//! Rust `#[repr(C)]` structs the host writes into them: naga reflects the modules the trainer
//! compiles (the ops' own sources, with what they prepend), and each struct's size and its
//! fields' names and offsets must match its Rust partner's. Padding (fields named `_…`) counts
//! only in the size. A struct on either side without a partner fails too.

use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};

use fashion_core::gpu::kernel::StepUniform;
use fashion_core::gpu::ops::adam::AdamShape;
use fashion_core::gpu::ops::batch_norm::{
    BatchNormBackwardEvalShape, BatchNormBackwardPartialsShape, BatchNormBackwardShape, BatchNormForwardShape,
    BatchNormStatisticsUniform,
};
use fashion_core::gpu::ops::conv::ConvShape;
use fashion_core::gpu::ops::dense::{DenseBackwardInputShape, DenseBackwardWeightsShape, DenseForwardShape};
use fashion_core::gpu::ops::dropout::{DropoutBackwardShape, DropoutForwardShape};
use fashion_core::gpu::ops::gather::GatherShape;
use fashion_core::gpu::ops::l2::{L2PenaltyTallyShape, L2RegularizerShape};
use fashion_core::gpu::ops::partials::SumPartialsShape;
use fashion_core::gpu::ops::pool::{MaxPoolBackwardShape, MaxPoolForwardShape};
use fashion_core::gpu::ops::saliency::SaliencySeedShape;
use fashion_core::gpu::ops::softmax::{MetricsTallyShape, SoftmaxCrossEntropyShape};
use fashion_core::gpu::ops::tanh::TanhShape;
use fashion_core::gpu::ops::zero_pad::{ZeroPadBackwardShape, ZeroPadForwardShape};
use fashion_core::gpu::ops::{KernelChoice, Kernels};

/// A struct's layout: its size and its fields' names and byte offsets, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    size: usize,
    fields: Vec<(String, usize)>,
}

impl Layout {
    /// The fields that carry a value (padding, named `_…`, left out).
    fn named(&self) -> Vec<(String, usize)> {
        self.fields.iter().filter(|(name, _)| !name.starts_with('_')).cloned().collect()
    }
}

/// A Rust struct's layout. Every field must be listed: the struct literal below stops compiling
/// ("missing field") when the struct gains one that is not.
macro_rules! rust_layout {
    ($ty:ident { $($field:ident),+ $(,)? }) => {{
        let _every_field_listed = $ty { $($field: Default::default()),+ };
        (
            stringify!($ty),
            Layout {
                size: size_of::<$ty>(),
                fields: vec![$((stringify!($field).to_string(), offset_of!($ty, $field))),+],
            },
        )
    }};
}

/// The Rust partner of `struct Step`, in every kernel.
fn step() -> (&'static str, Layout) {
    rust_layout!(StepUniform { batch_start, rows, t, lr_t, seed, _pad })
}

/// The Rust partner of each kernel's `struct Shape`, by the labels of the implementations that
/// bind it.
fn shapes() -> Vec<(&'static [&'static str], (&'static str, Layout))> {
    vec![
        (&["gather_batch"], rust_layout!(GatherShape { pixels, _pad })),
        (
            &["dense_forward", "dense_forward_vec4", "dense_forward_tiled"],
            rust_layout!(DenseForwardShape { inputs, units, kernel_offset, bias_offset, relu, _pad }),
        ),
        (
            &["dense_backward_input", "dense_backward_input_vec4", "dense_backward_input_tiled"],
            rust_layout!(DenseBackwardInputShape { inputs, units, kernel_offset, relu_below }),
        ),
        (
            &["dense_backward_weights", "dense_backward_weights_vec4", "dense_backward_weights_tiled"],
            rust_layout!(DenseBackwardWeightsShape { inputs, units, kernel_offset, bias_offset }),
        ),
        (
            &["softmax_cross_entropy", "softmax_cross_entropy_rows"],
            rust_layout!(SoftmaxCrossEntropyShape { classes, tally, write_gradient, first_row, row_count, _pad }),
        ),
        (&["metrics_tally"], rust_layout!(MetricsTallyShape { tally, _pad })),
        (
            &["sum_partials"],
            rust_layout!(SumPartialsShape { count, partials, split, first_offset, second_offset, _pad }),
        ),
        (&["adam", "adam_vec4"], rust_layout!(AdamShape { count, beta1, beta2, epsilon })),
        (&["dropout_forward"], rust_layout!(DropoutForwardShape { width, rate, index, training })),
        (&["dropout_backward"], rust_layout!(DropoutBackwardShape { width, rate, index, relu_below })),
        (
            &["batch_norm_forward", "batch_norm_normalize"],
            rust_layout!(BatchNormForwardShape {
                width,
                gamma_offset,
                beta_offset,
                moving_mean_offset,
                moving_variance_offset,
                training,
                relu,
                momentum,
                epsilon,
                positions,
                _pad,
            }),
        ),
        (
            &["batch_norm_backward", "batch_norm_backward_input"],
            rust_layout!(BatchNormBackwardShape { width, gamma_offset, beta_offset, relu_below, positions, _pad }),
        ),
        (
            &["batch_norm_statistics_partials", "batch_norm_statistics_combine"],
            rust_layout!(BatchNormStatisticsUniform {
                width,
                rows_per_chunk,
                chunks,
                moving_mean_offset,
                moving_variance_offset,
                momentum,
                epsilon,
                positions,
            }),
        ),
        (
            &["batch_norm_backward_partials"],
            rust_layout!(BatchNormBackwardPartialsShape { width, rows_per_chunk, chunks, positions }),
        ),
        (
            &["batch_norm_backward_eval"],
            rust_layout!(BatchNormBackwardEvalShape {
                width,
                gamma_offset,
                moving_variance_offset,
                relu_below,
                epsilon,
                positions,
                _pad,
            }),
        ),
        (
            &["l2_regularizer", "l2_regularizer_partials"],
            rust_layout!(L2RegularizerShape { ranges, l2, tally, weights }),
        ),
        (&["l2_penalty_tally"], rust_layout!(L2PenaltyTallyShape { partials, l2, tally, _pad })),
        (
            &[
                "conv2d_forward",
                "conv2d_forward_vec4",
                "conv2d_forward_tiled",
                "conv2d_backward_input",
                "conv2d_backward_input_vec4",
                "conv2d_backward_weights",
                "conv2d_backward_weights_vec4",
                "conv2d_backward_weights_partials",
            ],
            rust_layout!(ConvShape {
                height,
                width,
                channels,
                filters,
                kernel_size,
                out_height,
                out_width,
                kernel_offset,
                bias_offset,
                relu,
                relu_below,
                accumulate,
                first_row,
                row_count,
                positions_per_chunk,
                chunks,
            }),
        ),
        (
            &["max_pool_forward"],
            rust_layout!(MaxPoolForwardShape { height, width, channels, out_height, out_width, _pad }),
        ),
        (
            &["max_pool_backward"],
            rust_layout!(MaxPoolBackwardShape { height, width, channels, out_height, out_width, relu_below, _pad }),
        ),
        (&["zero_pad_forward"], rust_layout!(ZeroPadForwardShape { height, width, channels, padding })),
        (
            &["zero_pad_backward"],
            rust_layout!(ZeroPadBackwardShape { height, width, channels, padding, relu_below, _pad }),
        ),
        (&["saliency_seed"], rust_layout!(SaliencySeedShape { classes, _pad })),
        (&["tanh_forward", "tanh_backward"], rust_layout!(TanhShape { width, _pad })),
    ]
}

/// Every implementation the trainer can compile, by label: its WGSL module's source. The
/// emulator and GPU sets between them hold every variant (the scalar one is in both).
fn modules() -> BTreeMap<&'static str, String> {
    let ctx = crate::common::gpu();
    let mut modules = BTreeMap::new();
    for choice in [KernelChoice::emulator(), KernelChoice::gpu()] {
        for (_, kernel) in Kernels::new(&ctx, &choice).all() {
            for (label, source) in kernel.sources() {
                let previous = modules.insert(label, source.clone());
                assert!(previous.is_none_or(|previous| previous == source), "{label}: two sources");
            }
        }
    }
    modules
}

/// The structs a module binds as uniform or storage buffers (or as the elements of a storage
/// array), by name, with their layouts.
fn bound_structs(label: &str, source: &str) -> BTreeMap<String, Layout> {
    let module =
        naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(source)));
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).unwrap_or_else(|e| panic!("{label}: {e}"));
    let mut structs = BTreeMap::new();
    for (_, global) in module.global_variables.iter() {
        if !matches!(global.space, naga::AddressSpace::Uniform | naga::AddressSpace::Storage { .. }) {
            continue;
        }
        let mut ty = global.ty;
        if let naga::TypeInner::Array { base, .. } = module.types[ty].inner {
            ty = base;
        }
        if let naga::TypeInner::Struct { members, span } = &module.types[ty].inner {
            let name = module.types[ty].name.clone().unwrap_or_else(|| panic!("{label}: a struct without a name"));
            let fields = members
                .iter()
                .map(|member| (member.name.clone().unwrap_or_default(), member.offset as usize))
                .collect();
            assert_eq!(*span, layouter[ty].size, "{label}: {name}'s span");
            structs.insert(name, Layout { size: *span as usize, fields });
        }
    }
    structs
}

/// What differs between a WGSL struct and its Rust partner, if anything.
fn mismatch(wgsl: &Layout, rust: &Layout) -> Option<String> {
    let (wgsl_named, rust_named) = (wgsl.named(), rust.named());
    let mut problems = Vec::new();
    for (name, offset) in &wgsl_named {
        match rust_named.iter().find(|(rust_name, _)| rust_name == name) {
            None => problems.push(format!("field `{name}` (offset {offset}) is in the WGSL only")),
            Some((_, rust_offset)) if rust_offset != offset => {
                problems.push(format!("field `{name}` at offset {offset} in the WGSL, {rust_offset} in Rust"))
            }
            Some(_) => {}
        }
    }
    for (name, offset) in &rust_named {
        if !wgsl_named.iter().any(|(wgsl_name, _)| wgsl_name == name) {
            problems.push(format!("field `{name}` (offset {offset}) is in Rust only"));
        }
    }
    if problems.is_empty() && wgsl_named != rust_named {
        problems.push(format!("fields in another order: WGSL {wgsl_named:?}, Rust {rust_named:?}"));
    }
    if wgsl.size != rust.size {
        problems.push(format!("{} bytes in the WGSL, {} in Rust", wgsl.size, rust.size));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[test]
fn every_bound_wgsl_struct_matches_its_rust_struct() {
    let step = step();
    let shapes = shapes();
    let modules = modules();
    let mut failures = Vec::new();
    for (label, source) in &modules {
        for (name, wgsl) in bound_structs(label, source) {
            let partner = match name.as_str() {
                "Step" => Some(&step),
                "Shape" => shapes.iter().find(|(labels, _)| labels.contains(label)).map(|(_, partner)| partner),
                _ => None,
            };
            match partner {
                None => failures.push(format!("{label}: struct {name} has no Rust partner in this test's table")),
                Some((rust_name, rust)) => {
                    if let Some(problem) = mismatch(&wgsl, rust) {
                        failures.push(format!("{label}: struct {name} vs {rust_name}: {problem}"));
                    }
                }
            }
        }
    }
    for (labels, (rust_name, _)) in &shapes {
        for label in labels.iter().filter(|label| !modules.contains_key(*label)) {
            failures.push(format!("{rust_name}: the table names {label}, which no kernel compiles"));
        }
    }
    assert!(failures.is_empty(), "WGSL and Rust structs disagree:\n  {}", failures.join("\n  "));
}

/// The `#[repr(C)]` structs declared in a Rust source file.
fn repr_c_structs(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut after_repr_c = false;
    for line in source.lines().map(str::trim) {
        if line == "#[repr(C)]" {
            after_repr_c = true;
        } else if after_repr_c && line.starts_with("pub struct ") {
            let name = line["pub struct ".len()..].split(|c: char| !c.is_alphanumeric() && c != '_').next();
            names.extend(name.map(str::to_string));
            after_repr_c = false;
        }
    }
    names
}

#[test]
fn every_repr_c_struct_of_the_kernels_is_in_the_table() {
    let gpu = concat!(env!("CARGO_MANIFEST_DIR"), "/src/gpu");
    let mut files = vec![format!("{gpu}/kernel.rs")];
    for entry in std::fs::read_dir(format!("{gpu}/ops")).expect("src/gpu/ops") {
        files.push(entry.expect("src/gpu/ops entry").path().display().to_string());
    }
    let mut tabled: Vec<&str> = shapes().iter().map(|(_, (name, _))| *name).collect();
    tabled.push(step().0);
    let mut missing = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        for name in repr_c_structs(&source) {
            if !tabled.contains(&name.as_str()) {
                missing.push(format!("{name} ({file})"));
            }
        }
    }
    assert!(missing.is_empty(), "#[repr(C)] structs without a WGSL partner in this test's table: {missing:?}");
}
