#!/usr/bin/env bash
# End-to-end browser tests of the web app. Installs what is missing (scripts/setup-web.sh,
# Debian chromium, npm playwright-core and axe-core; never a downloaded browser), builds the app with
# `trunk build --release --offline`, serves dist/ on a free localhost port and runs
# tests/e2e/app.test.mjs in headless Chromium (WebGPU on SwiftShader when there is no GPU).
# Screenshots go to tests/artifacts/. Ends with "N passed, N failed"; exits non-zero on failure.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
e2e="$repo_root/tests/e2e"
cd "$repo_root"

"$repo_root/scripts/setup-web.sh" >/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export PATH="$repo_root/web/tools/node_modules/.bin:$PATH"

if [ ! -x /usr/bin/chromium ]; then
    [ "$(id -u)" -eq 0 ] || { echo "e2e: install chromium (apt-get install -y chromium) or run as root" >&2; exit 1; }
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
if [ ! -f "$e2e/node_modules/playwright-core/package.json" ] || [ ! -f "$e2e/node_modules/axe-core/axe.min.js" ]; then
    (cd "$e2e" && npm install --no-audit --no-fund --silent)
fi

echo "e2e: building the native harness (weights files must go both ways)"
cargo build -q -p fashion-gpu
export NATIVE_BIN="$repo_root/target/debug/fashion-gpu"

echo "e2e: building the app"
trunk build --release --offline

server_log="$(mktemp)"
python3 "$repo_root/web/serve.py" "$repo_root/dist" 0 >"$server_log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$server_log"' EXIT
base_url=""
for _ in $(seq 50); do
    base_url="$(head -n 1 "$server_log")"
    [ -n "$base_url" ] && break
    sleep 0.1
done
[ -n "$base_url" ] || { echo "e2e: the static server did not start"; echo "0 passed, 1 failed"; exit 1; }
echo "e2e: serving dist/ at $base_url"

status=0
BASE_URL="$base_url" ARTIFACTS_DIR="$repo_root/tests/artifacts" timeout 900 node "$e2e/app.test.mjs" || status=$?
if [ "$status" -eq 124 ]; then
    echo "e2e: the browser tests ran past 15 minutes"
    echo "0 passed, 1 failed"
fi
exit "$status"
