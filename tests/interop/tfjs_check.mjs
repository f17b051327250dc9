// Loads fashion-gpu's TF.js export with TF.js itself and scores it on the Fashion-MNIST test set.
//
//   node tests/interop/tfjs_check.mjs DATA_DIR [--sabotage transpose|epsilon] FILE...
//
// DATA_DIR holds t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (gzipped or not). Each FILE
// is a `model.json` with its weights shard beside it, or the zip `fashion-gpu export` writes
// (the two files in one). `tf.loadLayersModel` of @tensorflow/tfjs loads it through its HTTP
// loader, as a page would from a server: a fetch function
// serves the files, so the loader itself reads model.json, follows its weightsManifest's paths
// and hands each weight to its layer by name. For each FILE one line goes to stdout:
//
//   FILE RIGHT LOSS
//
// RIGHT: test images whose most probable class is their label (of 10,000); LOSS: the mean of
// -ln p[label], in float64 from TF.js's float32 probabilities, 8 decimals. The first model's
// summary goes to stderr.
//
// TF.js computes on its WebAssembly CPU backend (@tensorflow/tfjs-backend-wasm, its .wasm inside
// the npm package), or with TFJS_BACKEND=cpu on its plain-JavaScript one: the same figures, but
// about 26× slower (the CNN's 10,000 images: 158.5 s there, 5.6–6.4 s in wasm, one run on a
// 2-core machine). Which backend computes does not change how the file is loaded.
//
// --sabotage makes the files wrong the way an exporter bug would, before TF.js reads them:
//   transpose  the first kernel's values written in reversed axis order (a Dense kernel as
//              [units, inputs], a Conv2D kernel as [filters, channels, k, k]), its shape kept;
//   epsilon    every BatchNormalization's epsilon set to 1e-5 (Keras 3's default is 1e-3; 1e-5
//              is PyTorch's) — an error for a model without one.

import { readFileSync, existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gunzipSync, inflateRawSync } from 'node:zlib';

import * as tf from '@tensorflow/tfjs';

const MODEL_FILE = 'model.json';
const PREDICT_BATCH = 500;
const SABOTAGES = ['transpose', 'epsilon'];
const WRONG_EPSILON = 1e-5;

function usage(problem) {
  console.error(`${problem}\nusage: node tfjs_check.mjs DATA_DIR [--sabotage ${SABOTAGES.join('|')}] FILE...`);
  process.exit(2);
}

// One IDX file of DATA_DIR (`name` or `name.gz`): its dimensions and its bytes.
function readIdx(dataDir, name, magic) {
  const plain = join(dataDir, name);
  const bytes = existsSync(plain) ? readFileSync(plain) : gunzipSync(readFileSync(`${plain}.gz`));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0) !== magic) throw new Error(`${plain}: not an IDX file of magic ${magic.toString(16)}`);
  const rank = magic & 0xff;
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const values = bytes.subarray(4 + 4 * rank);
  if (values.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`${plain}: ${values.length} bytes for ${dims}`);
  return { dims, values };
}

// The entries of a zip archive (stored or deflated), read through its central directory.
function readZip(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = bytes.length - 22;
  while (end >= 0 && view.getUint32(end, true) !== 0x06054b50) end--;
  if (end < 0) throw new Error('not a zip archive (no end of central directory)');
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const entries = new Map();
  for (let i = 0; i < count; i++) {
    if (view.getUint32(at, true) !== 0x02014b50) throw new Error('broken zip central directory');
    const method = view.getUint16(at + 10, true);
    const compressedSize = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const localHeader = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    const dataStart = localHeader + 30 + view.getUint16(localHeader + 26, true) + view.getUint16(localHeader + 28, true);
    const data = bytes.subarray(dataStart, dataStart + compressedSize);
    if (method === 0) entries.set(name, data);
    else if (method === 8) entries.set(name, new Uint8Array(inflateRawSync(data)));
    else throw new Error(`zip entry ${name}: compression method ${method} (only stored and deflate)`);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

// The export's files by name: model.json and the weight shards its manifest names.
function readExport(file) {
  if (file.toLowerCase().endsWith('.zip')) return readZip(readFileSync(file));
  const files = new Map([[MODEL_FILE, readFileSync(file)]]);
  const { weightsManifest } = JSON.parse(files.get(MODEL_FILE));
  for (const path of weightsManifest.flatMap((group) => group.paths)) {
    files.set(path, readFileSync(join(dirname(file), path)));
  }
  return files;
}

// `values` (row-major, of `shape`) written in reversed axis order, the shape unchanged.
function reverseAxes(values, shape) {
  const strides = shape.map((_, axis) => shape.slice(axis + 1).reduce((a, b) => a * b, 1));
  const reversedStrides = shape.map((_, axis) => shape.slice(0, axis).reduce((a, b) => a * b, 1));
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    let j = 0;
    for (let axis = 0; axis < shape.length; axis++) j += (Math.floor(i / strides[axis]) % shape[axis]) * reversedStrides[axis];
    out[j] = values[i];
  }
  return out;
}

function sabotage(files, kind) {
  const modelJson = JSON.parse(new TextDecoder().decode(files.get(MODEL_FILE)));
  if (kind === 'epsilon') {
    const batchNorms = modelJson.modelTopology.config.layers.filter((l) => l.class_name === 'BatchNormalization');
    if (batchNorms.length === 0) throw new Error('--sabotage epsilon: the model has no BatchNormalization layer');
    for (const layer of batchNorms) layer.config.epsilon = WRONG_EPSILON;
  } else {
    const [group] = modelJson.weightsManifest;
    const shard = files.get(group.paths[0]);
    let offset = 0;
    for (const weight of group.weights) {
      const length = weight.shape.reduce((a, b) => a * b, 1);
      if (weight.name.endsWith('/kernel')) {
        const values = new Float32Array(new Uint8Array(shard.subarray(offset, offset + 4 * length)).buffer);
        shard.set(new Uint8Array(reverseAxes(values, weight.shape).buffer), offset);
        break;
      }
      offset += 4 * length;
    }
  }
  files.set(MODEL_FILE, new TextEncoder().encode(JSON.stringify(modelJson)));
}

// A fetch that answers the loader's requests from `files` (by the requested path's last part).
function serve(files) {
  return async (url) => {
    const name = url.slice(url.lastIndexOf('/') + 1);
    const bytes = files.get(name);
    return bytes ? new Response(bytes) : new Response(null, { status: 404, statusText: `${name} is not in the export` });
  };
}

async function main() {
  const args = process.argv.slice(2);
  const sabotageAt = args.indexOf('--sabotage');
  let kind = null;
  if (sabotageAt >= 0) {
    kind = args[sabotageAt + 1];
    if (!SABOTAGES.includes(kind)) usage(`--sabotage takes ${SABOTAGES.join(' or ')}, not ${kind}`);
    args.splice(sabotageAt, 2);
  }
  const [dataDir, ...files] = args;
  if (!dataDir || files.length === 0) usage('a data folder and at least one model file are needed');

  const images = readIdx(dataDir, 't10k-images-idx3-ubyte', 0x803);
  const labels = readIdx(dataDir, 't10k-labels-idx1-ubyte', 0x801).values;
  const [count, rows, cols] = images.dims;
  if (labels.length !== count) throw new Error(`${dataDir}: ${count} test images but ${labels.length} labels`);
  const pixels = Float32Array.from(images.values, (p) => p / 255);

  const backend = process.env.TFJS_BACKEND ?? 'wasm';
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js has no ${backend} backend here`);
  for (const [index, file] of files.entries()) {
    const exported = readExport(file);
    if (kind) sabotage(exported, kind);
    const model = await tf.loadLayersModel(tf.io.http(`${basename(file)}/${MODEL_FILE}`, { fetchFunc: serve(exported) }));
    if (index === 0) model.summary(undefined, undefined, (line) => console.error(line));
    const inputShape = [count, ...model.inputs[0].shape.slice(1)];
    if (inputShape.slice(1).reduce((a, b) => a * b, 1) !== rows * cols) {
      throw new Error(`${file}: the model takes ${model.inputs[0].shape}, not ${rows}×${cols} images`);
    }
    const probabilities = tf.tidy(() => model.predict(tf.tensor(pixels, inputShape), { batchSize: PREDICT_BATCH }));
    const p = await probabilities.data();
    const classes = probabilities.shape[1];
    probabilities.dispose();
    model.dispose();
    let right = 0;
    let loss = 0;
    for (let i = 0; i < count; i++) {
      const row = p.subarray(i * classes, (i + 1) * classes);
      let best = 0;
      for (let c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
      if (best === labels[i]) right++;
      loss -= Math.log(row[labels[i]]);
    }
    console.log(`${file} ${right} ${(loss / count).toFixed(8)}`);
  }
}

main().catch((error) => {
  console.error(error.stack ?? String(error));
  process.exit(1);
});
