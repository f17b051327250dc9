//! Where the page trains: the WebGPU device (asked for once, asked for again after a loss), the
//! trainer on it or on the CPU when WebGPU is missing or refused, and the kernel tunings kept in
//! `localStorage` so a second training on this adapter starts with its winners.

use std::sync::Arc;

use fashion_core::frontend::trainer_with_cpu_fallback;
use fashion_core::gpu::autotune::{autotune, tunes_by_default, tuning_key};
use fashion_core::gpu::ops::KernelChoice;
use fashion_core::{GpuContext, ModelSpec, Trainer};
use fashion_data::Dataset;
use gloo_storage::Storage as _;
use leptos::prelude::*;

use super::Session;
use crate::settings::{BackendChoice, Settings};

impl Session {
    /// Times the kernel variants on this model's shapes and batch, after training (never
    /// before a first step), and stores the winners for the next training on this adapter.
    pub(super) async fn tune_for_next_time(self, spec: &ModelSpec, batch: usize) {
        let (Some(key), Some(gpu)) = (self.pending_tuning.get_value(), self.gpu.get_value()) else {
            return;
        };
        self.pending_tuning.set_value(None);
        match autotune(&gpu, spec, batch).await {
            Ok(tuning) => {
                store_tuning(&key, &tuning.choice);
                self.log(format!("Kernels tuned for the next training on this adapter: {}", tuning.choice));
            }
            Err(error) => self.log(format!("Kernel tuning failed ({error}); the adapter's set stays")),
        }
    }

    /// Reads what the GPU context holds now (the previous model's buffers are gone once its run
    /// is dropped).
    pub(crate) fn note_gpu_allocations(self) {
        let allocations = self.gpu.with_value(|gpu| gpu.as_ref().map(|gpu| gpu.allocations()));
        self.gpu_allocations.set(allocations);
    }

    /// A GPU trainer where WebGPU works, otherwise a CPU one (and the banner says why).
    pub(crate) async fn make_trainer(
        self,
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
        self.pending_tuning.set_value(None);
        let mut stored = None;
        if let Some(kernels) = resumed_kernels {
            stored = Some(kernels);
        } else if let Ok(ctx) = &gpu {
            if settings.autotune.unwrap_or_else(|| tunes_by_default(&ctx.adapter)) {
                let described = self.adapter_described.get_value().unwrap_or_else(|| ctx.adapter.to_string());
                let key = tuning_key(&described, spec, settings.batch);
                stored = stored_tuning(&key);
                if stored.is_none() {
                    self.pending_tuning.set_value(Some(key));
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
            self.gpu_notice.set(why_cpu);
        }
        if let (Some(kernels), Some(described)) = (trainer.kernels(), self.adapter_described.get_value()) {
            let how = match (resumed_kernels.is_some(), stored.is_some()) {
                (true, _) => ", as the resumed run started",
                (false, true) => ", tuned on an earlier visit",
                (false, false) => "",
            };
            self.adapter.set(Some(format!("{described} · {kernels} kernels{how}")));
        }
        self.backend.set(Some(trainer.backend()));
        Ok(trainer)
    }

    pub(super) async fn gpu_context(self) -> Result<Arc<GpuContext>, String> {
        if let Some(gpu) = self.gpu.get_value() {
            match gpu.lost() {
                None => return Ok(gpu),
                // Training restarts without reloading the page: a fresh adapter and device.
                Some(reason) => {
                    self.log(format!("The GPU device was lost ({reason}); asking for a new one"));
                    self.gpu.set_value(None);
                }
            }
        }
        if !browser_has_webgpu() {
            let secure = web_sys::window().is_some_and(|w| w.is_secure_context());
            return Err(if secure {
                "This browser does not offer WebGPU (navigator.gpu is missing).".into()
            } else {
                "WebGPU needs a secure context: open the page over https or from localhost.".into()
            });
        }
        // The core's trainer takes an `Arc`; on the web (one thread) WebGPU handles are !Send.
        #[allow(clippy::arc_with_non_send_sync)]
        let gpu = Arc::new(GpuContext::new().await.map_err(|e| e.to_string())?);
        let described = browser_adapter_info().await.unwrap_or_else(|| gpu.adapter.to_string());
        self.adapter.set(Some(described.clone()));
        self.adapter_described.set_value(Some(described));
        self.gpu.set_value(Some(gpu.clone()));
        Ok(gpu)
    }
}

pub(crate) fn browser_has_webgpu() -> bool {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w.navigator(), &"gpu".into()).ok())
        .is_some_and(|gpu| !gpu.is_undefined() && !gpu.is_null())
}

/// Where the page keeps its tunings (`localStorage` through gloo, one entry per [`tuning_key`]).
const TUNING_STORAGE_PREFIX: &str = "fashion-gpu kernels: ";

/// A tuning an earlier visit stored for `key`; `None` when there is none or it does not read
/// back (it is then tuned again and overwritten).
fn stored_tuning(key: &str) -> Option<KernelChoice> {
    let text: String = gloo_storage::LocalStorage::get(format!("{TUNING_STORAGE_PREFIX}{key}")).ok()?;
    KernelChoice::from_text(&text)
}

fn store_tuning(key: &str, choice: &KernelChoice) {
    // A full or refused storage only means tuning again next time.
    let _ = gloo_storage::LocalStorage::set(format!("{TUNING_STORAGE_PREFIX}{key}"), choice.to_text());
}

/// What the browser says about its WebGPU adapter, e.g. `google swiftshader (fallback adapter)`:
/// wgpu leaves the adapter's name empty on the web.
pub(crate) async fn browser_adapter_info() -> Option<String> {
    use js_sys::Reflect;
    use wasm_bindgen::JsCast;
    let gpu = Reflect::get(&web_sys::window()?.navigator(), &"gpu".into()).ok()?;
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
