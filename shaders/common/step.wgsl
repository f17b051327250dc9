// common/step.wgsl: the per-step uniform every kernel reads at binding 0, at a dynamic offset (one
// 256-byte slot per step, so many steps share one command buffer). The host prepends this file to
// every kernel (before dropout/random.wgsl or conv/shape.wgsl where those are prepended too).
//   batch_start  first position of this batch in the epoch's `order` buffer
//   rows         samples in this batch (the last batch of an epoch may be short)
//   t            1-based optimizer step
//   lr_t         the bias-corrected learning rate of this step
//   seed         this step's seed for stochastic layers (dropout)

struct Step { batch_start: u32, rows: u32, t: u32, lr_t: f32, seed: u32, _p0: u32, _p1: u32, _p2: u32 }

@group(0) @binding(0) var<uniform> step: Step;
