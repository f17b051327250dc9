//! `batch_norm_forward.wgsl` and `batch_norm_backward.wgsl`: Keras's BatchNormalization, batch
//! statistics in training (moving ones updated), moving statistics at evaluation.

use bytemuck::{Pod, Zeroable};

use super::shaders::wgsl;
use crate::gpu::context::GpuContext;
use crate::gpu::kernel::{Access, Compile, Grid, Kernel, KernelShape, KernelVariant, Source, Work};
use crate::model::{BatchNormLayout, BATCH_NORM_EPSILON, BATCH_NORM_MOMENTUM};

/// A thread per feature: each walks the batch's rows.
fn per_feature(width: u32) -> Grid {
    Grid::Fixed([width.div_ceil(64), 1, 1])
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct BatchNormForwardShape {
    pub width: u32,
    pub gamma_offset: u32,
    pub beta_offset: u32,
    pub moving_mean_offset: u32,
    pub moving_variance_offset: u32,
    pub training: u32,
    pub relu: u32,
    pub momentum: f32,
    pub epsilon: f32,
    pub _pad: [u32; 3],
}

impl BatchNormForwardShape {
    pub fn new(layer: &BatchNormLayout, relu: bool, training: bool) -> Self {
        BatchNormForwardShape {
            width: layer.width as u32,
            gamma_offset: layer.gamma_offset as u32,
            beta_offset: layer.beta_offset as u32,
            moving_mean_offset: layer.moving_mean_offset as u32,
            moving_variance_offset: layer.moving_variance_offset as u32,
            training: u32::from(training),
            relu: u32::from(relu),
            momentum: BATCH_NORM_MOMENTUM,
            epsilon: BATCH_NORM_EPSILON,
            _pad: [0; 3],
        }
    }
}

impl KernelShape for BatchNormForwardShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    fn grid(&self, _: KernelVariant) -> Grid {
        per_feature(self.width)
    }
    /// Training: the mean and the variance walk the column, then the output; evaluation: the
    /// output only.
    fn work(&self, _: KernelVariant, rows: u32) -> Work {
        let passes = if self.training != 0 { 3 } else { 1 };
        Work { max_iterations: passes * u64::from(rows), flops: 0 }
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BatchNormBackwardShape {
    pub width: u32,
    pub gamma_offset: u32,
    pub beta_offset: u32,
    pub relu_below: u32,
}

impl BatchNormBackwardShape {
    pub fn new(layer: &BatchNormLayout, relu_below: bool) -> Self {
        BatchNormBackwardShape {
            width: layer.width as u32,
            gamma_offset: layer.gamma_offset as u32,
            beta_offset: layer.beta_offset as u32,
            relu_below: u32::from(relu_below),
        }
    }
}

impl KernelShape for BatchNormBackwardShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    fn grid(&self, _: KernelVariant) -> Grid {
        per_feature(self.width)
    }
    /// Two walks down the column: the sums, then dx.
    fn work(&self, _: KernelVariant, rows: u32) -> Work {
        Work { max_iterations: 2 * u64::from(rows), flops: 0 }
    }
}

/// Bindings: x, params, y, batch statistics (mean, 1/std).
pub fn forward(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "batch_norm_forward", wgsl: wgsl!("batch_norm_forward.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, ReadWrite, ReadWrite, ReadWrite], Compile::Now, source, None)
}

/// Bindings: x, dy, params, batch statistics, below (for its ReLU mask), dx, grads.
pub fn backward(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "batch_norm_backward", wgsl: wgsl!("batch_norm_backward.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, Read, Read, Read, Read, ReadWrite, ReadWrite], Compile::Now, source, None)
}
