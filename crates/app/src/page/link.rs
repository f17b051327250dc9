//! The page's end of the training worker: starts it, queues commands until it says it is ready,
//! posts them (payloads transferred), and hands every event it sends to the page. A worker that
//! fails — its script missing (offline, not cached), a panic, a browser without module workers —
//! or that never says it is ready is named through `on_failure`; the page never waits on it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::set_timeout;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

use crate::describe;
use crate::protocol::{self, Command, Event, ProtocolError};

/// The worker's module script, made by Trunk (`data-loader-shim`) next to the page.
pub const WORKER_SCRIPT: &str = "./fashion-worker_loader.js";

/// How long a starting worker may take to say it is ready (it loads and compiles its wasm).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running worker.
pub struct WorkerLink {
    /// `None` when it could not even be created.
    worker: Option<Worker>,
    ready: Cell<bool>,
    failed: Cell<bool>,
    /// Commands sent before the worker was ready (a wasm worker drops messages that arrive
    /// before its listener exists).
    queue: RefCell<Vec<Command>>,
    /// The worker's listeners, alive as long as the link.
    listeners: RefCell<Option<Listeners>>,
}

struct Listeners {
    _on_message: Closure<dyn Fn(MessageEvent)>,
    _on_error: Closure<dyn Fn(web_sys::Event)>,
}

impl WorkerLink {
    /// Starts the worker. `on_event` hears each event; `on_failure` hears, once, why the
    /// worker is gone.
    pub fn start(on_event: impl Fn(Event) + 'static, on_failure: impl Fn(String) + 'static) -> Rc<Self> {
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        options.set_name("fashion-gpu training");
        let on_failure: Rc<dyn Fn(String)> = Rc::new(on_failure);
        let worker = match Worker::new_with_options(WORKER_SCRIPT, &options) {
            Ok(worker) => worker,
            Err(error) => {
                let link = Rc::new(WorkerLink::dead());
                on_failure(format!("the training worker could not be started ({})", describe(&error)));
                return link;
            }
        };
        let link = Rc::new(WorkerLink {
            worker: Some(worker),
            ready: Cell::new(false),
            failed: Cell::new(false),
            queue: RefCell::new(Vec::new()),
            listeners: RefCell::new(None),
        });
        let fail = {
            let link = Rc::downgrade(&link);
            let on_failure = on_failure.clone();
            move |why: String| {
                let Some(link) = link.upgrade() else { return };
                if !link.failed.replace(true) {
                    if let Some(worker) = &link.worker {
                        worker.terminate();
                    }
                    on_failure(why);
                }
            }
        };
        let fail = Rc::new(fail);
        let on_message = {
            let link = Rc::downgrade(&link);
            let fail = fail.clone();
            Closure::<dyn Fn(MessageEvent)>::new(move |message: MessageEvent| {
                let Some(link) = link.upgrade() else { return };
                match protocol::decode::<Event>(&message.data()) {
                    Ok(Event::Ready) => link.flush(),
                    Ok(event) => on_event(event),
                    Err(error @ ProtocolError::OtherBuild { .. }) => {
                        fail(format!("the training worker is of another build: {error}"))
                    }
                    Err(error) => web_sys::console::warn_1(&format!("fashion-gpu: the page ignored {error}").into()),
                }
            })
        };
        let on_error = {
            let fail = fail.clone();
            // An `ErrorEvent` with a message for an uncaught exception (a panic); a bare `Event`
            // when the script could not be loaded.
            Closure::<dyn Fn(web_sys::Event)>::new(move |event: web_sys::Event| {
                event.prevent_default();
                let message = event.dyn_ref::<ErrorEvent>().map(ErrorEvent::message).unwrap_or_default();
                fail(if message.is_empty() {
                    format!(
                        "the training worker failed to start or stopped ({WORKER_SCRIPT} missing, not cached \
                         offline, or this browser has no module workers): reload the page"
                    )
                } else {
                    format!("the training worker stopped: {message}; reload the page")
                })
            })
        };
        if let Some(worker) = &link.worker {
            worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            worker.set_onmessageerror(Some(on_error.as_ref().unchecked_ref()));
        }
        *link.listeners.borrow_mut() = Some(Listeners { _on_message: on_message, _on_error: on_error });
        {
            let link = Rc::downgrade(&link);
            set_timeout(
                move || {
                    if link.upgrade().is_some_and(|link| !link.ready.get()) {
                        fail(format!(
                            "the training worker did not start within {} s: reload the page",
                            START_TIMEOUT.as_secs()
                        ));
                    }
                },
                START_TIMEOUT,
            );
        }
        link
    }

    /// A link whose worker could not be created: every command is dropped.
    fn dead() -> Self {
        WorkerLink {
            worker: None,
            ready: Cell::new(false),
            failed: Cell::new(true),
            queue: RefCell::new(Vec::new()),
            listeners: RefCell::new(None),
        }
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
        let Some(worker) = &self.worker else { return };
        let posted = protocol::encode(command.kind(), &command);
        if let Err(error) = worker.post_message_with_transfer(&posted.envelope, &posted.transfer) {
            web_sys::console::error_1(
                &format!("fashion-gpu: could not post `{}`: {}", command.kind(), describe(&error)).into(),
            );
        }
    }

    /// Posts `value` as it is, bypassing the protocol (the e2e test of a foreign message).
    pub fn post_raw(&self, value: &wasm_bindgen::JsValue) {
        if let Some(worker) = &self.worker {
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
