#!/usr/bin/env bash
# The CPU side by side, in one run on this machine: `fashion-gpu bench --backend cpu` (the fast
# CPU kernels), `fashion-gpu bench --backend gpu` (wgpu on the first adapter: lavapipe where
# there is no GPU) and PyTorch on the CPU (bench/pytorch_reference.py --device cpu), for the
# baseline MLP and the CNN at batch 100 and 1,000, all on the same THREADS threads
# (RAYON_NUM_THREADS / torch.set_num_threads), interleaved over ROUNDS rounds so that a noisy
# neighbour slows all three alike. Prints a Markdown table of samples/s (median of the rounds)
# and the ratios the CPU issue's targets are stated in.
#
#   bench/cpu-compare.sh                      # ROUNDS=3 THREADS=$(nproc) STEPS=100
#   PYTHON=/path/to/venv/bin/python bench/cpu-compare.sh
#   BIN=/tmp/before/fashion-gpu bench/cpu-compare.sh      # that binary, not a fresh build
#   BEFORE=/tmp/before/fashion-gpu bench/cpu-compare.sh   # also its --backend cpu, interleaved
#   BACKENDS=cpu bench/cpu-compare.sh                     # without the wgpu column (lavapipe is slow)
#
# PyTorch comes from $PYTHON (default python3); where it has no torch its column says n/a.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-100}
PYTHON=${PYTHON:-python3}
CASES=${CASES:-"baseline:100 baseline:1000 cnn:100 cnn:1000"}
BACKENDS=${BACKENDS:-"cpu gpu"}

BEFORE=${BEFORE:-}
if [ -n "${BIN:-}" ]; then
    bin=$BIN
else
    cargo build --release -q -p fashion-gpu
    bin="$root/target/release/fashion-gpu"
fi
has_torch=1
"$PYTHON" -c 'import torch' 2>/dev/null || has_torch=0
results=$(mktemp)
trap 'rm -f "$results"' EXIT

for round in $(seq "$ROUNDS"); do
    for case in $CASES; do
        model=${case%%:*}
        batch=${case##*:}
        # The CNN is ~10× the FLOPs of a baseline step: fewer steps keep the run short.
        steps=$STEPS
        [ "$model" = cnn ] && steps=$((STEPS / 5 > 0 ? STEPS / 5 : 1))
        [ "$batch" -ge 1000 ] && steps=$((steps / 5 > 0 ? steps / 5 : 1))
        for backend in $BACKENDS; do
            line=$(RAYON_NUM_THREADS=$THREADS "$bin" bench --backend "$backend" --no-autotune --model "$model" \
                --batch "$batch" --steps "$steps" --json 2>/dev/null | tail -1) || line='{}'
            echo "$model $batch $backend $line" >>"$results"
        done
        if [ -n "$BEFORE" ]; then
            line=$(RAYON_NUM_THREADS=$THREADS "$BEFORE" bench --backend cpu --no-autotune --model "$model" \
                --batch "$batch" --steps "$steps" --json 2>/dev/null | tail -1) || line='{}'
            echo "$model $batch before $line" >>"$results"
        fi
        if [ "$has_torch" = 1 ]; then
            line=$(OMP_NUM_THREADS=$THREADS "$PYTHON" bench/pytorch_reference.py --device cpu --json \
                --model "$model" --batch "$batch" --steps "$steps" 2>/dev/null | tail -1) || line='{}'
            echo "$model $batch pytorch $line" >>"$results"
        fi
        echo "round $round: $model batch $batch done" >&2
    done
done

"$PYTHON" - "$results" "$THREADS" "$ROUNDS" <<'PY'
import json, statistics, sys
rows = {}
adapters = {}
for line in open(sys.argv[1]):
    model, batch, who, payload = line.split(" ", 3)
    try:
        report = json.loads(payload)
    except json.JSONDecodeError:
        report = {}
    rate = report.get("samples_per_second")
    rows.setdefault((model, int(batch)), {}).setdefault(who, [])
    if rate:
        rows[(model, int(batch))][who].append(rate)
        adapters[who] = report.get("adapter", "?")
med = lambda xs: statistics.median(xs) if xs else None
fmt = lambda x: f"{x:,.0f}" if x else "n/a"
ratio = lambda a, b: f"{a / b:.2f}×" if a and b else "n/a"
print(f"threads: {sys.argv[2]}, median of {sys.argv[3]} interleaved rounds, samples/s")
for who, adapter in sorted(adapters.items()):
    print(f"- {who}: {adapter}")
print()
before = "before" in adapters
head = "| model | batch | fashion-gpu cpu | fashion-gpu gpu (wgpu) | PyTorch cpu | cpu / PyTorch | cpu / wgpu |"
print(head + (" cpu before | before / PyTorch | cpu / before |" if before else ""))
print("|---" * (7 + 3 * before) + "|")
for (model, batch), by in rows.items():
    cpu, gpu, torch = med(by.get("cpu", [])), med(by.get("gpu", [])), med(by.get("pytorch", []))
    line = f"| {model} | {batch:,} | {fmt(cpu)} | {fmt(gpu)} | {fmt(torch)} | {ratio(cpu, torch)} | {ratio(cpu, gpu)} |"
    if before:
        old = med(by.get("before", []))
        line += f" {fmt(old)} | {ratio(old, torch)} | {ratio(cpu, old)} |"
    print(line)
PY
