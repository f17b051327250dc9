//! Where the worker trains: the WebGPU device (asked for once, from the worker's own
//! `navigator.gpu`, and asked for again after a loss), the trainer on it or on the CPU when
//! WebGPU is missing or refused, and the kernel tunings ([`super::tunings`]) so a second
//! training on this adapter starts with its winners.

use std::sync::Arc;

use fashion_core::gpu::autotune::{autotune, tunes_by_default, tuning_key};
use fashion_core::gpu::ops::KernelChoice;
use fashion_core::trainer::trainer_with_cpu_fallback;
use fashion_core::{Backend, GpuContext, ModelSpec, Trainer};
use fashion_data::Dataset;
use js_sys::Reflect;
use wasm_bindgen::JsValue;

use super::engine::Engine;
use super::tunings;
use crate::protocol::Event;
use crate::settings::{BackendChoice, Settings};

impl Engine {
    /// Times the kernel variants on this model's shapes and batch, after training (never
    /// before a first step), and stores the winners for the next training on this adapter.
    pub(super) async fn tune_for_next_time(&self, spec: &ModelSpec, batch: usize) {
        let Some(key) = self.pending_tuning.borrow_mut().take() else { return };
        let Some(gpu) = self.gpu.borrow().clone() else { return };
        match autotune(&gpu, spec, batch).await {
            Ok(tuning) => {
                tunings::store(&key, &tuning.choice).await;
                self.log(format!("Kernels tuned for the next training on this adapter: {}", tuning.choice));
            }
            Err(error) => self.log(format!("Kernel tuning failed ({error}); the adapter's set stays")),
        }
    }

    /// Reads what the GPU context holds now (the previous model's buffers are gone once its run
    /// is dropped).
    pub(crate) fn note_gpu_allocations(&self) {
        let allocations = self.gpu.borrow().as_ref().map(|gpu| gpu.allocations());
        self.emit(Event::GpuAllocations(allocations));
    }

    /// Fails with `message`; a failure on a lost device (whichever step met it: an epoch, a
    /// prediction, a readback) also names what to do: the run's last finished epoch is saved and
    /// goes on from the resume offer (on a new device, with the same kernels, to the same
    /// digits). The browser reports a loss a moment after the first failed call: it is waited
    /// for briefly.
    pub(crate) async fn fail_naming_device_loss(&self, message: String) {
        let gpu = self.gpu.borrow().clone();
        let mut lost = None;
        if let Some(gpu) = gpu {
            for _ in 0..LOSS_REPORT_POLLS {
                lost = gpu.lost();
                if lost.is_some() {
                    break;
                }
                sleep_ms(LOSS_REPORT_POLL_MS).await;
            }
        }
        let Some(reason) = lost else { return self.fail(message) };
        self.offer_saved_run();
        self.fail(format!(
            "{message} — the GPU device was lost ({reason}). The run's last finished epoch is saved: \
             resume it (on a new device) from the offer below, or press Train to start over."
        ));
    }

    /// Test hook: gives the WebGPU device up, as a driver reset would.
    pub(crate) fn lose_device(&self) {
        if let Some(gpu) = self.gpu.borrow().as_ref() {
            self.log("Test hook: destroying the WebGPU device".into());
            gpu.destroy_device();
        }
    }

    /// A GPU trainer where WebGPU works, otherwise a CPU one (and the banner says why).
    pub(crate) async fn make_trainer(
        &self,
        settings: &Settings,
        spec: &ModelSpec,
        train: &Dataset,
        test: &Dataset,
        // The kernels a resumed run started with; otherwise a stored tuning or the adapter's set.
        resumed_kernels: Option<KernelChoice>,
    ) -> Result<Trainer, String> {
        let gpu = match settings.backend {
            BackendChoice::Cpu => Err("The CPU backend was chosen (backend=cpu).".to_string()),
            BackendChoice::Gpu => self.gpu_context().await,
        };
        // Tuned kernels: stored by an earlier visit (never timed before the first step), or
        // timed once this training is done, for the next.
        self.pending_tuning.borrow_mut().take();
        let mut stored = None;
        if let Some(kernels) = resumed_kernels {
            stored = Some(kernels);
        } else if let Ok(ctx) = &gpu {
            if settings.autotune.unwrap_or_else(|| tunes_by_default(&ctx.adapter)) {
                let described = self.adapter_described.borrow().clone().unwrap_or_else(|| ctx.adapter.to_string());
                let key = tuning_key(&described, spec, settings.batch);
                stored = tunings::stored(&key).await;
                if stored.is_none() {
                    *self.pending_tuning.borrow_mut() = Some(key);
                }
            }
        }
        let (trainer, why_cpu) = trainer_with_cpu_fallback(
            gpu,
            stored,
            spec,
            settings.train_config(true).map_err(|e| e.to_string())?,
            settings.train_config(false).map_err(|e| e.to_string())?,
            train,
            test,
        )
        .map_err(|e| e.to_string())?;
        if settings.backend == BackendChoice::Gpu {
            self.emit(Event::GpuNotice(why_cpu));
        }
        let described = self.adapter_described.borrow().clone();
        if let (Some(kernels), Some(described)) = (trainer.kernels(), described) {
            let how = match (resumed_kernels.is_some(), stored.is_some()) {
                (true, _) => ", as the resumed run started",
                (false, true) => ", tuned on an earlier visit",
                (false, false) => "",
            };
            self.emit(Event::Adapter(Some(format!("{described} · {kernels} kernels{how}"))));
        }
        if trainer.backend() == Backend::Cpu {
            self.emit(Event::Adapter(Some(self.cpu_described.borrow().clone())));
        }
        self.set_backend(trainer.backend());
        Ok(trainer)
    }

    pub(super) async fn gpu_context(&self) -> Result<Arc<GpuContext>, String> {
        let held = self.gpu.borrow().clone();
        if let Some(gpu) = held {
            match gpu.lost() {
                None => return Ok(gpu),
                // Training restarts without reloading the page: a fresh adapter and device.
                Some(reason) => {
                    self.log(format!("The GPU device was lost ({reason}); asking for a new one"));
                    self.gpu.borrow_mut().take();
                }
            }
        }
        if !browser_has_webgpu() {
            let secure = Reflect::get(&js_sys::global(), &"isSecureContext".into()).ok().and_then(|v| v.as_bool());
            return Err(if secure != Some(false) {
                "This browser does not offer WebGPU (navigator.gpu is missing).".into()
            } else {
                "WebGPU needs a secure context: open the page over https or from localhost.".into()
            });
        }
        // The core's trainer takes an `Arc`; on the web (one thread) WebGPU handles are !Send.
        #[allow(clippy::arc_with_non_send_sync)]
        let gpu = Arc::new(GpuContext::new().await.map_err(|e| e.to_string())?);
        let described = browser_adapter_info().await.unwrap_or_else(|| gpu.adapter.to_string());
        self.emit(Event::Adapter(Some(described.clone())));
        *self.adapter_described.borrow_mut() = Some(described);
        *self.gpu.borrow_mut() = Some(gpu.clone());
        Ok(gpu)
    }
}

/// How long a failure waits for the browser to report a device loss: 10 × 30 ms.
const LOSS_REPORT_POLLS: usize = 10;
const LOSS_REPORT_POLL_MS: i32 = 30;

/// Waits `ms` milliseconds (`setTimeout` of this global).
async fn sleep_ms(ms: i32) {
    let elapsed = js_sys::Promise::new(&mut |resolve, _reject| {
        let set_timeout = Reflect::get(&js_sys::global(), &"setTimeout".into())
            .ok()
            .and_then(|f| wasm_bindgen::JsCast::dyn_into::<js_sys::Function>(f).ok());
        match set_timeout {
            Some(set_timeout) => drop(set_timeout.call2(&JsValue::NULL, &resolve, &ms.into())),
            None => drop(resolve.call0(&JsValue::NULL)),
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(elapsed).await;
}

/// `navigator.gpu` of this global (the worker's `WorkerNavigator`, or the window's).
fn navigator_gpu() -> Option<JsValue> {
    Reflect::get(&super::navigator()?, &"gpu".into()).ok().filter(|gpu| !gpu.is_undefined() && !gpu.is_null())
}

pub(crate) fn browser_has_webgpu() -> bool {
    navigator_gpu().is_some()
}

/// What the browser says about its WebGPU adapter, e.g. `google swiftshader (fallback adapter)`:
/// wgpu leaves the adapter's name empty on the web.
pub(crate) async fn browser_adapter_info() -> Option<String> {
    use wasm_bindgen::JsCast;
    let gpu = navigator_gpu()?;
    let request: js_sys::Function = Reflect::get(&gpu, &"requestAdapter".into()).ok()?.dyn_into().ok()?;
    let promise: js_sys::Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
    let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok().filter(|a| a.is_object())?;
    let info = Reflect::get(&adapter, &"info".into()).ok().filter(|i| i.is_object())?;
    let field = |object: &wasm_bindgen::JsValue, name: &str| Reflect::get(object, &name.into()).ok();
    let words: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|name| field(&info, name)?.as_string().filter(|s| !s.is_empty()))
        .collect();
    if words.is_empty() {
        return None;
    }
    let fallback = field(&info, "isFallbackAdapter")
        .and_then(|v| v.as_bool())
        .or_else(|| field(&adapter, "isFallbackAdapter")?.as_bool())
        .unwrap_or(false);
    Some(format!("{}{}", words.join(" "), if fallback { " (fallback adapter)" } else { "" }))
}
