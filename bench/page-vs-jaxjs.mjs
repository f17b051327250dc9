// The page's CPU path against jax-js (issue 24) in one run on this machine, in the same headless
// Chromium, interleaved over ROUNDS rounds (each round in another order), every page
// cross-origin isolated (web/serve.py's default): the baseline MLP 784-256-128-10, Adam 1e-3,
// batch 100, the first 12,000 Fashion-MNIST training images for 2 epochs; each figure is the 2nd
// epoch's samples/s (the 1st holds the warm-up: wasm compiles, jit traces).
//   app_cpu_1_thread:    ?autostart=1&train_limit=12000&epochs=2&backend=cpu&threads=1
//   app_cpu_threads:     the same on every thread the page is given (no threads=1)
//   jaxjs_wasm_threads:  bench/jaxjs, jax-js's wasm device, its kernels on its worker pool
//                        (navigator.hardwareConcurrency workers; the page counts them): the
//                        peer issue 24 names;
//   jaxjs_wasm_1_thread: the same page served without COOP/COEP (serve.py --not-isolated): no
//                        SharedArrayBuffer, so jax-js runs its kernels on the page's thread,
//                        which on a small machine can beat its worker pool (a kernel's dispatch
//                        is a message round trip to each worker): jax-js's other configuration.
// jax-js's page reads the same gzipped IDX files the app serves (DIST/data/fashion/, else
// web/data/fashion/, else /usr/share/datasets/fashion-mnist/), served beside it from a
// temporary folder of links.
// Prints one JSON line per measurement, then a Markdown table of the medians and their ratios.
//
// usage: node bench/page-vs-jaxjs.mjs DIST [ROUNDS]
//   (DIST: a `trunk build --release` output with its threaded worker, fashion-worker-threads*;
//    playwright-core from tests/e2e/node_modules; jax-js: `npm install` in bench/jaxjs;
//    CHROMIUM=path overrides /usr/bin/chromium; ONLY=jaxjs measures jax-js's page alone;
//    BEFORE=DIST2 adds DIST2's CPU path on every thread (a change's before, in the same run);
//    SCREENSHOT=file.png saves jax-js's threaded page as its last round left it)
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'tests/e2e/package.json'));
const { chromium } = require('playwright-core');

const args = process.argv.slice(2);
const rounds = /^\d+$/.test(args.at(-1) ?? '') ? Number(args.pop()) : 3;
const [distArg] = args;
if (!distArg) {
  console.error('usage: node bench/page-vs-jaxjs.mjs DIST [ROUNDS]');
  process.exit(2);
}
const dist = resolve(distArg);
const only = process.env.ONLY;
const TIMEOUT_MS = 600_000;
// APP_QUERY=… adds settings to the app's link (e.g. batch=1000; jax-js keeps batch 100).
const QUERY = `autostart=1&train_limit=12000&epochs=2&backend=cpu${process.env.APP_QUERY ? `&${process.env.APP_QUERY}` : ''}`;

const peerDir = join(root, 'bench/jaxjs');
if (!existsSync(join(peerDir, 'node_modules/@jax-js/jax/package.json'))) {
  console.error('jax-js is missing: run `npm install --no-audit --no-fund` in bench/jaxjs');
  process.exit(2);
}
const dataDir = [join(dist, 'data/fashion'), join(root, 'web/data/fashion'), '/usr/share/datasets/fashion-mnist']
  .find((dir) => existsSync(join(dir, 'train-images-idx3-ubyte.gz')));
if (!dataDir) {
  console.error('no Fashion-MNIST (train-images-idx3-ubyte.gz) in DIST/data/fashion, web/data/fashion or /usr/share/datasets/fashion-mnist');
  process.exit(2);
}
if (only !== 'jaxjs' && !existsSync(join(dist, 'index.html'))) {
  console.error(`${dist} holds no built app (index.html)`);
  process.exit(2);
}

/** Serves `dir` with web/serve.py on a free port (COOP/COEP, cross-origin isolated, unless
 * `extra` says --not-isolated). */
async function inPage(browser, url, run) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  try {
    await page.goto(url);
    return await run(page);
  } finally {
    await context.close();
  }
}

async function finalStatus(page) {
  await page.waitForFunction(
    () => /^(done|error)/.test(document.querySelector('[data-testid=status]')?.textContent?.trim() ?? ''),
    null,
    { timeout: TIMEOUT_MS, polling: 250 },
  );
  return (await page.getByTestId('status').textContent()).trim();
}

/** The app's CPU training run: its epoch rows (the table's samples/s column) and adapter line. */
async function app(page) {
  const status = await finalStatus(page);
  if (status !== 'done') {
    const error = page.getByTestId('error');
    throw new Error(`the app's CPU training ended with ${status}: ${(await error.count()) ? await error.textContent() : ''}`);
  }
  const epochs = await page.getByTestId('epoch-row').evaluateAll((trs) => trs.map((tr) => ({
    epoch: Number(tr.dataset.epoch),
    samples_per_second: Number(tr.querySelectorAll('td')[5].textContent),
    loss: Number(tr.dataset.loss),
    train_accuracy: Number(tr.dataset.trainAccuracy),
    test_accuracy: Number(tr.dataset.testAccuracy),
  })));
  const adapter = (await page.getByTestId('adapter').textContent()).trim();
  const isolated = await page.evaluate(() => self.crossOriginIsolated);
  return { adapter, cross_origin_isolated: isolated, epochs };
}

/** jax-js's page: its #result JSON (per-epoch figures, threads, backend). */
async function jaxjs(page) {
  await finalStatus(page);
  const report = JSON.parse((await page.locator('#result').textContent()).trim());
  if (report.error) throw new Error(`jax-js: ${report.error}`);
  if (process.env.SCREENSHOT && report.cross_origin_isolated) {
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  }
  return report;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const servers = [];
const links = mkdtempSync(join(tmpdir(), 'jaxjs-peer-'));
try {
  // jax-js's page and the data, one origin: a folder of links (serve.py follows them).
  symlinkSync(join(peerDir, 'index.html'), join(links, 'index.html'));
  symlinkSync(join(peerDir, 'node_modules'), join(links, 'node_modules'));
  mkdirSync(join(links, 'data'));
  symlinkSync(dataDir, join(links, 'data/fashion'));
  const [peer, peerServer] = await serve(links);
  const [plainPeer, plainPeerServer] = await serve(links, ['--not-isolated']);
  servers.push(peerServer, plainPeerServer);
  const measurements = [
    ['jaxjs_wasm_threads', `${peer}index.html`, jaxjs],
    ['jaxjs_wasm_1_thread', `${plainPeer}index.html`, jaxjs],
  ];
  if (only !== 'jaxjs') {
    const [base, appServer] = await serve(dist);
    servers.push(appServer);
    measurements.unshift(
      ['app_cpu_1_thread', `${base}?${QUERY}&threads=1`, app],
      ['app_cpu_threads', `${base}?${QUERY}`, app],
    );
    // BEFORE=DIST: another build's CPU path on every thread, interleaved with the rest.
    if (process.env.BEFORE) {
      const [before, beforeServer] = await serve(resolve(process.env.BEFORE));
      servers.push(beforeServer);
      measurements.push(['before_app_cpu_threads', `${before}?${QUERY}`, app]);
    }
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--headless=new', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
  const figures = Object.fromEntries(measurements.map(([name]) => [name, []]));
  const notes = {};
  for (let round = 1; round <= rounds; round++) {
    const shift = (round - 1) % measurements.length;
    for (const [name, url, read] of [...measurements.slice(shift), ...measurements.slice(0, shift)]) {
      const report = await inPage(browser, url, read);
      const second = report.epochs[1] ?? report.epochs.at(-1);
      figures[name].push(second.samples_per_second);
      notes[name] = report.adapter ?? `jax-js ${report.framework.split(' ')[1]} ${report.backend}, ${report.threads} thread${report.threads === 1 ? '' : 's'}`;
      console.log(JSON.stringify({ round, measurement: name, samples_per_second: second.samples_per_second, ...report }));
    }
  }
  await browser.close();

  const m = Object.fromEntries(Object.entries(figures).map(([name, xs]) => [name, median(xs)]));
  const rows = [
    ['app_cpu_1_thread', "app's CPU path, threads=1"],
    ['app_cpu_threads', "app's CPU path, every thread"],
    ['before_app_cpu_threads', "BEFORE's CPU path, every thread"],
    ['jaxjs_wasm_threads', 'jax-js, wasm, threaded (cross-origin isolated)'],
    ['jaxjs_wasm_1_thread', 'jax-js, wasm, not isolated (page thread)'],
  ].filter(([name]) => name in m);
  console.log(`\n| ${rounds} round${rounds === 1 ? '' : 's'}, 2nd epoch of 12,000 | samples/s (median) | per round | threads |`);
  console.log('|---|---:|---|---|');
  for (const [name, label] of rows) {
    console.log(`| ${label} | ${Math.round(m[name])} | ${figures[name].join(', ')} | ${notes[name]} |`);
  }
  const ratio = (a, b) => (a in m && b in m ? (m[a] / m[b]).toFixed(2) : '–');
  console.log('');
  console.log(`| ratio of the medians | × |\n|---|---:|`);
  console.log(`| jax-js threaded / jax-js unthreaded | ${ratio('jaxjs_wasm_threads', 'jaxjs_wasm_1_thread')} |`);
  if (only !== 'jaxjs') {
    console.log(`| app threads / app one thread | ${ratio('app_cpu_threads', 'app_cpu_1_thread')} |`);
    if ('before_app_cpu_threads' in m) console.log(`| app threads / BEFORE's threads | ${ratio('app_cpu_threads', 'before_app_cpu_threads')} |`);
    console.log(`| app threads / jax-js | ${ratio('app_cpu_threads', 'jaxjs_wasm_threads')} |`);
    console.log(`| app one thread / jax-js | ${ratio('app_cpu_1_thread', 'jaxjs_wasm_threads')} |`);
    console.log(`| app threads / jax-js unthreaded | ${ratio('app_cpu_threads', 'jaxjs_wasm_1_thread')} |`);
    console.log(`| app one thread / jax-js unthreaded | ${ratio('app_cpu_1_thread', 'jaxjs_wasm_1_thread')} |`);
    const target = m.app_cpu_threads / m.jaxjs_wasm_threads;
    console.log(`\nissue 24 (app threads ≥ 1.5 × jax-js threaded): ${target >= 1.5 ? 'met' : 'not met'} (${target.toFixed(2)}×)`);
  }
} finally {
  servers.forEach((s) => s.kill());
  rmSync(links, { recursive: true, force: true });
}
