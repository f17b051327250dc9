//! The page's end of the training worker: starts it, queues commands until it says it is ready,
//! posts them (payloads transferred), and hands every event it sends to the page. A worker that
//! fails — its script missing (offline, not cached), a panic, a browser without module workers —
//! or that never says it is ready is named through `on_failure`; the page never waits on it.
//!
//! Two builds of the worker exist ([`WorkerBuild`]): the threaded one (the CPU path on every
//! core: wasm threads with shared memory, built by scripts/build-worker-threads.sh), started
//! where the page is cross-origin isolated, and the one-thread one (Trunk's, the default build).
//! A threaded worker that fails before it is ready is replaced by the one-thread worker, which
//! names why on the adapter line.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::set_timeout;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

use crate::describe;
use crate::protocol::{self, Command, Event, ProtocolError, WORKER_NAME};
use crate::settings::DEFAULT_MAX_THREADS;

/// The one-thread worker's module script, made by Trunk (`data-loader-shim`) next to the page.
pub const WORKER_SCRIPT: &str = "./fashion-worker_loader.js";
/// The threaded worker's module script (scripts/build-worker-threads.sh, run by Trunk's hook).
pub const THREADED_WORKER_SCRIPT: &str = "./fashion-worker-threads_loader.js";

/// How long a starting worker may take to say it is ready (it loads and compiles its wasm).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which build of the worker the page starts. The worker reads its part from its script's query
/// (`?threads=n`, or `?one_thread=why`) and names it on the adapter line (`CPU, 2 threads`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerBuild {
    Threaded { threads: usize },
    OneThread { why: String },
}

impl WorkerBuild {
    /// The threaded worker with `requested` threads (the link's `threads=`), or as many as the
    /// browser names cores up to [`DEFAULT_MAX_THREADS`], where this page can run it.
    pub fn choose(requested: Option<usize>) -> Self {
        let global = js_sys::global();
        let has = |name: &str| js_sys::Reflect::get(&global, &name.into()).ok().filter(|v| !v.is_undefined());
        let cores = has("navigator")
            .and_then(|n| js_sys::Reflect::get(&n, &"hardwareConcurrency".into()).ok())
            .and_then(|n| n.as_f64())
            .map_or(1, |n| n.max(1.0) as usize);
        let threads = requested.unwrap_or(cores.min(DEFAULT_MAX_THREADS));
        let why = if threads == 1 {
            match requested {
                Some(_) => "threads=1 in the link",
                None => "the browser names one core",
            }
        } else if has("crossOriginIsolated").and_then(|v| v.as_bool()) != Some(true) {
            "the page is not cross-origin isolated (COOP/COEP headers)"
        } else if has("SharedArrayBuffer").is_none() {
            "this browser has no SharedArrayBuffer"
        } else {
            return WorkerBuild::Threaded { threads };
        };
        WorkerBuild::OneThread { why: why.into() }
    }

    fn script(&self) -> String {
        match self {
            WorkerBuild::Threaded { threads } => format!("{THREADED_WORKER_SCRIPT}?threads={threads}"),
            WorkerBuild::OneThread { why } => {
                let why = js_sys::encode_uri_component(why).as_string().unwrap_or_default();
                format!("{WORKER_SCRIPT}?one_thread={why}")
            }
        }
    }
}

/// A running worker.
pub struct WorkerLink {
    /// `None` when it could not even be created.
    worker: RefCell<Option<Worker>>,
    /// The build running now (a failed threaded one is replaced by the one-thread one).
    build: RefCell<WorkerBuild>,
    ready: Cell<bool>,
    failed: Cell<bool>,
    /// Commands sent before the worker was ready (a wasm worker drops messages that arrive
    /// before its listener exists).
    queue: RefCell<Vec<Command>>,
    /// The worker's listeners, alive as long as the link.
    listeners: RefCell<Option<Listeners>>,
    /// Hears each event the worker sends.
    on_event: Box<dyn Fn(Event)>,
    /// Hears, once, why the worker is gone.
    on_failure: Box<dyn Fn(String)>,
}

struct Listeners {
    _on_message: Closure<dyn Fn(MessageEvent)>,
    _on_error: Closure<dyn Fn(web_sys::Event)>,
}

impl WorkerLink {
    /// Starts the worker of `build`. `on_event` hears each event; `on_failure` hears, once, why
    /// the worker is gone.
    pub fn start(
        build: WorkerBuild,
        on_event: impl Fn(Event) + 'static,
        on_failure: impl Fn(String) + 'static,
    ) -> Rc<Self> {
        let link = Rc::new(WorkerLink {
            worker: RefCell::new(None),
            build: RefCell::new(build),
            ready: Cell::new(false),
            failed: Cell::new(false),
            queue: RefCell::new(Vec::new()),
            listeners: RefCell::new(None),
            on_event: Box::new(on_event),
            on_failure: Box::new(on_failure),
        });
        link.launch();
        link
    }

    /// Starts a worker of the link's build and listens to it.
    fn launch(self: &Rc<Self>) {
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        options.set_name(WORKER_NAME);
        let script = self.build.borrow().script();
        let worker = match Worker::new_with_options(&script, &options) {
            Ok(worker) => worker,
            Err(error) => {
                self.fail(format!("could not be started ({})", describe(&error)));
                return;
            }
        };
        let on_message = {
            let link = Rc::downgrade(self);
            Closure::<dyn Fn(MessageEvent)>::new(move |message: MessageEvent| {
                let Some(link) = link.upgrade() else { return };
                match protocol::decode::<Event>(&message.data()) {
                    Ok(Event::Ready) => link.flush(),
                    Ok(event) => (link.on_event)(event),
                    Err(error @ ProtocolError::OtherBuild { .. }) => link.fail(format!("is of another build: {error}")),
                    Err(error) => web_sys::console::warn_1(&format!("fashion-gpu: the page ignored {error}").into()),
                }
            })
        };
        let on_error = {
            let link = Rc::downgrade(self);
            // An `ErrorEvent` with a message for an uncaught exception (a panic); a bare `Event`
            // when the script could not be loaded.
            Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
                event.prevent_default();
                let Some(link) = link.upgrade() else { return };
                let message = event.dyn_ref::<ErrorEvent>().map(ErrorEvent::message).unwrap_or_default();
                let why = if message.is_empty() {
                    format!(
                        "failed to start or stopped ({script} missing, not cached offline, or this browser has no \
                         module workers)",
                        script = link.build.borrow().script()
                    )
                } else {
                    format!("stopped: {message}")
                };
                link.fail(why);
            })
        };
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        worker.set_onmessageerror(Some(on_error.as_ref().unchecked_ref()));
        *self.worker.borrow_mut() = Some(worker);
        *self.listeners.borrow_mut() = Some(Listeners { _on_message: on_message, _on_error: on_error });
        let link = Rc::downgrade(self);
        let started = script;
        set_timeout(
            move || {
                let Some(link) = link.upgrade() else { return };
                // Only the worker this timer was set for (a replaced one has its own).
                if !link.ready.get() && !link.failed.get() && link.build.borrow().script() == started {
                    let why = format!("did not start within {} s", START_TIMEOUT.as_secs());
                    link.fail(why);
                }
            },
            START_TIMEOUT,
        );
    }

    /// The worker is gone (`why` completes "the training worker …"). A threaded worker that was
    /// never ready is replaced by the one-thread worker, which names why on the adapter line;
    /// any other failure is the page's to show, once.
    fn fail(self: &Rc<Self>, why: String) {
        if self.failed.get() {
            return;
        }
        if let Some(worker) = self.worker.borrow_mut().take() {
            worker.terminate();
        }
        let threaded = matches!(*self.build.borrow(), WorkerBuild::Threaded { .. });
        if threaded && !self.ready.get() {
            web_sys::console::warn_1(&format!("fashion-gpu: the threaded training worker {why}").into());
            *self.build.borrow_mut() = WorkerBuild::OneThread { why: format!("the threaded worker {why}") };
            self.launch();
            return;
        }
        self.failed.set(true);
        (self.on_failure)(format!("the training worker {why}; reload the page"));
    }

    pub fn failed(&self) -> bool {
        self.failed.get()
    }

    /// Sends `command` now, or once the worker is ready.
    pub fn send(&self, command: Command) {
        if self.failed.get() {
            return;
        }
        if !self.ready.get() {
            self.queue.borrow_mut().push(command);
            return;
        }
        let worker = self.worker.borrow();
        let Some(worker) = worker.as_ref() else { return };
        let posted = protocol::encode(command.kind(), &command);
        if let Err(error) = worker.post_message_with_transfer(&posted.envelope, &posted.transfer) {
            web_sys::console::error_1(
                &format!("fashion-gpu: could not post `{}`: {}", command.kind(), describe(&error)).into(),
            );
        }
    }

    /// Posts `value` as it is, bypassing the protocol (the e2e test of a foreign message).
    pub fn post_raw(&self, value: &wasm_bindgen::JsValue) {
        if let Some(worker) = self.worker.borrow().as_ref() {
            let _ = worker.post_message(value);
        }
    }

    fn flush(&self) {
        self.ready.set(true);
        let queued = std::mem::take(&mut *self.queue.borrow_mut());
        for command in queued {
            self.send(command);
        }
    }
}
