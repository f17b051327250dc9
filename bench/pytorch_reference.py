#!/usr/bin/env python3
"""The PyTorch twin of `fashion-gpu bench`: the same model and recipe, timed the same way, printed
as one JSON object with the same keys, so the two can be run side by side on one GPU machine.

    python3 bench/pytorch_reference.py --steps 600            # synthetic data, like the Rust bench
    python3 bench/pytorch_reference.py --data fashion --json  # the real Fashion-MNIST training set

The recipe is the study's baseline: 784 → Dense(256, relu) → Dense(128, relu) → Dense(10,
softmax), Glorot-uniform kernels and zero biases, categorical cross-entropy, Adam (lr 1e-3, β1 0.9,
β2 0.999, ε 1e-7), batch 100. `--model cnn` is fashion-gpu's `cnn` preset instead: Conv2D(32, 3×3,
relu, padding "same") → MaxPool 2×2 → Dropout(0.25) → Conv2D(64, 3×3, relu, "same") → MaxPool 2×2 → Dropout(0.25) → Flatten → Dense(128, relu) →
Dropout(0.5) → Dense(10) (channels first here, last in fashion-gpu: the same work). As on the wgpu side the whole training set lives on the device as
uint8 pixels, each batch is gathered on the device through a shuffled index and divided by 255
there, and nothing returns to the host during the timed steps.

One difference is inherent: Keras (and fashion-gpu) add ε to √v, PyTorch to √v̂; with ε = 1e-7
the two updates differ far below the benchmark's resolution.

Timing: a warm-up of as many steps as are timed (CUDA context, cuBLAS heuristics, caching
allocator), then `--steps` steps between two synchronisations. The forward/backward/optimizer
split comes from CUDA events around each phase of every timed step of a second run (events
serialise a little, as fashion-gpu's per-dispatch timestamps do); the dispatches per step are the
CUDA kernels the profiler sees in one step. On the CPU the split uses wall-clock time.
"""

import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import torch
from torch import nn

PIXELS = 28 * 28
CLASSES = 10
EPOCH_SAMPLES = 60_000
FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (gz or raw) as (dims, bytes)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an IDX file of unsigned bytes")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


def find_idx(directory, stem):
    """The IDX file `stem` in `directory`, gzipped or not."""
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    sys.exit(f"{stem}(.gz) not found in {directory}; install Debian's dataset-fashion-mnist or pass --data-dir")


def load_fashion(directory):
    """The 60,000 training images as uint8 [n, 784] and their labels as int64 [n]."""
    (count, rows, cols), pixels = read_idx(find_idx(directory, "train-images-idx3-ubyte"))
    (label_count,), labels = read_idx(find_idx(directory, "train-labels-idx1-ubyte"))
    if count != label_count or rows * cols != PIXELS:
        sys.exit("the training images and labels do not match")
    images = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).reshape(count, PIXELS)
    return images, torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()


def synthetic(count, seed):
    """Random images and labels: throughput does not depend on the pixels."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, PIXELS), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, CLASSES, (count,), dtype=torch.int64, generator=generator)
    return images, labels


def baseline(hidden):
    """Dense layers with ReLU, then the 10 logits (the softmax is inside the loss)."""
    layers, width = [], PIXELS
    for units in hidden:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    layers.append(nn.Linear(width, CLASSES))
    return glorot(nn.Sequential(*layers))


def glorot(model):
    """Keras's glorot_uniform kernels and zero biases."""
    for layer in model:
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return model


def cnn():
    """fashion-gpu's `cnn` preset."""
    return glorot(
        nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)),
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(0.25),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, CLASSES),
        )
    )


# The `cnn` preset's products per sample: each conv's output positions × taps × channels × filters
# (padding "same": 28×28, then 14×14), then the two Dense layers.
CNN_MACS = 28 * 28 * 9 * 1 * 32 + 14 * 14 * 9 * 32 * 64 + 3136 * 128 + 128 * CLASSES


def flops_per_step(model, hidden, rows):
    """fashion-gpu's count: 2·rows·(multiply-adds per sample) per product, three per layer
    (forward, dX, dW)."""
    if model == "cnn":
        return 3.0 * 2.0 * rows * CNN_MACS
    widths = [PIXELS, *hidden, CLASSES]
    return 3.0 * 2.0 * rows * sum(a * b for a, b in zip(widths, widths[1:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["baseline", "cnn"], default="baseline")
    parser.add_argument("--hidden", default="256,128", help="hidden Dense widths (baseline: 256,128)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100, help="timed training steps")
    parser.add_argument("--data", choices=["synthetic", "fashion"], default="synthetic")
    parser.add_argument("--data-dir", default=FASHION_DIR)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model first")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    if args.batch < 1 or args.steps < 1:
        sys.exit("--batch and --steps must be at least 1")

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    hidden = [int(w) for w in args.hidden.split(",") if w]

    if args.data == "fashion":
        images, labels = load_fashion(args.data_dir)
    else:
        images, labels = synthetic(args.steps * args.batch, args.seed)
    # Resident on the device as uint8, like the wgpu trainer's packed pixels.
    images, labels = images.to(device), labels.to(device)
    samples = images.shape[0]

    model = (cnn() if args.model == "cnn" else baseline(hidden)).to(device)
    step_model = torch.compile(model) if args.compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(samples, device=device)

    def batch_at(step):
        start = (step * args.batch) % max(samples - args.batch + 1, 1)
        index = order[start : start + args.batch]
        return images[index].float().div_(255.0), labels[index]

    def forward(step):
        x, y = batch_at(step)
        return loss_fn(step_model(x), y)

    def train_step(step):
        loss = forward(step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    # Warm-up, then the timed steps between two synchronisations.
    for step in range(args.steps):
        train_step(step)
    sync()
    started = time.perf_counter()
    for step in range(args.steps):
        train_step(step)
    sync()
    seconds = time.perf_counter() - started

    # The forward/backward/optimizer split, step by step.
    split = [0.0, 0.0, 0.0]
    for step in range(args.steps):
        if cuda:
            marks = [torch.cuda.Event(enable_timing=True) for _ in range(4)]
            marks[0].record()
            loss = forward(step)
            marks[1].record()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            marks[2].record()
            optimizer.step()
            marks[3].record()
            marks[3].synchronize()
            for i in range(3):
                split[i] += marks[i].elapsed_time(marks[i + 1])
        else:
            t0 = time.perf_counter()
            loss = forward(step)
            t1 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t2 = time.perf_counter()
            optimizer.step()
            t3 = time.perf_counter()
            for i, (a, b) in enumerate([(t0, t1), (t1, t2), (t2, t3)]):
                split[i] += (b - a) * 1e3

    # Kernel launches of one step, as the profiler sees them.
    dispatches, dispatch_ms = "n/a", []
    if cuda:
        from torch.profiler import ProfilerActivity, profile

        profiled = 5
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for step in range(profiled):
                train_step(step)
            sync()
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        dispatches = round(len(kernels) / profiled)
        totals = {}
        for e in kernels:
            micros = getattr(e, "device_time", None) or getattr(e, "cuda_time", 0.0)  # renamed in torch 2.4
            totals[e.name] = totals.get(e.name, 0.0) + micros / 1e3 / profiled
        dispatch_ms = [{"kernel": name, "ms": round(ms, 3)} for name, ms in totals.items()]

    seconds_per_step = seconds / args.steps
    flops = flops_per_step(args.model, hidden, args.batch)
    adapter = torch.cuda.get_device_name(device) if cuda else f"cpu ({torch.get_num_threads()} threads)"
    report = {
        "framework": f"pytorch {torch.__version__}" + (" (torch.compile)" if args.compile else ""),
        "model": args.model,
        "adapter": adapter,
        "batch": args.batch,
        "steps": args.steps,
        "steps_per_submit": "n/a",
        "seconds_per_step": round(seconds_per_step, 6),
        "samples_per_second": round(args.batch / seconds_per_step, 1),
        "epoch_seconds": round(math.ceil(EPOCH_SAMPLES / args.batch) * seconds_per_step, 2),
        "dispatches_per_step": dispatches,
        "submits_per_step": "n/a",
        "flops_per_step": flops,
        "gflops": round(flops / seconds_per_step / 1e9, 3),
        "forward_ms": round(split[0] / args.steps, 3),
        "backward_ms": round(split[1] / args.steps, 3),
        "optimizer_ms": round(split[2] / args.steps, 3),
        "timing": "cuda-events" if cuda else "wall-clock",
        "variants": "n/a",
        "dispatch_ms": dispatch_ms,
        "autotune_ms": {},
    }
    if not args.json:
        print(
            f"Adapter: {adapter}\nModel {args.model}, batch {args.batch}, {args.steps} timed steps\n"
            f"{report['samples_per_second']:.0f} samples/s, {report['epoch_seconds']:.2f} s per 60k-sample epoch, "
            f"{report['gflops']:.2f} GFLOP/s\n{dispatches} kernel launches per step\n"
            f"forward {report['forward_ms']:.2f} ms, backward {report['backward_ms']:.2f} ms, "
            f"optimizer {report['optimizer_ms']:.2f} ms per step",
            file=sys.stderr,
        )
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
