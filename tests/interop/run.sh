#!/usr/bin/env bash
# Weights any tool reads: for the study's `baseline` and `batchnorm` models, trains briefly with
# `fashion-gpu train --save`, loads the file with Python's reference `safetensors` package (numpy)
# in a virtual environment (PyPI; Debian 12 does not package it), runs the forward pass in numpy
# on the real 10k test set and checks its accuracy matches `fashion-gpu eval` (one image of
# 10,000 may differ, for near-ties). Ends with "N passed, N failed"; exits non-zero on failure.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"
venv="$repo_root/target/interop-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import numpy, safetensors" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "safetensors>=0.4" numpy
fi
cargo build -q -p fashion-gpu
bin="$repo_root/target/debug/fashion-gpu"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
for model in baseline batchnorm; do
    file="$work/$model.safetensors"
    "$bin" train --model "$model" --epochs 1 --train-limit 3000 --save "$file" >/dev/null 2>"$work/train.log" ||
        { cat "$work/train.log"; failed=$((failed + 1)); continue; }
    ours="$("$bin" eval --weights "$file" --model "$model" 2>/dev/null | sed -n 's/^test accuracy = //p')"
    read -r right numpy <<<"$("$venv/bin/python" tests/interop/numpy_forward.py "$file")"
    ours_right="$(python3 -c "print(round(float('$ours') * 10000))")"
    if [ -n "$ours" ] && [ $((ours_right > right ? ours_right - right : right - ours_right)) -le 1 ]; then
        echo "PASS $model: fashion-gpu eval $ours, numpy $numpy ($right of 10000)"
        passed=$((passed + 1))
    else
        echo "FAIL $model: fashion-gpu eval '$ours', numpy $numpy ($right of 10000)"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
