// How much a second core gives the page's wasm on this machine, whatever the threading: the
// page's CPU path on one thread alone, then two such pages training at once (two contexts of the
// same headless Chromium: work that shares nothing), then one page on every thread it is given,
// interleaved over ROUNDS rounds. The baseline MLP, 2 epochs of the first 12,000 Fashion-MNIST
// training images, cross-origin isolated (web/serve.py); each figure is the 2nd epoch's
// samples/s. Prints one JSON line per round: if the two pages together make less than 2× one
// page, that is the most any threading of one page can reach here.
//
// usage: node bench/page-two-pages.mjs DIST [ROUNDS]
//   (DIST: a `trunk build --release` output with its threaded worker; playwright-core from
//    tests/e2e/node_modules; APP_QUERY=batch=1000 adds to the app's query; CHROMIUM=path)
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './serve.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'tests/e2e/package.json'));
const { chromium } = require('playwright-core');

const [dist, roundsArg] = process.argv.slice(2);
if (!dist) {
  console.error('usage: node bench/page-two-pages.mjs DIST [ROUNDS]');
  process.exit(2);
}
const rounds = Number(roundsArg ?? 3);
const query = ['autostart=1&train_limit=12000&epochs=2&backend=cpu', process.env.APP_QUERY].filter(Boolean).join('&');

const [base, server] = await serve(resolve(dist));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--headless=new', '--disable-background-networking', '--no-first-run'],
});

/** The 2nd epoch's samples/s of one page trained with `threads` (a fresh context each). */
async function train(threads) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${base}?${query}${threads ? `&threads=${threads}` : ''}`);
    await page.waitForFunction(
      () => ['done', 'error'].includes(document.querySelector('[data-testid=status]')?.textContent?.trim()),
      null,
      { timeout: 600_000 },
    );
    const perEpoch = await page.getByTestId('epoch-row').evaluateAll((trs) => trs.map((tr) => Number(tr.querySelectorAll('td')[5].textContent)));
    if (perEpoch.length === 0) throw new Error(`no epoch trained at ${page.url()}`);
    return perEpoch.at(-1);
  } finally {
    await context.close();
  }
}

try {
  for (let round = 1; round <= rounds; round++) {
    const alone = await train(1);
    const pair = await Promise.all([train(1), train(1)]);
    const threaded = await train(0);
    console.log(JSON.stringify({
      round,
      one_page_one_thread: alone,
      two_pages_one_thread_each: pair,
      two_pages_over_one: Number(((pair[0] + pair[1]) / alone).toFixed(2)),
      one_page_every_thread: threaded,
      every_thread_over_one: Number((threaded / alone).toFixed(2)),
    }));
  }
} finally {
  await browser.close();
  server.kill();
}
