//! The L2 term (`l2/*.wgsl`): one workgroup, or the GPU set's partial penalties and their
//! tally, against the twin.

use crate::common::{assert_close, gpu, values};
use crate::single_kernel;
use fashion_core::gpu::kernel::KernelVariant;
use fashion_core::reference::{self};
use fashion_core::ModelSpec;

#[test]
fn l2_regularizer_matches_reference() {
    let ctx = gpu();
    // The GPU set's kernel: 1,024 weights a workgroup over several ranges (no preset's count is
    // a multiple of it), the cnn's Dense kernels after its conv layers.
    let cases = ["l2", "baseline", "cnn"];
    for (variant, name) in [KernelVariant::Scalar, KernelVariant::Gpu].into_iter().flat_map(|v| cases.map(|c| (v, c))) {
        let spec = ModelSpec::preset(name).unwrap();
        let layout = spec.param_layout();
        let params = values(layout.total, 700);
        let grads = values(layout.trainable, 701);
        let (gpu_grads, gpu_penalty) =
            pollster::block_on(single_kernel::l2_regularizer_with(&ctx, variant, &params, &grads, &layout, 0.002, 37))
                .unwrap();
        let name = format!("{name} {}", variant.as_str());
        let mut cpu_grads = grads.clone();
        let cpu_penalty = reference::l2_regularizer(&params, &mut cpu_grads, &layout, 0.002);
        assert_close(&format!("{name} L2 gradient"), &gpu_grads, &cpu_grads, 1e-6);
        assert!(
            (gpu_penalty - cpu_penalty).abs() < 1e-4 * cpu_penalty,
            "{name} penalty {gpu_penalty} vs {cpu_penalty}"
        );
        let bias = layout.dense[0].bias_offset;
        assert_eq!(gpu_grads[bias], grads[bias], "biases are not regularised");
    }
}
