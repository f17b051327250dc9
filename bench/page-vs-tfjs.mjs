// The page against TensorFlow.js in one run on this machine, in the same headless Chromium,
// interleaved over ROUNDS rounds: the baseline MLP at batch 100.
//   ours: ?bench=1&backend=cpu (the fast CPU kernels in wasm, SIMD128), ?bench=1 (WebGPU:
//         SwiftShader here), and a real CPU training run (?backend=cpu, 2nd epoch of 12,000
//         images) with the longest main-thread task seen while it trained;
//   TF.js 4.22 (bench/tfjs): model.fit's 2nd epoch on the wasm (SIMD + threads), webgl and cpu
//         backends.
// Both are served by python3 web/serve.py, which sends COOP/COEP (cross-origin isolation): the
// app's CPU path then trains in its threaded worker, and TF.js's wasm threads load: the best
// case of each. (Runs before 2026-12-06 served the app without the headers.)
//
// usage: node bench/page-vs-tfjs.mjs DIST [DIST_BEFORE] [ROUNDS]
//   (DIST: a `trunk build --release` output; DIST_BEFORE: an older build measured in the same
//    rounds, for a before/after; playwright-core from tests/e2e/node_modules; TF.js: `npm
//    install` in bench/tfjs)
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'tests/e2e/package.json'));
const { chromium } = require('playwright-core');

const args = process.argv.slice(2);
const rounds = /^\d+$/.test(args.at(-1) ?? '') ? Number(args.pop()) : 3;
const [dist, distBefore] = args;
if (!dist) {
  console.error('usage: node bench/page-vs-tfjs.mjs DIST [DIST_BEFORE] [ROUNDS]');
  process.exit(2);
}
const TIMEOUT_MS = 600_000;

async function textOf(page, selector, done) {
  await page.waitForFunction(
    ([sel, ends]) => {
      const text = document.querySelector(sel)?.textContent?.trim() ?? '';
      return ends.some((end) => text.startsWith(end));
    },
    [selector, done],
    { timeout: TIMEOUT_MS, polling: 250 },
  );
  return (await page.locator(selector).textContent()).trim();
}

async function inPage(browser, url, run) {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The main thread's long tasks (Long Tasks API: tasks ≥ 50 ms), with their start times.
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__longTasks.push([entry.startTime, entry.duration]);
    }).observe({ type: 'longtask', buffered: true });
  });
  try {
    await page.goto(url);
    return await run(page);
  } finally {
    await context.close();
  }
}

const ourBench = (backend) => async (page) => {
  await textOf(page, '[data-testid=bench-status]', ['done', 'error']);
  const report = JSON.parse(await page.getByTestId('bench-json').textContent());
  return report.samples_per_second;
};

/** A CPU training run: the 2nd epoch's samples/s, and the longest main-thread task from the
 * first training step on (loading and decoding the dataset before it are not training). */
async function ourTraining(page) {
  await textOf(page, '[data-testid=status]', ['training', 'done', 'error']);
  const trainingFrom = await page.evaluate(() => performance.now());
  const status = await textOf(page, '[data-testid=status]', ['done', 'error']);
  if (status !== 'done') throw new Error(`the CPU training ended with ${status}`);
  const samplesPerSecond = Number((await page.getByTestId('samples-per-sec').textContent()).trim());
  const longestTaskMs = await page.evaluate(
    (from) => Math.max(0, ...window.__longTasks.filter(([start]) => start >= from).map(([, ms]) => ms)),
    trainingFrom,
  );
  return { samplesPerSecond, longestTaskMs };
}

async function tfjs(page) {
  const report = JSON.parse(await textOf(page, '#result', ['{']));
  if (report.error) throw new Error(`TF.js: ${report.error}`);
  return report;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const servers = [];
try {
  const [app, appServer] = await serve(dist);
  const [peer, peerServer] = await serve(join(root, 'bench/tfjs'), ['--cross-origin-isolated']);
  servers.push(appServer, peerServer);
  const builds = [['', app]];
  if (distBefore) {
    const [before, beforeServer] = await serve(distBefore);
    servers.push(beforeServer);
    builds.push(['before_', before]);
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--headless=new', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
  const runs = [];
  for (let round = 1; round <= rounds; round++) {
    const figures = {};
    for (const [prefix, base] of builds) {
      // Before 2a9b76b, ?bench=1 ignored backend=cpu: an older build's CPU figure is its epoch's.
      if (!prefix) {
        figures.ours_cpu_bench = await inPage(browser, `${base}?bench=1&backend=cpu&bench_steps=60`, ourBench('cpu'));
      }
      figures[`${prefix}ours_webgpu_bench`] = await inPage(browser, `${base}?bench=1&bench_steps=60`, ourBench('gpu'));
      const url = `${base}?autostart=1&backend=cpu&train_limit=12000&epochs=2`;
      const training = await inPage(browser, url, ourTraining);
      figures[`${prefix}ours_cpu_epoch`] = training.samplesPerSecond;
      figures[`${prefix}ours_cpu_longest_task_ms`] = Math.round(training.longestTaskMs);
    }
    for (const [backend, samples] of [['wasm', 6000], ['webgl', 6000], ['cpu', 1000]]) {
      const report = await inPage(browser, `${peer}?backend=${backend}&samples=${samples}`, tfjs);
      figures[`tfjs_${backend}`] = report.samples_per_second;
      if (backend === 'wasm') {
        figures.tfjs_wasm_threads = report.threads;
        figures.tfjs_cross_origin_isolated = report.cross_origin_isolated;
      }
    }
    runs.push(figures);
    console.log(JSON.stringify({ round, ...figures }));
  }
  await browser.close();
  const m = Object.fromEntries(Object.keys(runs[0]).map((k) => [k, median(runs.map((r) => r[k]))]));
  const ours = Math.max(m.ours_cpu_bench, m.ours_webgpu_bench, m.ours_cpu_epoch);
  const theirs = Math.max(m.tfjs_wasm, m.tfjs_webgl, m.tfjs_cpu);
  console.log(JSON.stringify({
    medians: m,
    cpu_over_tfjs_wasm: +(Math.max(m.ours_cpu_bench, m.ours_cpu_epoch) / m.tfjs_wasm).toFixed(2),
    best_over_tfjs_best: +(ours / theirs).toFixed(2),
  }));
} finally {
  servers.forEach((s) => s.kill());
}
