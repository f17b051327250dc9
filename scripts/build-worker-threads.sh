#!/usr/bin/env bash
# Builds the page's threaded training worker: the same worker (crates/app, bin fashion-worker)
# with the `threads` feature, so that the CPU path trains on rayon's pool of Web Workers sharing
# one wasm memory (wasm-bindgen-rayon). Threads in wasm need what stable Rust lacks: std rebuilt
# with atomics (`-Z build-std`), so this build uses the pinned nightly below, which
# scripts/setup-web.sh installs (minimal profile + rust-src). Without it the build is skipped
# with a message, and the page trains on one thread and says why (crates/app/src/page/link.rs).
#
# Trunk runs it after each build (Trunk.toml's post_build hook) into $TRUNK_STAGING_DIR; by hand:
# scripts/build-worker-threads.sh [OUT] (default dist/). Its files sit beside the page's as
# fashion-worker-threads{_loader.js,.js,_bg.wasm} (and wasm-bindgen-rayon's snippet under
# snippets/): the worker resolves the page's relative URLs (data/…) against its own.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
toolchain=nightly-2026-05-20
if [ -n "${1:-}" ]; then
    out="$1"
elif [ -n "${TRUNK_STAGING_DIR:-}" ]; then
    out="$TRUNK_STAGING_DIR"
else
    out="$repo_root/dist"
fi
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

if ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src'; then
    echo "build-worker-threads: skipped: $toolchain with rust-src is not installed (scripts/setup-web.sh" \
        "installs it); the page's CPU path trains on one thread" >&2
    exit 0
fi

# Shared memory for the threads: atomics in the code (+atomics, +bulk-memory, +mutable-globals),
# a memory imported and shared (up to 4 GiB), and the thread-local storage symbols wasm-bindgen
# sets up on each thread; SIMD128 as in the one-thread build (.cargo/config.toml, which RUSTFLAGS
# overrides).
link_args=(--shared-memory --import-memory --max-memory=4294967296
    --export=__wasm_init_tls --export=__tls_size --export=__tls_align --export=__tls_base)
RUSTFLAGS="-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals"
for arg in "${link_args[@]}"; do RUSTFLAGS+=" -C link-arg=$arg"; done
export RUSTFLAGS
target_dir="$repo_root/target/threads"
echo "build-worker-threads: building the threaded worker with $toolchain"
(cd "$repo_root" && cargo "+$toolchain" build --release --quiet --target wasm32-unknown-unknown \
    -p fashion-app --bin fashion-worker --features threads -Z build-std=panic_abort,std --target-dir "$target_dir")

mkdir -p "$out"
rm -rf "$out"/fashion-worker-threads* "$out"/snippets/wasm-bindgen-rayon-*
wasm-bindgen --target web --no-typescript --out-dir "$out" --out-name fashion-worker-threads \
    "$target_dir/wasm32-unknown-unknown/release/fashion-worker.wasm"
cat >"$out/fashion-worker-threads_loader.js" <<'JS'
// The threaded training worker's module script (scripts/build-worker-threads.sh): loads the
// worker's wasm, whose start (crates/app/src/worker) reads `?threads=n` from this script's URL.
import init from './fashion-worker-threads.js';
await init({ module_or_path: new URL('fashion-worker-threads_bg.wasm', import.meta.url) });
JS
echo "build-worker-threads: $(du -ch "$out"/fashion-worker-threads* | tail -1 | cut -f1) in $out"
