// The page's service worker: after a first visit the page (its HTML, wasm, JS, CSS, manifest,
// icons, and the training worker's script and wasm; the WGSL shaders are inside the wasm) and
// Fashion-MNIST are in Cache Storage, so the page loads and trains with the network gone.
// Online, every request goes to the network first (a new build is picked up at once) and what
// comes back is kept; offline, the kept copy answers (from any of the page's caches).
//
// Caches: APP_CACHE holds the page; DATA_CACHE is the one crates/app/src/worker/data.rs reads the
// datasets from (its CACHE_NAME: keep the two equal), so the datasets are kept once.

const APP_CACHE = 'fashion-gpu-app-v1';
const DATA_CACHE = 'fashion-gpu-data-v1';
// The training worker's files are not named in the HTML (the page starts the worker itself);
// Trunk gives them fixed names.
const WORKER = ['fashion-worker_loader.js', 'fashion-worker.js', 'fashion-worker_bg.wasm'];
const THREADED_WORKER = ['fashion-worker-threads_loader.js', 'fashion-worker-threads.js', 'fashion-worker-threads_bg.wasm'];
const SHELL = ['./', 'manifest.webmanifest', 'icons/icon-192.png', 'icons/icon-512.png', ...WORKER];
const DATASET = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']
  .map((stem) => `data/fashion/${stem}.gz`);

/** The page and the files its HTML names (Trunk's hashed wasm, JS and CSS). */
async function cacheShell() {
  const cache = await caches.open(APP_CACHE);
  const page = await fetch('./', { cache: 'no-cache' });
  if (!page.ok) throw new Error(`the page answered HTTP ${page.status}`);
  const html = await page.clone().text();
  const assets = [...html.matchAll(/["'](\/?[\w./-]+\.(?:js|wasm|css))["']/g)].map((m) => m[1]);
  await cache.put('./', page);
  await cache.addAll([...new Set([...SHELL.slice(1), ...assets])]);
  // The threaded worker exists where its nightly build ran (scripts/build-worker-threads.sh).
  await cache.addAll(THREADED_WORKER).catch((e) => console.warn(`fashion-gpu: no threaded worker kept offline: ${e}`));
}

/** Fashion-MNIST, unless an earlier visit (or the page itself) kept it already; best effort. */
async function cacheDataset() {
  const cache = await caches.open(DATA_CACHE);
  for (const url of DATASET) {
    if (!(await cache.match(url))) await cache.add(url);
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    Promise.all([cacheShell(), cacheDataset().catch((e) => console.warn(`fashion-gpu: dataset not kept offline: ${e}`))])
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith('fashion-gpu-app-') && n !== APP_CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

/**
 * `response` with the COOP/COEP headers that make the page cross-origin isolated, for hosts
 * that cannot set headers (a static host): the page then has SharedArrayBuffer, and its CPU
 * path trains on every core (the threaded worker) from the first reload under this worker on.
 */
function isolated(response) {
  if (response.type === 'opaque' || response.status === 0) return response;
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

/** The network's answer (kept when it is a whole 200), or the kept copy when there is no network. */
async function networkFirst(request) {
  const navigation = request.mode === 'navigate';
  try {
    const response = await fetch(request);
    // The datasets are kept by the training worker itself (data.rs), once; the rest here.
    const dataset = new URL(request.url).pathname.includes('/data/');
    if (response.ok && response.status === 200 && !dataset) {
      const cache = await caches.open(APP_CACHE);
      // A navigation is kept as the page itself: its query string only carries settings.
      await cache.put(navigation ? './' : request, response.clone()).catch(() => {});
    }
    return response;
  } catch (offline) {
    // The workers' scripts carry their settings in the query (`?threads=2`): any query matches.
    const kept = await caches.match(navigation ? './' : request, { ignoreSearch: true });
    if (kept) return kept;
    throw offline;
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(networkFirst(request).then(isolated));
});
