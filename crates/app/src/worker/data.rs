//! The datasets, fetched by the worker from the page's own origin as `.gz` IDX files and kept
//! in the browser's Cache Storage after the first load.

use fashion_data::{dataset_from_idx_bytes, DataError, Dataset, DatasetName};
use js_sys::Uint8Array;
use wasm_bindgen::{JsCast, JsValue};

use crate::describe;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response, WorkerGlobalScope};

/// Bump when the staged files change, so stale copies are not served from the cache.
const CACHE_NAME: &str = "fashion-gpu-data-v1";

/// Loading a dataset failed; the message names the URL and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("could not fetch {url}: {reason}")]
    Network { url: String, reason: String },
    #[error(
        "{url} answered HTTP {status}; is the dataset staged there (scripts/setup-web.sh) and is `data_url` right?"
    )]
    Http { url: String, status: u16 },
    #[error("{url} is not a valid IDX dataset file: {source}")]
    Parse { url: String, source: DataError },
}

/// The training and test splits of one dataset.
#[derive(Clone)]
pub struct Splits {
    pub name: DatasetName,
    pub data_url: String,
    pub train: Dataset,
    pub test: Dataset,
}

/// Fetches and parses both splits of `name` from `<data_url><name>/`.
pub async fn load_splits(data_url: &str, name: DatasetName) -> Result<Splits, LoadError> {
    let url = |stem: &str| format!("{data_url}{}/{stem}.gz", name.as_str());
    let (train, test) = futures::try_join!(
        load_split(url("train-images-idx3-ubyte"), url("train-labels-idx1-ubyte")),
        load_split(url("t10k-images-idx3-ubyte"), url("t10k-labels-idx1-ubyte")),
    )?;
    Ok(Splits { name, data_url: data_url.to_string(), train, test })
}

async fn load_split(images_url: String, labels_url: String) -> Result<Dataset, LoadError> {
    let (images, labels) = futures::try_join!(fetch_bytes(&images_url), fetch_bytes(&labels_url))?;
    // The parser gunzips too, but in wasm: the browser's own decompression is faster.
    let (images, labels) = futures::join!(gunzip_natively(images), gunzip_natively(labels));
    let name = |url: &str, (_, gunzipped): &(Vec<u8>, bool)| match gunzipped {
        true => url.trim_end_matches(".gz").to_string(),
        false => url.to_string(),
    };
    dataset_from_idx_bytes(&images.0, &name(&images_url, &images), &labels.0, &name(&labels_url, &labels))
        .map_err(|source| LoadError::Parse { url: format!("{images_url} / {labels_url}"), source })
}

/// The body of `url`, from the cache when an earlier visit stored it.
async fn fetch_bytes(url: &str) -> Result<Vec<u8>, LoadError> {
    let network = |reason: String| LoadError::Network { url: url.to_string(), reason };
    let cache = open_cache().await;
    if let Some(cache) = &cache {
        if let Ok(hit) = JsFuture::from(cache.match_with_str(url)).await {
            if let Ok(response) = hit.dyn_into::<Response>() {
                if let Ok(bytes) = body_bytes(&response).await {
                    return Ok(bytes);
                }
            }
        }
    }
    let response: Response = JsFuture::from(global().fetch_with_str(url))
        .await
        .map_err(|e| network(describe(&e)))?
        .dyn_into()
        .map_err(|_| network("fetch did not return a Response".into()))?;
    if !response.ok() {
        return Err(LoadError::Http { url: url.to_string(), status: response.status() });
    }
    if let Some(cache) = &cache {
        // Best effort: a full or unavailable cache only costs a download next time.
        if let Ok(copy) = response.clone() {
            let _ = JsFuture::from(cache.put_with_str(url, &copy)).await;
        }
    }
    body_bytes(&response).await.map_err(network)
}

/// Gunzips `bytes` with the browser's own `DecompressionStream`, which does not block the page,
/// and says whether it did; bytes that are not gzip, or a browser without it, leave them as they
/// are (the parser then gunzips them itself).
async fn gunzip_natively(bytes: Vec<u8>) -> (Vec<u8>, bool) {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return (bytes, false);
    }
    match decompression_stream(&bytes).await {
        Some(raw) => (raw, true),
        None => (bytes, false),
    }
}

async fn decompression_stream(gz: &[u8]) -> Option<Vec<u8>> {
    use js_sys::{Array, Function, Reflect};
    let call = |target: &JsValue, method: &str, arg: Option<&JsValue>| -> Option<JsValue> {
        let function: Function = Reflect::get(target, &method.into()).ok()?.dyn_into().ok()?;
        match arg {
            Some(arg) => function.call1(target, arg).ok(),
            None => function.call0(target).ok(),
        }
    };
    let constructor: Function = Reflect::get(&js_sys::global(), &"DecompressionStream".into()).ok()?.dyn_into().ok()?;
    let gunzip = Reflect::construct(&constructor, &Array::of1(&"gzip".into())).ok()?;
    let blob = web_sys::Blob::new_with_u8_array_sequence(&Array::of1(&Uint8Array::from(gz))).ok()?;
    let compressed = call(&blob, "stream", None)?;
    let raw = call(&compressed, "pipeThrough", Some(&gunzip))?;
    let response = Response::new_with_opt_readable_stream(Some(&raw.dyn_into().ok()?)).ok()?;
    body_bytes(&response).await.ok()
}

/// The worker's global scope (the page's window has the same `fetch` and `caches`).
fn global() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

async fn open_cache() -> Option<Cache> {
    // Cache Storage exists only in secure contexts (https, localhost).
    let caches = global().caches().ok()?;
    JsFuture::from(caches.open(CACHE_NAME)).await.ok()?.dyn_into().ok()
}

async fn body_bytes(response: &Response) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(response.array_buffer().map_err(|e| describe(&e))?).await.map_err(|e| describe(&e))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}
