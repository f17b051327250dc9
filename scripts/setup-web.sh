#!/usr/bin/env bash
# Installs everything building the web app needs, and stages the datasets into web/data/.
# Idempotent: tools already at the right version are kept. Run as root on Debian 12.
#   Rust + wasm32 target, the pinned nightly with rust-src for the threaded worker
#   (scripts/build-worker-threads.sh), trunk (crates.io, --locked), wasm-bindgen-cli (the exact version of
#   the wasm-bindgen crate pinned in crates/app/Cargo.toml), wasm-opt from npm binaryen@132
#   (into web/tools/node_modules/.bin; put it on PATH: see scripts/serve.sh), the datasets
#   (scripts/install-data.sh), gzipped into web/data/{fashion,mnist}/ for Trunk's copy-dir.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
trunk_version=0.21.14
binaryen_version=132
wasm_bindgen_version="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$repo_root/crates/app/Cargo.toml")"
web_tools="$repo_root/web/tools"
staged="$repo_root/web/data"

die() {
    echo "setup-web: error: $*" >&2
    exit 1
}

[ -n "$wasm_bindgen_version" ] || die "crates/app/Cargo.toml must pin wasm-bindgen as \"=X.Y.Z\""

as_root() {
    [ "$(id -u)" -eq 0 ] || die "installing $* needs root (sudo $0)"
}

# Installs the Debian packages behind the commands that are missing.
apt_install_for_commands() {
    local missing=()
    while [ $# -gt 0 ]; do
        command -v "$1" >/dev/null || missing+=($2)
        shift 2
    done
    [ ${#missing[@]} -eq 0 ] && return
    as_root "${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

install_rust() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    if ! command -v cargo >/dev/null; then
        echo "Rust: installing with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        . "$HOME/.cargo/env"
    fi
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        rustup target add wasm32-unknown-unknown
    fi
    echo "Rust: $(rustc --version), target wasm32-unknown-unknown"
}

# The threaded worker's toolchain (scripts/build-worker-threads.sh: std rebuilt with atomics
# needs nightly and rust-src); minimal, beside the stable one, which stays the default.
install_threads_toolchain() {
    local toolchain
    toolchain="$(sed -n 's/^toolchain=\(nightly-[0-9-]*\)$/\1/p' "$repo_root/scripts/build-worker-threads.sh")"
    [ -n "$toolchain" ] || die "scripts/build-worker-threads.sh must pin toolchain=nightly-YYYY-MM-DD"
    if rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src'; then
        echo "Rust: $toolchain with rust-src already installed (the threaded worker)"
    else
        echo "Rust: installing $toolchain with rust-src (the threaded worker)"
        rustup toolchain install "$toolchain" --profile minimal --component rust-src
    fi
}

install_trunk() {
    if [ "$(trunk --version 2>/dev/null)" = "trunk $trunk_version" ]; then
        echo "trunk: $trunk_version already installed"
    else
        echo "trunk: installing $trunk_version (several minutes)"
        cargo install trunk --version "$trunk_version" --locked
    fi
}

install_wasm_bindgen() {
    if [ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $wasm_bindgen_version" ]; then
        echo "wasm-bindgen: $wasm_bindgen_version already installed"
    else
        echo "wasm-bindgen: installing $wasm_bindgen_version"
        # Not --locked: its lockfile wants a crate version the registry mirror lacks.
        cargo install wasm-bindgen-cli --version "=$wasm_bindgen_version"
    fi
}

install_wasm_opt() {
    # Not Debian's binaryen: version 108 emits wasm that Chromium rejects.
    if "$web_tools/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -q "version $binaryen_version "; then
        echo "wasm-opt: version $binaryen_version already installed"
    else
        echo "wasm-opt: installing npm binaryen@$binaryen_version"
        (cd "$web_tools" && npm install --no-audit --no-fund --silent)
    fi
}

# Copies (Fashion-MNIST is already gzipped) or gzips each IDX file into web/data/<name>/.
stage_data() {
    local name="$1" source_dir="$2"
    mkdir -p "$staged/$name"
    for stem in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        local target="$staged/$name/$stem.gz"
        if [ -f "$source_dir/$stem.gz" ]; then
            [ "$target" -nt "$source_dir/$stem.gz" ] || cp "$source_dir/$stem.gz" "$target"
        elif [ -f "$source_dir/$stem" ]; then
            [ "$target" -nt "$source_dir/$stem" ] || gzip -9 -n -c "$source_dir/$stem" >"$target"
        else
            die "$source_dir has neither $stem nor $stem.gz; run scripts/install-data.sh"
        fi
    done
    echo "staged $name: $staged/$name"
}

apt_install_for_commands cc build-essential pkg-config pkg-config curl "curl ca-certificates" \
    npm "nodejs npm" python3 python3 gzip gzip
if ! pkg-config --exists openssl 2>/dev/null; then
    as_root libssl-dev
    DEBIAN_FRONTEND=noninteractive apt-get install -y libssl-dev
fi
install_rust
install_threads_toolchain
install_trunk
install_wasm_bindgen
install_wasm_opt
"$repo_root/scripts/install-data.sh"
stage_data fashion /usr/share/datasets/fashion-mnist
stage_data mnist "$repo_root/data/mnist"
echo "setup-web: ready; build with: PATH=\"$web_tools/node_modules/.bin:\$PATH\" trunk build --release --offline"
