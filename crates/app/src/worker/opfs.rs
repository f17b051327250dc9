//! The worker's files in the browser's origin private file system (OPFS): the run it can pick
//! up again after a reload (the core's [`fashion_core::train::SavedRun`], megabytes of floats)
//! and the kernel tunings (`localStorage` does not exist in workers). This module only stores
//! bytes; what they mean is [`super::resume`]'s and [`super::tunings`]'.

use js_sys::{ArrayBuffer, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetFileOptions, FileSystemWritableFileStream,
    StorageManager,
};

/// Why a file could not be kept or read; training goes on without it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("this browser gives the page no storage for its run (no origin private file system: {0})")]
    Unavailable(String),
    #[error(
        "the browser's storage quota for this page is used up: training goes on without saving, so \
         this run cannot be resumed after a reload; free some site data to save again"
    )]
    Quota,
    #[error("the browser could not {what} {file}: {reason}")]
    Failed { what: &'static str, file: &'static str, reason: String },
}

/// The DOMException's name (`QuotaExceededError`, `NotFoundError`, …) and message of `error`.
fn exception(error: &JsValue) -> (String, String) {
    let text = |key: &str| Reflect::get(error, &key.into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
    let (name, message) = (text("name"), text("message"));
    let message = if message.is_empty() { format!("{error:?}") } else { message };
    (name, message)
}

fn failed(what: &'static str, file: &'static str) -> impl Fn(JsValue) -> StorageError {
    move |error| match exception(&error) {
        (name, _) if name == "QuotaExceededError" => StorageError::Quota,
        (name, message) => StorageError::Failed { what, file, reason: format!("{name}: {message}") },
    }
}

/// `navigator.storage` of this global (the worker's or the window's).
fn storage_manager() -> Option<StorageManager> {
    Reflect::get(&super::navigator()?, &"storage".into()).ok()?.dyn_into().ok()
}

async fn directory() -> Result<FileSystemDirectoryHandle, StorageError> {
    let storage = storage_manager().ok_or_else(|| StorageError::Unavailable("navigator.storage is missing".into()))?;
    if !Reflect::has(&storage, &"getDirectory".into()).unwrap_or(false) {
        return Err(StorageError::Unavailable("navigator.storage.getDirectory is missing".into()));
    }
    let handle =
        JsFuture::from(storage.get_directory()).await.map_err(|e| StorageError::Unavailable(exception(&e).1))?;
    Ok(handle.unchecked_into())
}

/// The bytes of `file`; `None` when there is none.
pub async fn read(file: &'static str) -> Result<Option<Vec<u8>>, StorageError> {
    let dir = directory().await?;
    let handle = match JsFuture::from(dir.get_file_handle(file)).await {
        Ok(handle) => handle.unchecked_into::<FileSystemFileHandle>(),
        Err(error) if exception(&error).0 == "NotFoundError" => return Ok(None),
        Err(error) => return Err(failed("open", file)(error)),
    };
    let blob: Blob = JsFuture::from(handle.get_file()).await.map_err(failed("read", file))?.unchecked_into();
    let buffer: ArrayBuffer = JsFuture::from(blob.array_buffer()).await.map_err(failed("read", file))?.unchecked_into();
    Ok(Some(Uint8Array::new(&buffer).to_vec()))
}

/// Replaces `file` with `bytes`, written through a writable stream, which the browser swaps in
/// whole on `close()`: a reload mid-write keeps the previous contents. A write the browser
/// aborts for want of room is a [`StorageError::Quota`] too (Chromium's file streams may fail
/// with an `AbortError` then).
pub async fn write(file: &'static str, bytes: &[u8]) -> Result<(), StorageError> {
    match write_file(file, bytes).await {
        Err(StorageError::Failed { what, reason, .. })
            if room_left().await.is_some_and(|room| room < bytes.len() as f64) =>
        {
            web_sys::console::warn_1(&format!("fashion-gpu: could not {what} {file} ({reason}): no room left").into());
            Err(StorageError::Quota)
        }
        other => other,
    }
}

/// Bytes the page may still store (`navigator.storage.estimate()`: quota − usage).
async fn room_left() -> Option<f64> {
    let estimate = JsFuture::from(storage_manager()?.estimate().ok()?).await.ok()?;
    let number = |key: &str| Reflect::get(&estimate, &key.into()).ok()?.as_f64();
    Some(number("quota")? - number("usage")?)
}

async fn write_file(file: &'static str, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = directory().await?;
    let options = FileSystemGetFileOptions::new();
    options.set_create(true);
    let handle: FileSystemFileHandle = JsFuture::from(dir.get_file_handle_with_options(file, &options))
        .await
        .map_err(failed("create", file))?
        .unchecked_into();
    let stream: FileSystemWritableFileStream =
        JsFuture::from(handle.create_writable()).await.map_err(failed("write", file))?.unchecked_into();
    // A copy, not a view of the wasm memory: the threaded build's memory is shared, and a file
    // stream refuses views of shared memory.
    let written = match stream.write_with_js_u8_array(&js_sys::Uint8Array::from(bytes)) {
        Ok(promise) => JsFuture::from(promise).await.map(drop),
        Err(error) => Err(error),
    };
    if let Err(error) = written {
        // Drops the half-written swap file; the previous saved run stays.
        let _ = JsFuture::from(stream.abort()).await;
        return Err(failed("write", file)(error));
    }
    JsFuture::from(stream.close()).await.map_err(failed("write", file))?;
    Ok(())
}

/// Forgets `file` (there may be none).
pub async fn remove(file: &'static str) -> Result<(), StorageError> {
    let dir = directory().await?;
    match JsFuture::from(dir.remove_entry(file)).await {
        Err(error) if exception(&error).0 != "NotFoundError" => Err(failed("remove", file)(error)),
        _ => Ok(()),
    }
}
