#!/usr/bin/env bash
# Builds the web app and serves it on http://127.0.0.1:8080 (PORT=... to change).
# On a fresh Debian 12 machine (as root) it first installs what the build needs: see
# scripts/setup-web.sh. Nothing is downloaded by the build itself (trunk --offline).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${PORT:-8080}"

"$repo_root/scripts/setup-web.sh"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export PATH="$repo_root/web/tools/node_modules/.bin:$PATH"

cd "$repo_root"
trunk build --release --offline

echo
echo "fashion-gpu: serving $repo_root/dist at http://127.0.0.1:$port/  (Ctrl-C stops)"
echo "  e.g. http://127.0.0.1:$port/?dataset=fashion&model=baseline&epochs=1&train_limit=3000&autostart=1"
exec python3 web/serve.py dist "$port"
