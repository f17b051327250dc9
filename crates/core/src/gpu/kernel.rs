//! The machinery every WGSL kernel goes through: compiling a kernel (with its vec4 implementation
//! where it has one), binding it to a shape and buffers, and recording a dispatch. Every kernel
//! binds the per-step uniform (`Step`, `shaders/common/step.wgsl`, at a dynamic offset so many
//! steps share one command buffer) at binding 0, its `Shape` at binding 1, and storage buffers
//! from binding 2 on. The kernels themselves, one family per module, are in [`super::ops`].

use std::sync::{Mutex, OnceLock};

use bytemuck::{Pod, Zeroable};

use super::context::{GpuContext, TrackedBuffer};

/// Bytes between consecutive step slots: WebGPU's minimum uniform-offset alignment.
pub const STEP_STRIDE: u64 = 256;

/// The WGSL every kernel is compiled after: `struct Step` and its binding.
const STEP_WGSL: &str = include_str!("../../../../shaders/common/step.wgsl");

/// Per-step values, one slot per step of a chunk. Mirrors `struct Step` in
/// `shaders/common/step.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub struct StepUniform {
    /// First position of this batch in the `order` buffer.
    pub batch_start: u32,
    /// Samples in this batch (the last batch of an epoch may be short).
    pub rows: u32,
    /// 1-based optimizer step.
    pub t: u32,
    /// Bias-corrected learning rate for this step.
    pub lr_t: f32,
    /// Per-step seed for stochastic layers.
    pub seed: u32,
    pub _pad: [u32; 3],
}

impl StepUniform {
    /// A step that only says how many rows the batch has (evaluation, single-kernel runs).
    pub fn rows(rows: usize) -> Self {
        StepUniform { rows: rows as u32, ..Default::default() }
    }
}

/// A step buffer of `slots` slots.
pub fn step_buffer(ctx: &GpuContext, slots: usize) -> TrackedBuffer {
    ctx.create_buffer(&wgpu::BufferDescriptor {
        label: Some("steps"),
        size: slots.max(1) as u64 * STEP_STRIDE,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Writes step values into consecutive slots from slot 0.
pub fn write_steps(ctx: &GpuContext, buffer: &wgpu::Buffer, steps: &[StepUniform]) {
    let mut bytes = vec![0u8; steps.len() * STEP_STRIDE as usize];
    for (i, step) in steps.iter().enumerate() {
        let at = i * STEP_STRIDE as usize;
        bytes[at..at + std::mem::size_of::<StepUniform>()].copy_from_slice(bytemuck::bytes_of(step));
    }
    ctx.queue.write_buffer(buffer, 0, &bytes);
}

/// Loop iterations one invocation may run in all. llvmpipe (lavapipe, Mesa 22.3) silently ends
/// any loop of an invocation after 65,535 iterations in all (its guard against infinite loops),
/// so a kernel that sums a whole batch of conv outputs in one thread would drop the batch's
/// last rows there; every loop of ours stays well under.
pub const LOOP_ITERATIONS_BUDGET: usize = 30_000;

/// Batches of up to `max_rows` rows as `(first_row, row_count)` chunks, in order, each as many
/// rows as one invocation may loop over within [`LOOP_ITERATIONS_BUDGET`] when a row costs
/// `iterations_per_row` (at least one chunk, at least one row each; a chunk past a short batch
/// is empty when dispatched).
pub(crate) fn row_chunks(iterations_per_row: usize, max_rows: usize) -> impl Iterator<Item = (u32, u32)> {
    let chunk = (LOOP_ITERATIONS_BUDGET / iterations_per_row).max(1);
    (0..max_rows.div_ceil(chunk).max(1)).map(move |i| ((i * chunk) as u32, chunk as u32))
}

/// How a kernel's workgroup grid follows the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grid {
    /// `(x, rows, 1)`.
    PerRow { x: u32 },
    /// `(ceil(rows / per_workgroup), 1, 1)`: an invocation per batch row.
    Rows { per_workgroup: u32 },
    /// `(x, rows, z)`.
    PerRowLayers { x: u32, z: u32 },
    /// `(ceil(cols / tile), ceil(rows / tile), 1)`: a matrix product whose workgroups each cover
    /// `tile × tile` outputs, over the batch's rows unless `rows` is fixed.
    Tiles { cols: u32, rows: Option<u32>, tile: u32 },
    /// One thread per `per_thread` of `count` elements, 256 threads per workgroup, the groups
    /// folded into a second dimension past 65,535.
    Elements { count: u32, per_thread: u32 },
    /// `(ceil(rows · pixels_per_row / (64 · pixels_per_thread)), y, 1)`: the conv kernels whose
    /// 64-thread workgroups each cover `64 · pixels_per_thread` pixels of the batch.
    PixelBlocks { pixels_per_row: u32, pixels_per_thread: u32, y: u32 },
    /// Independent of the batch.
    Fixed([u32; 3]),
}

impl Grid {
    pub fn workgroups(self, rows: u32) -> [u32; 3] {
        match self {
            Grid::PerRow { x } => [x, rows, 1],
            Grid::Rows { per_workgroup } => [rows.div_ceil(per_workgroup).max(1), 1, 1],
            Grid::PerRowLayers { x, z } => [x, rows, z],
            Grid::Tiles { cols, rows: fixed, tile } => [cols.div_ceil(tile), fixed.unwrap_or(rows).div_ceil(tile), 1],
            Grid::Elements { count, per_thread } => {
                let groups = count.div_ceil(per_thread).div_ceil(256);
                let y = groups.div_ceil(65_535).max(1);
                [groups.div_ceil(y), y, 1]
            }
            Grid::PixelBlocks { pixels_per_row, pixels_per_thread, y } => {
                [(rows * pixels_per_row).div_ceil(64 * pixels_per_thread), y, 1]
            }
            Grid::Fixed(size) => size,
        }
    }
}

/// The implementations of a kernel that has more than one (the dense and conv kernels, Adam, the
/// softmax, BatchNorm, the L2 term). Every variant does the same maths with the same bindings and
/// `Shape`; which one is fastest depends on the adapter ([`super::autotune`] measures it). Scalar
/// and Vec4 make the emulator set (few invocations, long loops: what CPU implementations of a GPU
/// run fastest), Gpu the GPU set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelVariant {
    /// The kernel's own file (`dense/forward.wgsl`, …): scalar loads, any shape; the dense
    /// kernels compute 4×4 outputs per thread.
    Scalar,
    /// `*_vec4.wgsl`: vec4 loads and stores; the dense kernels compute 16×16 outputs per thread,
    /// so each loaded value feeds 8 multiply-adds (2 in the scalar kernels). Only for shapes whose
    /// [`KernelShape::vec4_fits`] holds and buffers of whole vec4s: elsewhere the scalar kernel runs.
    Vec4,
    /// The GPU set's implementation, many invocations each doing a little: workgroup-memory tiles
    /// for the matrix products (`*_tiled.wgsl`), an invocation per row for the softmax, and the
    /// reductions over the batch (BatchNorm's sums, the conv weight gradient, the L2 term) split
    /// across invocations — partials, then a sum in a fixed order: no float atomics, so a run
    /// stays reproducible. Any shape. Its name in text (tunings, saved runs, reports) is `tiled`,
    /// as files written before carry it.
    Gpu,
}

impl KernelVariant {
    pub const ALL: [KernelVariant; 3] = [KernelVariant::Scalar, KernelVariant::Vec4, KernelVariant::Gpu];

    pub fn as_str(self) -> &'static str {
        match self {
            KernelVariant::Scalar => "scalar",
            KernelVariant::Vec4 => "vec4",
            KernelVariant::Gpu => "tiled",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        KernelVariant::ALL.into_iter().find(|v| v.as_str() == name)
    }
}

/// What one invocation of a dispatch does, for the dispatch plan (`fashion-gpu bench --plan`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// The most loop trips one invocation makes: loops in sequence add, nested loops multiply,
    /// and a trip that computes a whole register block (4×4 outputs for one k) counts once.
    pub max_iterations: u64,
    /// Floating-point operations of the whole dispatch: 2·m·n·k for a matrix product, 0 for
    /// kernels that are not one.
    pub flops: u64,
}

/// A kernel's `Shape` uniform: its bytes, and what the host derives from it. Each op module
/// builds its shapes from the model's layer, with named fields.
pub trait KernelShape: BoxedShape + Send + Sync {
    /// The uniform's bytes, as the WGSL `Shape` declares it.
    fn bytes(&self) -> &[u8];
    /// The workgroup grid of `variant`'s implementation.
    fn grid(&self, variant: KernelVariant) -> Grid;
    /// Values of the WGSL `override` constants, in the order the kernel's implementations name
    /// them (an implementation uses as many as it names, possibly none).
    fn override_values(&self) -> Vec<u32> {
        Vec::new()
    }
    /// Whether the vec4 implementation can take this shape (the sizes and offsets it reads
    /// four at a time are multiples of 4).
    fn vec4_fits(&self) -> bool {
        false
    }
    /// What one invocation of `variant`'s implementation does for a batch of `rows`, as its WGSL
    /// loops are written.
    fn work(&self, variant: KernelVariant, rows: u32) -> Work;
}

/// A copy of a shape a [`BoundKernel`] keeps, to describe its dispatch later.
pub trait BoxedShape {
    fn boxed(&self) -> Box<dyn KernelShape>;
}

impl<T: KernelShape + Clone + 'static> BoxedShape for T {
    fn boxed(&self) -> Box<dyn KernelShape> {
        Box::new(self.clone())
    }
}

/// Whether every value is a multiple of 4 (what the vec4 kernels need of sizes and offsets).
pub fn all_multiples_of_4(values: &[u32]) -> bool {
    values.iter().all(|v| v % 4 == 0)
}

/// How a storage binding is accessed, as declared in the WGSL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// The implementation `variant` names among a kernel's vec4 and GPU-set ones, for [`Kernel::new`]:
/// none for Scalar, or where the kernel has no implementation of that variant (the scalar one
/// serves then).
pub fn preferred(variant: KernelVariant, vec4: Option<Source>, gpu: Option<Source>) -> Option<(KernelVariant, Source)> {
    let source = match variant {
        KernelVariant::Scalar => None,
        KernelVariant::Vec4 => vec4,
        KernelVariant::Gpu => gpu,
    };
    source.map(|source| (variant, source))
}

/// When a kernel's pipeline is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compile {
    /// With the kernel (it has one pipeline whatever it is bound with).
    Now,
    /// When first bound: kernels a model may never bind (the CNN's, on an MLP; on the web each
    /// pipeline costs up to a second of start-up), and those with `override` constants (one
    /// pipeline per distinct shape).
    OnFirstBind,
}

/// One WGSL implementation of a kernel: its label, its source (after `common/step.wgsl` and any
/// other preamble) and the `override` constants it declares.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub label: &'static str,
    pub wgsl: &'static str,
    pub overrides: &'static [&'static str],
}

/// An implementation's shader module and layouts, made when it is first needed.
struct Compiled {
    module: wgpu::ShaderModule,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
}

/// One implementation: its source, and once needed its module, layouts and pipelines. Nothing
/// is handed to the device before a pipeline is wanted ([`Compile::Now`], or the first bind): a
/// browser parses and validates every shader module it is given, which costs start-up time for
/// kernels a model never binds.
struct Implementation {
    storage: Vec<Access>,
    wgsl: &'static str,
    compiled: OnceLock<Compiled>,
    label: &'static str,
    variant: KernelVariant,
    /// Its `@workgroup_size`, read from the source.
    workgroup_size: [u32; 3],
    overrides: &'static [&'static str],
    /// Compiled pipelines by the values of `overrides` (one, keyed by nothing, without them).
    pipelines: Mutex<Vec<(Vec<u32>, wgpu::ComputePipeline)>>,
}

/// A compiled kernel: its scalar implementation, and the preferred one (vec4 or GPU set) when it
/// was compiled with one, which [`Kernel::bind`] uses wherever it can take the shape.
pub struct Kernel {
    scalar: Implementation,
    preferred: Option<Implementation>,
}

impl Kernel {
    /// Compiles `scalar` and, when `preferred` names another variant, that implementation too
    /// (kernels without one pass `None`, or a Scalar variant), with the storage bindings
    /// `storage`.
    pub fn new(
        ctx: &GpuContext,
        storage: &[Access],
        compile: Compile,
        scalar: Source,
        preferred: Option<(KernelVariant, Source)>,
    ) -> Self {
        let scalar = Implementation::new(storage, KernelVariant::Scalar, scalar);
        if compile == Compile::Now {
            scalar.pipeline(ctx, &[]);
        }
        let preferred = preferred
            .filter(|(variant, _)| *variant != KernelVariant::Scalar)
            .map(|(variant, source)| Implementation::new(storage, variant, source));
        Kernel { scalar, preferred }
    }

    /// Each implementation's label and the WGSL a device compiles for it (`common/step.wgsl`,
    /// then the kernel's own source with anything its op prepended): what the struct-layout test
    /// reflects.
    pub fn sources(&self) -> Vec<(&'static str, String)> {
        std::iter::once(&self.scalar)
            .chain(&self.preferred)
            .map(|implementation| (implementation.label, implementation.module_source()))
            .collect()
    }

    /// The variant this kernel binds where the shape allows.
    pub fn variant(&self) -> KernelVariant {
        self.preferred.as_ref().map_or(KernelVariant::Scalar, |implementation| implementation.variant)
    }

    /// Binds the step buffer, a fresh uniform holding `shape`, and the storage buffers in order,
    /// to the preferred implementation where it fits (the GPU set's take any shape; the vec4 ones
    /// need the shape's vec4 rule and buffers of whole vec4s, else the last one would be cut),
    /// else to the scalar one.
    pub fn bind(
        &self,
        ctx: &GpuContext,
        steps: &TrackedBuffer,
        shape: &dyn KernelShape,
        storage: &[&TrackedBuffer],
    ) -> BoundKernel {
        let whole_vec4s = storage.iter().all(|buffer| buffer.size() % 16 == 0);
        let implementation = match &self.preferred {
            Some(gpu) if gpu.variant == KernelVariant::Gpu => gpu,
            Some(vec4) if vec4.variant == KernelVariant::Vec4 && shape.vec4_fits() && whole_vec4s => vec4,
            _ => &self.scalar,
        };
        implementation.bind(ctx, steps, shape, storage)
    }
}

/// The `@workgroup_size(x[, y[, z]])` of a WGSL source (integer literals).
fn workgroup_size(wgsl: &str, label: &str) -> [u32; 3] {
    let attribute = "@workgroup_size(";
    let start = wgsl.find(attribute).map(|at| at + attribute.len());
    let sizes = start.and_then(|start| {
        let list = &wgsl[start..start + wgsl[start..].find(')')?];
        let parsed: Option<Vec<u32>> =
            list.split(',').map(|size| size.trim().trim_end_matches('u').parse().ok()).collect();
        parsed.filter(|sizes| (1..=3).contains(&sizes.len()))
    });
    let sizes = sizes.unwrap_or_else(|| panic!("{label}: no @workgroup_size of integer literals"));
    let mut size = [1; 3];
    size[..sizes.len()].copy_from_slice(&sizes);
    size
}

impl Implementation {
    fn new(storage: &[Access], variant: KernelVariant, source: Source) -> Self {
        Implementation {
            storage: storage.to_vec(),
            wgsl: source.wgsl,
            compiled: OnceLock::new(),
            label: source.label,
            variant,
            workgroup_size: workgroup_size(source.wgsl, source.label),
            overrides: source.overrides,
            pipelines: Mutex::default(),
        }
    }

    /// The WGSL of its shader module: `common/step.wgsl`, then its source.
    fn module_source(&self) -> String {
        format!("{STEP_WGSL}\n{}", self.wgsl)
    }

    /// The shader module and layouts, made on first use.
    fn compiled(&self, ctx: &GpuContext) -> &Compiled {
        self.compiled.get_or_init(|| {
            let uniform = |binding, dynamic| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: dynamic,
                    min_binding_size: None,
                },
                count: None,
            };
            let mut entries = vec![uniform(0, true), uniform(1, false)];
            entries.extend(self.storage.iter().enumerate().map(|(i, access)| wgpu::BindGroupLayoutEntry {
                binding: 2 + i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only: *access == Access::Read },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            }));
            let label = Some(self.label);
            let device = &ctx.device;
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label, entries: &entries });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label,
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label,
                source: wgpu::ShaderSource::Wgsl(self.module_source().into()),
            });
            Compiled { module, layout, pipeline_layout }
        })
    }

    /// The pipeline for the override values `values` (compiled on first use).
    fn pipeline(&self, ctx: &GpuContext, values: &[u32]) -> wgpu::ComputePipeline {
        let key: Vec<u32> = values.iter().copied().take(self.overrides.len()).collect();
        let mut pipelines = self.pipelines.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, pipeline)) = pipelines.iter().find(|(k, _)| *k == key) {
            return pipeline.clone();
        }
        let compiled = self.compiled(ctx);
        let constants: Vec<(&str, f64)> =
            self.overrides.iter().zip(&key).map(|(&name, &value)| (name, f64::from(value))).collect();
        let pipeline = ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(self.label),
            layout: Some(&compiled.pipeline_layout),
            module: &compiled.module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
            cache: None,
        });
        pipelines.push((key, pipeline.clone()));
        pipeline
    }

    fn bind(
        &self,
        ctx: &GpuContext,
        steps: &TrackedBuffer,
        shape: &dyn KernelShape,
        storage: &[&TrackedBuffer],
    ) -> BoundKernel {
        let grid = shape.grid(self.variant);
        let shape_buffer = ctx.uniform_with(self.label, shape.bytes());
        let step_binding = wgpu::BufferBinding {
            buffer: steps,
            offset: 0,
            size: wgpu::BufferSize::new(std::mem::size_of::<StepUniform>() as u64),
        };
        let mut entries = vec![
            wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::Buffer(step_binding) },
            wgpu::BindGroupEntry { binding: 1, resource: shape_buffer.as_entire_binding() },
        ];
        entries.extend(
            storage.iter().enumerate().map(|(i, buffer)| wgpu::BindGroupEntry {
                binding: 2 + i as u32,
                resource: buffer.as_entire_binding(),
            }),
        );
        let group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.label),
            layout: &self.compiled(ctx).layout,
            entries: &entries,
        });
        let mut buffers = vec![steps.clone(), shape_buffer];
        buffers.extend(storage.iter().map(|&buffer| buffer.clone()));
        let pipeline = self.pipeline(ctx, &shape.override_values());
        BoundKernel {
            pipeline,
            group,
            grid,
            label: self.label,
            variant: self.variant,
            workgroup_size: self.workgroup_size,
            shape: shape.boxed(),
            _buffers: buffers,
        }
    }
}

/// Where an op's bind functions (`gpu/ops/<family>.rs`) bind: the device and the step buffer
/// every kernel reads. The trainer's dispatches, the tuner and the kernel tests each make one.
#[derive(Clone, Copy)]
pub struct Binder<'a> {
    pub ctx: &'a GpuContext,
    pub steps: &'a TrackedBuffer,
}

impl Binder<'_> {
    /// `kernel` bound to `shape` and the storage buffers in binding order ([`Kernel::bind`]).
    pub fn bind(&self, kernel: &Kernel, shape: &dyn KernelShape, storage: &[&TrackedBuffer]) -> BoundKernel {
        kernel.bind(self.ctx, self.steps, shape, storage)
    }

    /// A scratch buffer of `floats` values between two kernels of a chain (partial results).
    pub fn scratch(&self, label: &str, floats: usize) -> TrackedBuffer {
        self.ctx.storage(label, (floats * 4) as u64)
    }
}

/// A kernel with its buffers bound, ready to be dispatched for any step slot.
pub struct BoundKernel {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    grid: Grid,
    label: &'static str,
    variant: KernelVariant,
    workgroup_size: [u32; 3],
    /// The shape it was bound with, to describe its dispatches ([`BoundKernel::plan`]).
    shape: Box<dyn KernelShape>,
    /// Every buffer the bind group uses, kept alive (and counted) as long as it is.
    _buffers: Vec<TrackedBuffer>,
}

impl BoundKernel {
    /// Records one dispatch reading step slot `slot` of the step buffer, for a batch of `rows`.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, slot: u32, rows: u32) {
        let [x, y, z] = self.grid.workgroups(rows);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.group, &[slot * STEP_STRIDE as u32]);
        pass.dispatch_workgroups(x, y, z);
    }

    /// The implementation bound, e.g. `dense_forward_vec4`.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// Its grid (the workgroups for a batch of `rows`: [`Grid::workgroups`]).
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// The implementation's variant.
    pub fn variant(&self) -> KernelVariant {
        self.variant
    }

    /// Its dispatch for a batch of `rows`, as [`BoundKernel::encode`] records it.
    pub fn plan(&self, rows: u32) -> PlannedDispatch {
        let workgroups = self.grid.workgroups(rows);
        let count = |sizes: [u32; 3]| sizes.iter().map(|&n| u64::from(n)).product::<u64>();
        let work = self.shape.work(self.variant, rows);
        PlannedDispatch {
            kernel: self.label,
            workgroups,
            invocations: count(workgroups) * count(self.workgroup_size),
            max_iterations: work.max_iterations,
            flops: work.flops,
        }
    }
}

/// One dispatch of a plan: which WGSL file, its grid, and what its invocations do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDispatch {
    /// The implementation's label: its WGSL file without `.wgsl`.
    pub kernel: &'static str,
    pub workgroups: [u32; 3],
    /// Invocations launched: workgroups × workgroup size.
    pub invocations: u64,
    pub max_iterations: u64,
    pub flops: u64,
}
