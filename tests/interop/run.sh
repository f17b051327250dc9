#!/usr/bin/env bash
# Models any tool loads, checked by the tools themselves (real clients, installed here):
#   1. weights: for `baseline` and `batchnorm`, the .safetensors file read by Python's
#      `safetensors` (numpy_forward.py runs the forward pass in numpy);
#   2. export: `baseline`, `batchnorm`, `dropout`, `l2` and `cnn`, each trained briefly and
#      exported by `fashion-gpu`, loaded by Keras 3 (`keras.saving.load_model`, JAX backend),
#      ONNX Runtime (after `onnx.checker`) and TF.js (`tf.loadLayersModel`, Node, CPU backend);
#      each client's accuracy on the 10,000 test images must be `fashion-gpu eval`'s to the
#      printed digit, and its mean loss within 2e-5 of eval's;
#   3. sabotage: a transposed kernel (baseline) and a wrong BatchNorm ε (batchnorm) in each
#      client must make that comparison fail, so it can;
#   4. import: Keras itself builds the study's baseline and batchnorm models from fixed weights
#      and saves them; `fashion-gpu eval --weights model.keras` gives Keras's accuracy and loss,
#      and `train --init model.keras` goes on training from them.
# PyPI packages go to target/interop-venv, npm's to tests/interop/node_modules.
# Ends with "N passed, N failed"; exits non-zero on failure.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"
here="$repo_root/tests/interop"
venv="$repo_root/target/interop-venv"
python_packages=("safetensors==0.8.0" "numpy==2.4.6" "keras==3.15.1" "jax==0.10.2" "jaxlib==0.10.2"
    "h5py==3.16.0" "onnx==1.23.2" "onnxruntime==1.32.0")
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/pip" freeze 2>/dev/null | grep -qx "onnxruntime==1.32.0"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "${python_packages[@]}"
fi
[ -d "$here/node_modules/@tensorflow/tfjs" ] || (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
export KERAS_BACKEND=jax
python="$venv/bin/python"

cargo build -q -p fashion-gpu
bin="$repo_root/target/debug/fashion-gpu"
# The data every client and `fashion-gpu` read (scripts/install-data.sh installs it).
data=/usr/share/datasets/fashion-mnist
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# `fashion-gpu eval`'s figures for a file: "RIGHT LOSS" (RIGHT = accuracy × 10,000).
ours() {
    "$bin" eval --data "$data" --weights "$@" >"$work/eval.out" 2>"$work/eval.err" || { cat "$work/eval.err" >&2; return 1; }
    local accuracy loss
    accuracy="$(sed -n 's/^test accuracy = //p' "$work/eval.out")"
    loss="$(sed -n 's/^test loss = //p' "$work/eval.err")"
    python3 -c "print(round(float('$accuracy') * 10000), '$loss')"
}

# Whether a client's "RIGHT LOSS" is ours: the same accuracy to the printed digit, the loss
# within 2e-5.
agrees() {
    python3 -c "import sys; r, l, R, L = map(float, sys.argv[1:]); sys.exit(0 if r == R and abs(l - L) <= 2e-5 else 1)" \
        "$1" "$2" "$3" "$4"
}

# Reads a client's "FILE RIGHT LOSS" lines into clients[FILE]="RIGHT LOSS".
declare -A clients
read_client() {
    local file right loss
    while read -r file right loss; do clients["$file"]="$right $loss"; done
}

echo "-- training the five models briefly, exporting each in the three formats"
models=(baseline batchnorm dropout l2 cnn)
declare -A figures
for model in "${models[@]}"; do
    "$bin" train --data "$data" --model "$model" --backend cpu --epochs 1 --train-limit 3000 --save "$work/$model.safetensors" \
        --export "$work/$model.keras" >/dev/null 2>"$work/train.log" || { cat "$work/train.log"; exit 1; }
    "$bin" export --weights "$work/$model.safetensors" --model "$model" --out "$work/$model.onnx" 2>/dev/null
    "$bin" export --weights "$work/$model.safetensors" --model "$model" --out "$work/$model.zip" 2>/dev/null
    figures[$model]="$(ours "$work/$model.safetensors" --model "$model")"
    echo "   $model: fashion-gpu eval ${figures[$model]}"
done

echo "-- weights: Python's safetensors + numpy"
for model in baseline batchnorm; do
    read -r right _ <<<"${figures[$model]}"
    read -r numpy_right numpy <<<"$("$python" "$here/numpy_forward.py" "$work/$model.safetensors")"
    if [ "$numpy_right" -eq "$right" ]; then
        pass "$model.safetensors: numpy $numpy ($numpy_right of 10000)"
    else
        fail "$model.safetensors: numpy $numpy ($numpy_right of 10000), fashion-gpu eval $right"
    fi
done

# Every model's file in each client, then the two sabotaged files, compared with ours.
check_client() {
    local client="$1" extension="$2"
    shift 2
    local files=()
    for model in "${models[@]}"; do files+=("$work/$model.$extension"); done
    clients=()
    read_client < <("$@" "$data" "${files[@]}" 2>"$work/client.err")
    for model in "${models[@]}"; do
        local theirs="${clients[$work/$model.$extension]:-missing}"
        # shellcheck disable=SC2086
        if [ "$theirs" != missing ] && agrees ${figures[$model]} $theirs; then
            pass "$client loads $model.$extension: $theirs (fashion-gpu eval ${figures[$model]})"
        else
            fail "$client loads $model.$extension: $theirs (fashion-gpu eval ${figures[$model]})"
            tail -n 20 "$work/client.err"
        fi
    done
    # transpose: the first kernel's values in reversed axis order; epsilon: BatchNorm's ε 1e-5.
    for sabotage in transpose:baseline epsilon:batchnorm; do
        local kind="${sabotage%%:*}" model="${sabotage##*:}"
        clients=()
        read_client < <("$@" "$data" --sabotage "$kind" "$work/$model.$extension" 2>>"$work/client.err")
        local theirs="${clients[$work/$model.$extension]:-missing}"
        # shellcheck disable=SC2086
        if [ "$theirs" != missing ] && ! agrees ${figures[$model]} $theirs; then
            pass "$client notices the $kind bug in $model.$extension: $theirs (fashion-gpu eval ${figures[$model]})"
        else
            fail "$client misses the $kind bug in $model.$extension: $theirs (fashion-gpu eval ${figures[$model]})"
        fi
    done
}

echo "-- export: Keras 3 (JAX backend)"
check_client Keras keras "$python" "$here/keras_check.py"
echo "-- export: ONNX Runtime"
check_client "ONNX Runtime" onnx "$python" "$here/onnx_check.py"
echo "-- export: TF.js (Node, its wasm CPU backend)"
check_client TF.js zip node "$here/tfjs_check.mjs"

echo "-- import: models Keras made"
clients=()
read_client < <("$python" "$here/keras_make.py" "$work" 2>"$work/client.err")
for model in baseline batchnorm; do
    file="$work/keras_$model.keras"
    keras="${clients[$file]:-missing}"
    theirs="$(ours "$file" || echo "refused")"
    # shellcheck disable=SC2086
    if [ "$keras" != missing ] && [ "$theirs" != refused ] && agrees $keras $theirs; then
        pass "fashion-gpu eval reads keras_$model.keras: $theirs (Keras $keras)"
    else
        fail "fashion-gpu eval reads keras_$model.keras: $theirs (Keras $keras)"
    fi
done
# Going on training from Keras's baseline: one short epoch ends above where it started from.
read -r keras_right _ <<<"${clients[$work/keras_baseline.keras]:-0 0}"
"$bin" train --data "$data" --init "$work/keras_baseline.keras" --backend cpu --epochs 1 --train-limit 3000 --lr 1e-4 \
    --save "$work/continued.safetensors" >/dev/null 2>"$work/train.log" || cat "$work/train.log"
read -r continued_right _ <<<"$(ours "$work/continued.safetensors" --model baseline || echo "0 0")"
if [ "$continued_right" -ge $((keras_right - 100)) ]; then
    pass "train --init keras_baseline.keras goes on from Keras's weights: $continued_right of 10000 (Keras $keras_right)"
else
    fail "train --init keras_baseline.keras: $continued_right of 10000 after an epoch, Keras had $keras_right"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
