//! Where the page keeps the run it can pick up again after a reload: one file in the browser's
//! origin private file system (OPFS; `localStorage` holds a few MB of text, a run's state is
//! megabytes of floats). The bytes are the core's [`fashion_core::train::SavedRun`]; this
//! module only stores them.

use js_sys::{ArrayBuffer, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetFileOptions, FileSystemWritableFileStream,
};

/// The saved run's file. Written through a writable stream, which the browser swaps in whole on
/// `close()`: a reload mid-write keeps the previous epoch's run.
const FILE_NAME: &str = "fashion-gpu-saved-run.bin";

/// Why the run could not be kept or read; training goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("this browser gives the page no storage for its run (no origin private file system: {0})")]
    Unavailable(String),
    #[error(
        "the browser's storage quota for this page is used up: training goes on without saving, so \
         this run cannot be resumed after a reload; free some site data to save again"
    )]
    Quota,
    #[error("the browser could not {what} the saved run: {reason}")]
    Failed { what: &'static str, reason: String },
}

/// The DOMException's name (`QuotaExceededError`, `NotFoundError`, …) and message of `error`.
fn exception(error: &JsValue) -> (String, String) {
    let text = |key: &str| Reflect::get(error, &key.into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
    let (name, message) = (text("name"), text("message"));
    let message = if message.is_empty() { format!("{error:?}") } else { message };
    (name, message)
}

fn failed(what: &'static str) -> impl Fn(JsValue) -> StorageError {
    move |error| match exception(&error) {
        (name, _) if name == "QuotaExceededError" => StorageError::Quota,
        (name, message) => StorageError::Failed { what, reason: format!("{name}: {message}") },
    }
}

async fn directory() -> Result<FileSystemDirectoryHandle, StorageError> {
    let window = web_sys::window().ok_or_else(|| StorageError::Unavailable("no window".into()))?;
    let storage = window.navigator().storage();
    if !Reflect::has(&storage, &"getDirectory".into()).unwrap_or(false) {
        return Err(StorageError::Unavailable("navigator.storage.getDirectory is missing".into()));
    }
    let handle =
        JsFuture::from(storage.get_directory()).await.map_err(|e| StorageError::Unavailable(exception(&e).1))?;
    Ok(handle.unchecked_into())
}

/// The saved run's bytes; `None` when there is none.
pub async fn read() -> Result<Option<Vec<u8>>, StorageError> {
    let dir = directory().await?;
    let handle = match JsFuture::from(dir.get_file_handle(FILE_NAME)).await {
        Ok(handle) => handle.unchecked_into::<FileSystemFileHandle>(),
        Err(error) if exception(&error).0 == "NotFoundError" => return Ok(None),
        Err(error) => return Err(failed("open")(error)),
    };
    let file: Blob = JsFuture::from(handle.get_file()).await.map_err(failed("read"))?.unchecked_into();
    let buffer: ArrayBuffer = JsFuture::from(file.array_buffer()).await.map_err(failed("read"))?.unchecked_into();
    Ok(Some(Uint8Array::new(&buffer).to_vec()))
}

/// Replaces the saved run with `bytes`. A write the browser aborts for want of room is a
/// [`StorageError::Quota`] too (Chromium's file streams may fail with an `AbortError` then).
pub async fn write(bytes: &[u8]) -> Result<(), StorageError> {
    match write_file(bytes).await {
        Err(StorageError::Failed { what, reason })
            if room_left().await.is_some_and(|room| room < bytes.len() as f64) =>
        {
            log_reason(what, &reason);
            Err(StorageError::Quota)
        }
        other => other,
    }
}

fn log_reason(what: &str, reason: &str) {
    web_sys::console::warn_1(&format!("fashion-gpu: could not {what} the saved run ({reason}): no room left").into());
}

/// Bytes the page may still store (`navigator.storage.estimate()`: quota − usage).
async fn room_left() -> Option<f64> {
    let estimate = JsFuture::from(web_sys::window()?.navigator().storage().estimate().ok()?).await.ok()?;
    let number = |key: &str| Reflect::get(&estimate, &key.into()).ok()?.as_f64();
    Some(number("quota")? - number("usage")?)
}

async fn write_file(bytes: &[u8]) -> Result<(), StorageError> {
    let dir = directory().await?;
    let options = FileSystemGetFileOptions::new();
    options.set_create(true);
    let handle: FileSystemFileHandle = JsFuture::from(dir.get_file_handle_with_options(FILE_NAME, &options))
        .await
        .map_err(failed("create"))?
        .unchecked_into();
    let stream: FileSystemWritableFileStream =
        JsFuture::from(handle.create_writable()).await.map_err(failed("write"))?.unchecked_into();
    let written = match stream.write_with_u8_array(bytes) {
        Ok(promise) => JsFuture::from(promise).await.map(drop),
        Err(error) => Err(error),
    };
    if let Err(error) = written {
        // Drops the half-written swap file; the previous saved run stays.
        let _ = JsFuture::from(stream.abort()).await;
        return Err(failed("write")(error));
    }
    JsFuture::from(stream.close()).await.map_err(failed("write"))?;
    Ok(())
}

/// Forgets the saved run (there may be none).
pub async fn remove() -> Result<(), StorageError> {
    let dir = directory().await?;
    match JsFuture::from(dir.remove_entry(FILE_NAME)).await {
        Err(error) if exception(&error).0 != "NotFoundError" => Err(failed("remove")(error)),
        _ => Ok(()),
    }
}
