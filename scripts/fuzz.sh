#!/usr/bin/env bash
# Fuzzes the three file parsers (cargo-fuzz, libFuzzer): the IDX reader of crates/data, the
# safetensors loader of crates/core and the .keras reader of crates/interop, each for SECONDS
# (default 60), one after the other.
#   scripts/fuzz.sh [SECONDS]
# Installs cargo-fuzz from crates.io if it is missing. Builds on the stable toolchain: with
# `--sanitizer none` cargo-fuzz needs no nightly flag (safe Rust needs no AddressSanitizer;
# debug assertions stay on, so integer overflows are caught too). New corpus entries go to
# fuzz/corpus/<target> (ignored by git), seeded from fuzz/seeds/<target> (in git). A crash
# leaves its input in fuzz/artifacts/<target>/ and fails the script; reproduce it with
#   cargo fuzz run --sanitizer none --debug-assertions <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

seconds="${1:-60}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: SECONDS must be a positive integer, got '$seconds'" >&2; exit 2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

flags=(--sanitizer none --debug-assertions)
echo "== building the fuzz targets"
cargo fuzz build "${flags[@]}"

# -max_len: the IDX and safetensors seeds are under 1 KB, 4 KB leaves room to grow them; the
# .keras seeds (zips of a tiny model) are up to 40 KB.
for target in idx safetensors keras; do
    max_len=4096
    [ "$target" = keras ] && max_len=65536
    echo "== fuzzing $target for ${seconds}s"
    mkdir -p "fuzz/corpus/$target"
    log="fuzz/target/fuzz-$target.log"
    status=0
    cargo fuzz run "${flags[@]}" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 >"$log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        echo "fuzz: $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log"
done
echo "fuzz: no crash"
