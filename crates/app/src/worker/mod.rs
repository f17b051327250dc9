//! The training worker: a dedicated Web Worker that owns everything that computes — the
//! datasets, the trainer (WebGPU from the worker's own `navigator.gpu`, or the CPU kernels), the
//! study, predictions and explanations, weights files, saved runs and kernel tunings. The page
//! sends it [`Command`]s and renders the [`Event`]s it sends back ([`crate::protocol`]), so the
//! page's main thread never computes and a hidden tab's timer throttling never reaches training.

mod bench;
mod data;
mod device;
mod engine;
mod opfs;
mod pause;
mod predictions;
mod resume;
mod study;
mod threads;
mod tunings;
mod weights;

use std::future::Future;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::protocol::{self, Command, Event, WORKER_NAME};
use engine::Engine;

/// The worker's entry point: listens for the page's commands, then says it is ready.
pub fn start() {
    console_error_panic_hook::set_once();
    let scope: DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    // The threaded build's helper workers load this module too; they only run rayon's threads.
    if scope.name() != WORKER_NAME {
        return;
    }
    let outbox = scope.clone();
    let engine = Engine::new(move |event: Event| {
        let posted = protocol::encode(event.kind(), &event);
        if let Err(error) = outbox.post_message_with_transfer(&posted.envelope, &posted.transfer) {
            web_sys::console::error_2(&format!("fashion-gpu worker: could not post `{}`", event.kind()).into(), &error);
        }
    });
    let inbox = engine.clone();
    let on_message = Closure::<dyn Fn(MessageEvent)>::new(move |message: MessageEvent| {
        match protocol::decode::<Command>(&message.data()) {
            Ok(command) => inbox.start(command),
            Err(error) => inbox.emit(Event::Refused(format!("the training worker ignored {error}"))),
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The worker lives as long as the page: so does its listener.
    on_message.forget();
    let query = scope.location().search();
    spawn_local(async move {
        *engine.cpu_described.borrow_mut() = threads::start(&query).await;
        engine.emit(Event::Ready);
    });
}

impl Engine {
    /// Carries out one command. Those that start a run (or replace the model) are refused by
    /// name while one runs, and the running one goes on.
    fn start(&self, command: Command) {
        let kind = command.kind();
        if self.busy() && starts_a_run(&command) {
            let what = if self.study.is_running() { "a study" } else { "a training" };
            self.emit(Event::Refused(format!("`{kind}` was not done: {what} is running; stop it first")));
            return;
        }
        match command {
            Command::Hello { stored_tunings } => spawn_local(tunings::adopt(stored_tunings)),
            Command::Train { settings } => {
                self.take_settings(&settings);
                self.spawn_run(|engine| async move { engine.train().await });
            }
            Command::Stop => self.stop_training(),
            Command::Pause => self.pause_training(),
            Command::Resume => self.pause.resume(),
            Command::Continue { settings } => {
                if self.can_continue.get() {
                    self.take_settings(&settings);
                    self.spawn_run(|engine| async move { engine.go_on().await });
                }
            }
            // A file that fits no model is named before anything of the page changes.
            Command::LoadWeights { settings, bytes } => match weights::fitting(&settings, &bytes) {
                Err(why) => self.emit(Event::Refused(why)),
                Ok((spec, params)) => {
                    self.take_settings(&settings);
                    self.spawn_run(|engine| async move { engine.use_weights(spec, params).await });
                }
            },
            Command::SaveWeights { export } => {
                let engine = self.clone();
                spawn_local(async move {
                    let file = engine.weights_file(export).await;
                    engine.emit(Event::WeightsFile(file));
                });
            }
            Command::AnotherBatch => self.spawn_run(|engine| async move { engine.another_batch().await }),
            Command::Explore { truth, predicted } => self.explore(truth, predicted),
            Command::Explain { id, pixels } => {
                let engine = self.clone();
                spawn_local(async move {
                    let explanation = engine.explain_one(&pixels).await;
                    engine.emit(Event::Explained { id, explanation });
                });
            }
            Command::LookForSavedRun { settings, autostart } => {
                self.take_settings(&settings);
                let engine = self.clone();
                spawn_local(async move { engine.look_for_saved_run(autostart).await });
            }
            Command::ResumeSavedRun => self.spawn_run(|engine| async move { engine.go_on_with_saved_run().await }),
            Command::DiscardSavedRun => {
                let engine = self.clone();
                spawn_local(async move { engine.forget_saved_run().await });
            }
            Command::Study { settings } => {
                self.take_settings(&settings);
                self.spawn_run(|engine| async move { engine.train_study().await });
            }
            Command::ShowStudyModel { model } => {
                self.spawn_run(|engine| async move { engine.pick_study_model(model).await });
            }
            Command::Bench { settings } => {
                let engine = self.clone();
                spawn_local(async move {
                    let report = bench::run(&crate::settings::Settings::from_query(&settings)).await;
                    engine.emit(Event::Bench(report));
                });
            }
            Command::LoseDevice => self.lose_device(),
        }
    }

    /// Runs `task` on its own; a failure ends in the error state, named.
    fn spawn_run<F: Future<Output = Result<(), String>> + 'static>(&self, task: impl FnOnce(Engine) -> F) {
        let engine = self.clone();
        let future = task(engine.clone());
        spawn_local(async move {
            if let Err(message) = future.await {
                engine.fail_naming_device_loss(message).await;
            }
        });
    }
}

/// `navigator` of this global: the worker's `WorkerNavigator` (or the window's), where WebGPU
/// and the storage manager live.
fn navigator() -> Option<wasm_bindgen::JsValue> {
    js_sys::Reflect::get(&js_sys::global(), &"navigator".into()).ok().filter(|n| n.is_object())
}

/// Commands that start a run or replace the model: one at a time.
fn starts_a_run(command: &Command) -> bool {
    matches!(
        command,
        Command::Train { .. }
            | Command::Continue { .. }
            | Command::LoadWeights { .. }
            | Command::ResumeSavedRun
            | Command::Study { .. }
            | Command::Bench { .. }
    )
}
