#!/usr/bin/env python3
"""`deep` and `l2` trained side by side by two builds of fashion-gpu, with each epoch's CPU
seconds: what lavapipe's subnormal slowdown costs, measured so that a shared, noisy machine does
not hide it (wall-clock seconds of runs that share the cores with other work move with the load;
the CPU seconds a process spends on an epoch move with its own work).

    python3 bench/l2-vs-deep-cpu-seconds.py BEFORE_BINARY AFTER_BINARY [EPOCHS] [OUT_DIR]

(BEFORE_BINARY `-` runs the after build only.)

Starts four `train --model deep|l2 --epochs EPOCHS --log-json` runs at once (the GPU backend:
lavapipe where there is no GPU), reads each process's user + system time (all its threads, so
lavapipe's workers too) from /proc whenever its log gains an epoch line, and at exit from the
process's resource usage. Prints one JSON object: per run, the CPU and wall seconds per epoch,
and per build the l2/deep ratio of CPU seconds per epoch.
"""

import json
import os
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (FileNotFoundError, ProcessLookupError):
        return None


def lines(path):
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for _ in f)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    before, after = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    out_dir = sys.argv[4] if len(sys.argv) > 4 else "."
    os.makedirs(out_dir, exist_ok=True)
    runs = {}
    builds = [(b, binary) for b, binary in (("before", before), ("after", after)) if binary != "-"]
    for build, binary in builds:
        for model in ("deep", "l2"):
            log = os.path.join(out_dir, f"{build}-{model}.jsonl")
            if os.path.exists(log):
                os.remove(log)
            command = [binary, "train", "--model", model, "--epochs", str(epochs), "--log-json", log]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            runs[f"{build}-{model}"] = {"process": process, "log": log, "marks": [], "done": False}
    while not all(run["done"] for run in runs.values()):
        for run in runs.values():
            if run["done"]:
                continue
            pid, _, usage = os.wait4(run["process"].pid, os.WNOHANG)
            now = usage.ru_utime + usage.ru_stime if pid else cpu_seconds(run["process"].pid)
            if now is None:
                continue
            while len(run["marks"]) < lines(run["log"]):
                run["marks"].append(now)
            run["done"] = bool(pid)
        time.sleep(1)
    result = {}
    for name, run in runs.items():
        marks = run["marks"]
        with open(run["log"]) as f:
            wall = [json.loads(line)["seconds"] for line in f]
        result[name] = {
            "cpu_seconds_per_epoch": [round(b - a, 1) for a, b in zip([0.0] + marks[:-1], marks)],
            "wall_seconds_per_epoch": [round(s, 1) for s in wall],
        }
    for build, _ in builds:
        deep, l2 = result[f"{build}-deep"]["cpu_seconds_per_epoch"], result[f"{build}-l2"]["cpu_seconds_per_epoch"]
        result[f"{build}-l2-over-deep"] = [round(b / a, 2) for a, b in zip(deep, l2) if a > 0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
