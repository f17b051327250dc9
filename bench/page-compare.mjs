// The page's figures for two builds of the app in one run on this machine, interleaved, so a
// change's before and after meet the same load. For each path (WebGPU: SwiftShader here; the
// CPU path), the baseline trained 2 epochs of 12,000 images from a first visit: the first
// training step after page load (first-step-ms), the last epoch's samples/s, and what the
// page's main thread went through meanwhile (Long Tasks API entries of 50 ms or more, and how
// late a 20 ms interval fired at worst); then ?bench=1's samples/s on WebGPU.
//
// usage: node bench/page-compare.mjs DIST_BEFORE DIST_AFTER [ROUNDS]
//   (playwright-core from tests/e2e/node_modules: run tests/e2e/run.sh once first)
// Each round opens each build in a fresh browser context (an empty dataset cache, as a first
// visit) and prints one JSON line per build; the last line is the medians of each.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'tests/e2e/package.json'));
const { chromium } = require('playwright-core');

const [before, after, roundsArg] = process.argv.slice(2);
if (!before || !after) {
  console.error('usage: node bench/page-compare.mjs DIST_BEFORE DIST_AFTER [ROUNDS]');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 2);
const TIMEOUT_MS = 300_000;

async function waitForStatus(page, testId, done) {
  await page.waitForFunction(
    ([id, ends]) => {
      const text = document.querySelector(`[data-testid=${id}]`)?.textContent?.trim() ?? '';
      return ends.some((end) => text === end || text.startsWith(end));
    },
    [testId, done],
    { timeout: TIMEOUT_MS, polling: 250 },
  );
}

/** Installed before the page's first script: long tasks and a 20 ms interval's lateness. */
function watchMainThread() {
  const watch = { longTasks: [], worstLateMs: 0 };
  window.__mainThread = watch;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) watch.longTasks.push(entry.duration);
  }).observe({ type: 'longtask', buffered: true });
  let last = performance.now();
  setInterval(() => {
    const now = performance.now();
    watch.worstLateMs = Math.max(watch.worstLateMs, now - last - 20);
    last = now;
  }, 20);
}

async function train(browser, base, backend) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  await page.addInitScript(watchMainThread);
  await page.goto(`${base}?autostart=1&train_limit=12000&epochs=2&backend=${backend}`);
  await waitForStatus(page, 'status', ['done', 'error']);
  const firstStepMs = Number(await page.getByTestId('first-step-ms').getAttribute('data-ms'));
  const epochSamples = Number((await page.getByTestId('samples-per-sec').textContent()).trim());
  const watch = await page.evaluate(() => window.__mainThread);
  await context.close();
  const round = (x) => Math.round(x);
  return {
    [`${backend}_first_step_ms`]: round(firstStepMs),
    [`${backend}_epoch_samples_per_sec`]: epochSamples,
    [`${backend}_long_tasks`]: watch.longTasks.length,
    [`${backend}_longest_task_ms`]: round(Math.max(0, ...watch.longTasks)),
    [`${backend}_blocking_ms`]: round(watch.longTasks.reduce((sum, d) => sum + d - 50, 0)),
    [`${backend}_worst_interval_late_ms`]: round(watch.worstLateMs),
  };
}

async function measure(browser, base) {
  const figures = { ...(await train(browser, base, 'gpu')), ...(await train(browser, base, 'cpu')) };
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  await page.goto(`${base}?bench=1&bench_steps=100`);
  await waitForStatus(page, 'bench-status', ['done', 'error']);
  const report = JSON.parse(await page.getByTestId('bench-json').textContent());
  await context.close();
  return { ...figures, bench_samples_per_sec: report.samples_per_second };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const servers = [];
try {
  const builds = [];
  for (const [name, dir] of [['before', before], ['after', after]]) {
    const [base, server] = await serve(dir);
    servers.push(server);
    builds.push({ name, base, runs: [] });
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--headless=new', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
  for (let round = 1; round <= rounds; round++) {
    for (const build of builds) {
      const figures = await measure(browser, build.base);
      build.runs.push(figures);
      console.log(JSON.stringify({ round, build: build.name, ...figures }));
    }
  }
  await browser.close();
  const medians = Object.fromEntries(builds.map((b) => [b.name, Object.fromEntries(
    Object.keys(b.runs[0]).map((k) => [k, median(b.runs.map((r) => r[k]))]))]));
  console.log(JSON.stringify({ medians }));
} finally {
  servers.forEach((s) => s.kill());
}
