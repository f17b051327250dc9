//! The GPU connection: adapter and device, error capture, and the asynchronous readback that
//! works both natively (polling the device) and on the web (the browser drives callbacks).

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_channel::oneshot;

use crate::train::{Backend, BackendError, BackendFailure, TrainError};

/// Something went wrong talking to the GPU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found ({0}); natively install a Vulkan driver (on Debian without a GPU: \
         `apt-get install mesa-vulkan-drivers` for lavapipe); in a browser use one with WebGPU \
         enabled (Chrome/Edge 113+, or Firefox/Safari with WebGPU turned on)"
    )]
    NoAdapter(String),
    #[error("the GPU adapter refused to create a device: {0}")]
    Device(String),
    #[error("the GPU reported an error: {0}")]
    Validation(String),
    #[error("reading results back from the GPU failed: {0}")]
    Readback(String),
    #[error(
        "the GPU device was lost ({0}), e.g. by a driver reset or the browser reclaiming it; the \
         model on it is gone: press Train again (the page asks for a fresh device) or rerun"
    )]
    DeviceLost(String),
    #[error("{what} needs {bytes} bytes but this GPU allows at most {limit} bytes ({limit_name})")]
    TooLarge { what: String, bytes: u64, limit: u64, limit_name: &'static str },
}

impl GpuError {
    /// What kind of backend failure this is, for code that reacts to it (the page asks for a
    /// fresh device after [`BackendFailure::DeviceLost`]).
    pub fn failure(&self) -> BackendFailure {
        match self {
            GpuError::NoAdapter(_) | GpuError::Device(_) => BackendFailure::Unavailable,
            GpuError::DeviceLost(_) => BackendFailure::DeviceLost,
            GpuError::TooLarge { .. } => BackendFailure::TooLarge,
            GpuError::Validation(_) | GpuError::Readback(_) => BackendFailure::Failed,
        }
    }
}

impl From<GpuError> for TrainError {
    fn from(error: GpuError) -> Self {
        TrainError::Backend(BackendError {
            backend: Backend::Gpu,
            failure: error.failure(),
            message: error.to_string(),
        })
    }
}

/// A copy to the host submitted with its work and asked for, not yet read
/// ([`GpuContext::submit_with_readback`]).
pub struct PendingReadback {
    staging: TrackedBuffer,
    submission: wgpu::SubmissionIndex,
    receiver: oneshot::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

/// What adapter we run on, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

impl AdapterSummary {
    /// Whether the adapter is a CPU implementation of a GPU (lavapipe, SwiftShader, WARP): wgpu's
    /// `DeviceType::Cpu`, or one of those by name where the platform reports no type (the web).
    pub fn is_cpu(&self) -> bool {
        let named = |needle: &str| [&self.name, &self.driver].iter().any(|s| s.to_lowercase().contains(needle));
        self.device_type == "Cpu" || ["llvmpipe", "lavapipe", "swiftshader"].into_iter().any(named)
    }
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() {
            write!(f, ", {}", self.driver)?;
        }
        write!(f, ")")
    }
}

/// Buffers alive on the device that were made through [`GpuContext`]'s helpers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Allocations {
    pub buffers: u64,
    pub bytes: u64,
}

#[derive(Default)]
struct AllocationCounter {
    buffers: AtomicU64,
    bytes: AtomicU64,
}

/// A device buffer that is counted in [`GpuContext::allocations`] while any clone of it lives.
///
/// wgpu gives no hook when a buffer's memory goes, so this handle is the owner: clones share it
/// (a [`BoundKernel`](super::kernel::BoundKernel) keeps one of every buffer it binds, as its
/// bind group does inside wgpu), and when the last clone drops the buffer is destroyed on the
/// device and uncounted at the same moment. Destroying rather than only dropping also frees the
/// memory at once in a browser, instead of whenever JavaScript's collector runs. Never keep a
/// bare `wgpu::Buffer` clone of one past its last `TrackedBuffer`.
#[derive(Clone)]
pub struct TrackedBuffer(Arc<TrackedInner>);

struct TrackedInner {
    buffer: wgpu::Buffer,
    counter: Arc<AllocationCounter>,
}

impl Deref for TrackedBuffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.0.buffer
    }
}

impl Drop for TrackedInner {
    fn drop(&mut self) {
        self.buffer.destroy();
        self.counter.buffers.fetch_sub(1, Ordering::Relaxed);
        self.counter.bytes.fetch_sub(self.buffer.size(), Ordering::Relaxed);
    }
}

/// A device and its queue, with uncaptured GPU errors collected instead of panicking.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    errors: Arc<Mutex<Vec<String>>>,
    /// Why the device was lost, once it is.
    lost: Arc<Mutex<Option<String>>>,
    allocations: Arc<AllocationCounter>,
}

impl GpuContext {
    /// The high-performance adapter of the platform, with its own limits.
    pub async fn new() -> Result<Self, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("fashion-gpu"),
                required_limits: adapter.limits(),
                // Timestamp queries when there are any: the benchmark's forward/backward/optimizer split.
                required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            if let Ok(mut errors) = sink.lock() {
                errors.push(error.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut lost) = lost_sink.lock() {
                *lost = Some(if message.is_empty() { format!("{reason:?}") } else { format!("{reason:?}: {message}") });
            }
        });
        let adapter = AdapterSummary {
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: [info.driver, info.driver_info]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
        };
        Ok(GpuContext { device, queue, adapter, errors, lost, allocations: Arc::default() })
    }

    /// Why the device was lost, if it was: nothing on it can be used any more.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|lost| lost.clone())
    }

    /// Gives the device up, as a driver reset would: everything after fails with
    /// [`GpuError::DeviceLost`] instead of hanging. For tests of that path.
    pub fn destroy_device(&self) {
        self.device.destroy();
        let _ = self.device.poll(wgpu::PollType::Poll);
    }

    /// The first GPU error reported since the last call, as a typed error; a lost device first.
    pub fn check_errors(&self) -> Result<(), GpuError> {
        if let Some(reason) = self.lost() {
            return Err(GpuError::DeviceLost(reason));
        }
        let mut errors = self.errors.lock().map_err(|_| GpuError::Validation("error log poisoned".into()))?;
        let first = errors.drain(..).next();
        first.map_or(Ok(()), |message| Err(GpuError::Validation(message)))
    }

    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    /// Fails with a message naming the limit when one storage binding would exceed it.
    pub fn check_binding_size(&self, what: &str, bytes: u64) -> Result<(), GpuError> {
        let limits = self.limits();
        let checks = [
            (limits.max_storage_buffer_binding_size, "maxStorageBufferBindingSize"),
            (limits.max_buffer_size, "maxBufferSize"),
        ];
        for (limit, limit_name) in checks {
            if bytes > limit {
                return Err(GpuError::TooLarge { what: what.to_string(), bytes, limit, limit_name });
            }
        }
        Ok(())
    }

    /// Waits until everything submitted so far has finished on the GPU.
    pub async fn wait_for_submitted_work(&self) -> Result<(), GpuError> {
        let (sender, receiver) = oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = sender.send(());
        });
        self.drive_until_callbacks();
        self.check_errors()?;
        receiver.await.map_err(|_| GpuError::DeviceLost(self.lost().unwrap_or_else(|| "while waiting".into())))?;
        self.check_errors()
    }

    /// Natively, callbacks only fire while the device is polled; on the web the browser does it.
    fn drive_until_callbacks(&self) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        }
    }

    /// Copies `size` bytes of `source` to the host. One staging buffer per call: readbacks are
    /// rare (once per epoch), so simplicity wins over reuse.
    pub async fn read_bytes(&self, source: &wgpu::Buffer, size: u64) -> Result<Vec<u8>, GpuError> {
        let encoder = self.device.create_command_encoder(&Default::default());
        self.read_bytes_after(encoder, source, size).await
    }

    /// Submits `encoder`'s work with a copy of `size` bytes of `source` at its end, in one
    /// submit, and reads the copy back once the work is done: one wait for both.
    pub async fn read_bytes_after(
        &self,
        encoder: wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        size: u64,
    ) -> Result<Vec<u8>, GpuError> {
        let pending = self.submit_with_readback(encoder, source, size);
        self.finish_readback(pending).await
    }

    /// Submits `encoder`'s work with a copy of `size` bytes of `source` at its end, and asks for
    /// the copy; [`GpuContext::finish_readback`] waits for it, while more work may be submitted.
    pub fn submit_with_readback(
        &self,
        mut encoder: wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        size: u64,
    ) -> PendingReadback {
        let staging = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback staging"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(source, 0, &staging, 0, size);
        let submission = self.queue.submit([encoder.finish()]);
        let (sender, receiver) = oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = sender.send(result);
        });
        PendingReadback { staging, submission, receiver }
    }

    /// The bytes of a readback, once the work it was submitted with is done (natively: that
    /// submission, not whatever was submitted after it).
    pub async fn finish_readback(&self, pending: PendingReadback) -> Result<Vec<u8>, GpuError> {
        let PendingReadback { staging, submission, receiver } = pending;
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = self.device.poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None });
        }
        #[cfg(target_arch = "wasm32")]
        let _ = submission;
        self.check_errors()?;
        let lost = || GpuError::DeviceLost(self.lost().unwrap_or_else(|| "before the map finished".into()));
        // A device lost while the copy ran may never answer the map: do not wait for it.
        if self.lost().is_some() {
            return Err(lost());
        }
        receiver.await.map_err(|_| lost())?.map_err(|e| match self.lost() {
            Some(_) => lost(),
            None => GpuError::Readback(e.to_string()),
        })?;
        let bytes = staging.get_mapped_range(..).map_err(|e| GpuError::Readback(e.to_string()))?.to_vec();
        staging.unmap();
        self.check_errors()?;
        Ok(bytes)
    }

    pub async fn read_f32(&self, source: &wgpu::Buffer, count: usize) -> Result<Vec<f32>, GpuError> {
        let bytes = self.read_bytes(source, (count * 4) as u64).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    pub async fn read_u32(&self, source: &wgpu::Buffer, count: usize) -> Result<Vec<u32>, GpuError> {
        let bytes = self.read_bytes(source, (count * 4) as u64).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Buffers (and their bytes) made through these helpers and not yet dropped: a trainer's
    /// whole footprint comes back when it is dropped.
    pub fn allocations(&self) -> Allocations {
        Allocations {
            buffers: self.allocations.buffers.load(Ordering::Relaxed),
            bytes: self.allocations.bytes.load(Ordering::Relaxed),
        }
    }

    /// A device buffer, counted in [`GpuContext::allocations`] until its last clone drops.
    // On the web wgpu's handles are not `Send`; `Arc` keeps a trainer `Send` natively.
    #[allow(clippy::arc_with_non_send_sync)]
    pub fn create_buffer(&self, descriptor: &wgpu::BufferDescriptor<'_>) -> TrackedBuffer {
        let buffer = self.device.create_buffer(descriptor);
        self.allocations.buffers.fetch_add(1, Ordering::Relaxed);
        self.allocations.bytes.fetch_add(buffer.size(), Ordering::Relaxed);
        TrackedBuffer(Arc::new(TrackedInner { buffer, counter: self.allocations.clone() }))
    }

    /// A storage buffer holding `data`, readable back and writable from the host.
    pub fn storage_with(&self, label: &str, data: &[u8]) -> TrackedBuffer {
        let buffer = self.storage(label, data.len() as u64);
        self.queue.write_buffer(&buffer, 0, data);
        buffer
    }

    /// A zeroed storage buffer of at least `bytes` bytes, rounded up to whole vec4s (16 bytes)
    /// so the vec4 kernels can read any tensor in it.
    pub fn storage(&self, label: &str, bytes: u64) -> TrackedBuffer {
        self.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(16),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A uniform buffer holding `data`.
    pub fn uniform_with(&self, label: &str, data: &[u8]) -> TrackedBuffer {
        let buffer = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (data.len() as u64).max(16).next_multiple_of(16),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buffer, 0, data);
        buffer
    }
}
