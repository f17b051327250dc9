#!/usr/bin/env bash
# fashion-gpu's GPU check: the GPU kernel tests, `fashion-gpu bench` (autotuned) and the PyTorch
# reference on one machine's GPU, summarised with the ratio ours / PyTorch per case.
#
#   bench/gpu-check.sh --prepare DIR   here, with the Rust toolchain: builds and fills DIR with
#                                      stripped binaries (fashion-gpu and the GPU test
#                                      executables), a small Fashion-MNIST subset, Debian's
#                                      libvulkan1 .deb, the PyTorch reference and this script
#   DIR/gpu-check.sh                   on the GPU machine (no Rust toolchain, no network needed)
#
# On the GPU machine it uses the system's Vulkan loader if there is one, else unpacks the
# prepared libvulkan1 .deb with `dpkg -x`; where the loader finds no NVIDIA ICD but the driver's
# libGLX_nvidia.so.0 is present (a container given the GPU for compute), it writes one and points
# VK_DRIVER_FILES at it. PyTorch is the machine's own `python3` with torch; without CUDA its part
# is skipped with a line saying so. Results: gpu-check-summary.md and gpu-check-summary.json in
# DIR, copied into $OUT when that is set. Under five minutes on a GPU; on lavapipe (no GPU) the
# same run shows that everything works, at emulator speed.
set -euo pipefail

# The GPU kernel tests (test targets of fashion-core) the check runs.
GPU_TESTS=(kernels_vs_reference conv_kernels_vs_reference layer_kernels_vs_reference trainer divergence)
# Images of the data subset the trainer tests read.
TRAIN_SUBSET=2000
TEST_SUBSET=1000

prepare() {
    local dir=$1
    local root
    root=$(cd "$(dirname "$0")/.." && pwd)
    mkdir -p "$dir/bin" "$dir/data/fashion"
    dir=$(cd "$dir" && pwd)
    cd "$root"
    echo "gpu-check: building fashion-gpu and the GPU tests (release)" >&2
    cargo build --release -p fashion-gpu
    cp target/release/fashion-gpu "$dir/bin/"
    local tests=()
    for t in "${GPU_TESTS[@]}"; do tests+=(--test "$t"); done
    cargo test --release -p fashion-core --no-run --message-format=json "${tests[@]}" >"$dir/build.json"
    python3 - "$dir" <<'PY'
import json, shutil, sys
dest = sys.argv[1]
for line in open(f"{dest}/build.json"):
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("executable") and "test" in message["target"]["kind"]:
        shutil.copy(message["executable"], f"{dest}/bin/{message['target']['name']}")
PY
    rm "$dir/build.json"
    strip "$dir"/bin/*
    python3 - "$dir/data/fashion" "$TRAIN_SUBSET" "$TEST_SUBSET" <<'PY'
import gzip, struct, sys
dest, counts = sys.argv[1], {"train": int(sys.argv[2]), "t10k": int(sys.argv[3])}
source = "/usr/share/datasets/fashion-mnist"
for split, count in counts.items():
    for kind, item in (("images-idx3", 784), ("labels-idx1", 1)):
        name = f"{split}-{kind}-ubyte.gz"
        data = gzip.open(f"{source}/{name}").read()
        ndim = data[3]
        dims = list(struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim]))
        header = 4 + 4 * ndim
        dims[0] = count
        body = data[header : header + count * item]
        with gzip.open(f"{dest}/{name}", "wb") as out:
            out.write(data[:4] + struct.pack(">" + "I" * ndim, *dims) + body)
PY
    (cd "$dir" && rm -f libvulkan1_*.deb && apt-get download libvulkan1 >/dev/null)
    cp bench/pytorch_reference.py "$dir/"
    cp bench/gpu-check.sh "$dir/gpu-check.sh"
    chmod +x "$dir/gpu-check.sh"
    echo "gpu-check: prepared $dir ($(du -sh "$dir" | cut -f1)); run $dir/gpu-check.sh on the GPU machine" >&2
}

# Makes the Vulkan loader and an NVIDIA ICD findable; says what it did.
setup_vulkan() {
    local dir=$1
    if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
        local deb
        deb=$(ls "$dir"/libvulkan1_*.deb 2>/dev/null | head -1)
        if [ -z "$deb" ]; then
            echo "no Vulkan loader on this machine and no libvulkan1 .deb in $dir" >&2
            return 1
        fi
        rm -rf "$dir/vulkan-loader" && dpkg -x "$deb" "$dir/vulkan-loader"
        local lib
        lib=$(dirname "$(find "$dir/vulkan-loader" -name 'libvulkan.so.1' | head -1)")
        export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "Vulkan loader: unpacked from $(basename "$deb")"
    else
        echo "Vulkan loader: the system's"
    fi
    local icds=(/usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json)
    local found=""
    for icd in "${icds[@]}"; do [ -f "$icd" ] && found=$icd; done
    if [ -n "$found" ]; then
        echo "NVIDIA ICD: $found"
    else
        local glx
        glx=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia.so.0/ {print $NF; exit}')
        if [ -n "$glx" ]; then
            cat >"$dir/nvidia_icd.json" <<JSON
{ "file_format_version": "1.0.0", "ICD": { "library_path": "$glx", "api_version": "1.3.0" } }
JSON
            export VK_DRIVER_FILES="$dir/nvidia_icd.json"
            echo "NVIDIA ICD: none installed; written for $glx (VK_DRIVER_FILES)"
        else
            echo "NVIDIA ICD: none, and no libGLX_nvidia.so.0: Vulkan picks what it finds (lavapipe?)"
        fi
    fi
}

run_check() {
    local dir
    dir=$(cd "$(dirname "$0")" && pwd)
    local log="$dir/gpu-check.log"
    : >"$log"
    local started=$SECONDS
    export FASHION_GPU_DATA_DIR="$dir/data"
    setup_vulkan "$dir" | tee -a "$log"
    local fashion="$dir/bin/fashion-gpu"
    local adapter
    adapter=$("$fashion" bench --plan --model baseline --batch 100 2>>"$log" | sed -n 's/^Adapter: //p')
    echo "Adapter: $adapter" | tee -a "$log"

    local tests_json="[]"
    for t in "${GPU_TESTS[@]}"; do
        local status=passed
        if ! "$dir/bin/$t" --test-threads=1 >>"$log" 2>&1; then status=failed; fi
        echo "test $t: $status" | tee -a "$log"
        tests_json=$(python3 -c 'import json,sys; t=json.loads(sys.argv[1]); t.append({"test": sys.argv[2], "status": sys.argv[3]}); print(json.dumps(t))' "$tests_json" "$t" "$status")
    done

    local torch_device=""
    if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >>"$log" 2>&1; then
        torch_device=cuda
    else
        echo "PyTorch GPU part skipped: this python3 has no torch with CUDA (see $log)" | tee -a "$log"
    fi

    local cases="[]"
    for model in baseline cnn; do
        for batch in 100 1000; do
            # Enough steps to time on a GPU; few on a CPU adapter (lavapipe), where a CNN step at
            # batch 1,000 takes seconds.
            local steps=$((batch == 100 ? 300 : 60))
            if [[ "$adapter" == *", Cpu"* ]]; then
                steps=10
                [ "$model" = cnn ] && steps=2
                [ "$batch" = 100 ] && steps=$((steps * 3))
            fi
            local ours theirs="null"
            ours=$("$fashion" bench --json --model "$model" --batch "$batch" --steps "$steps" 2>>"$log" | tail -1) ||
                ours='{"error": "fashion-gpu bench failed"}'
            if [ -n "$torch_device" ]; then
                theirs=$(python3 "$dir/pytorch_reference.py" --json --device "$torch_device" --model "$model" \
                    --batch "$batch" --steps "$steps" 2>>"$log" | tail -1) || theirs='{"error": "pytorch_reference.py failed"}'
            fi
            echo "bench $model batch $batch: ours $(echo "$ours" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("samples_per_second", "failed"))') samples/s" | tee -a "$log"
            cases=$(python3 -c 'import json,sys; c=json.loads(sys.argv[1]); c.append({"model": sys.argv[2], "batch": int(sys.argv[3]), "ours": json.loads(sys.argv[4]), "pytorch": json.loads(sys.argv[5])}); print(json.dumps(c))' \
                "$cases" "$model" "$batch" "$ours" "$theirs")
        done
    done

    python3 - "$dir" "$adapter" "$tests_json" "$cases" "$((SECONDS - started))" <<'PY'
import json, sys
dir, adapter, tests, cases, seconds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5])
rows = []
for case in cases:
    ours, theirs = case["ours"], case["pytorch"]
    mine = ours.get("samples_per_second") if isinstance(ours, dict) else None
    ref = theirs.get("samples_per_second") if isinstance(theirs, dict) else None
    case["ratio"] = round(mine / ref, 3) if mine and ref else None
    rows.append(
        f"| {case['model']} | {case['batch']} | {mine if mine is not None else 'failed'} | "
        f"{ref if ref is not None else 'skipped'} | {case['ratio'] if case['ratio'] is not None else 'n/a'} | "
        f"{json.dumps(ours.get('variants', {}), sort_keys=True) if isinstance(ours, dict) else ''} |"
    )
summary = {"adapter": adapter, "seconds": seconds, "tests": tests, "cases": cases}
json.dump(summary, open(f"{dir}/gpu-check-summary.json", "w"), indent=1, sort_keys=True)
lines = [
    "# fashion-gpu GPU check",
    "",
    f"Adapter: {adapter}; {seconds} s in all.",
    "",
    "| test | status |",
    "|---|---|",
    *[f"| {t['test']} | {t['status']} |" for t in tests],
    "",
    "| model | batch | fashion-gpu samples/s | PyTorch samples/s | ours / PyTorch | kernels |",
    "|---|---|---|---|---|---|",
    *rows,
    "",
]
open(f"{dir}/gpu-check-summary.md", "w").write("\n".join(lines))
print("\n".join(lines))
PY
    if [ -n "${OUT:-}" ]; then
        mkdir -p "$OUT" && cp "$dir/gpu-check-summary.md" "$dir/gpu-check-summary.json" "$log" "$OUT/"
    fi
    if grep -q '"status": "failed"' "$dir/gpu-check-summary.json"; then
        echo "gpu-check: a GPU test failed (see $log)" >&2
        return 1
    fi
}

case "${1:-}" in
    --prepare)
        [ -n "${2:-}" ] || { echo "usage: $0 --prepare DIR" >&2; exit 2; }
        prepare "$2"
        ;;
    "")
        if [ ! -x "$(dirname "$0")/bin/fashion-gpu" ]; then
            echo "no bin/fashion-gpu beside this script: prepare a folder first with bench/gpu-check.sh --prepare DIR" >&2
            exit 2
        fi
        run_check
        ;;
    *)
        echo "usage: $0 --prepare DIR | (in a prepared DIR) ./gpu-check.sh" >&2
        exit 2
        ;;
esac
