// What the page benchmarks share: web/serve.py started on a free port.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Serves `dir` with web/serve.py on a free port, cross-origin isolated (COOP/COEP) unless
 * `extra` holds --not-isolated; resolves to [base URL, the server's process].
 */
export function serve(dir, extra = []) {
  return new Promise((resolve, reject) => {
    const server = spawn('python3', [join(root, 'web/serve.py'), dir, '0', ...extra]);
    server.stdout.once('data', (line) => resolve([String(line).split('\n')[0].trim(), server]));
    server.once('error', reject);
  });
}
