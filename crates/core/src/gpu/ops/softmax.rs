//! `softmax_cross_entropy.wgsl`: softmax, the cross-entropy loss and its gradient, with the loss
//! and hits added to a metrics tally.

use bytemuck::{Pod, Zeroable};

use super::shaders::wgsl;
use crate::gpu::context::GpuContext;
use crate::gpu::kernel::{row_chunks, Access, Compile, Grid, Kernel, KernelShape, KernelVariant, Source};

/// u32 words of one metrics tally: loss sum, its Kahan compensation, hits, samples.
pub const TALLY_WORDS: usize = 4;

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct SoftmaxCrossEntropyShape {
    pub classes: u32,
    /// Which metrics tally the loss and hits go to.
    pub tally: u32,
    pub write_gradient: u32,
    /// The batch rows this dispatch handles (see [`SoftmaxCrossEntropyShape::chunks`]).
    pub first_row: u32,
    pub row_count: u32,
    pub _pad: [u32; 3],
}

impl SoftmaxCrossEntropyShape {
    /// The shapes of the dispatches for batches of up to `max_rows` rows, one per chunk of rows
    /// that one invocation can loop over within the loop budget (1,000 rows of 10 classes: one
    /// dispatch for any usual batch).
    pub fn chunks(classes: usize, tally: u32, write_gradient: bool, max_rows: usize) -> Vec<Self> {
        row_chunks(3 * classes, max_rows)
            .map(|(first_row, row_count)| SoftmaxCrossEntropyShape {
                classes: classes as u32,
                tally,
                write_gradient: u32::from(write_gradient),
                first_row,
                row_count,
                _pad: [0; 3],
            })
            .collect()
    }
}

impl KernelShape for SoftmaxCrossEntropyShape {
    fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
    /// One invocation: it sums its rows' losses in order (a reproducible sum).
    fn grid(&self, _: KernelVariant) -> Grid {
        Grid::Fixed([1, 1, 1])
    }
}

/// Bindings: logits, labels, probs, dlogits, metrics.
pub fn kernel(ctx: &GpuContext) -> Kernel {
    use Access::{Read, ReadWrite};
    let source = Source { label: "softmax_cross_entropy", wgsl: wgsl!("softmax_cross_entropy.wgsl"), overrides: &[] };
    Kernel::new(ctx, &[Read, Read, ReadWrite, ReadWrite, ReadWrite], Compile::Now, source, None)
}
