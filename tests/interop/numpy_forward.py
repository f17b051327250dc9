"""Reads a fashion-gpu .safetensors file with Python's reference `safetensors` package (numpy),
runs the model's forward pass in numpy on the real Fashion-MNIST test set, and prints the number
of test images it classifies right and the accuracy, e.g. `8512 0.8512`.

Usage: numpy_forward.py WEIGHTS.safetensors [DATA_DIR]

The model comes from the file's `__metadata__` (`baseline` or `batchnorm`, the study's presets);
tensor names are `dense_{i}.kernel` [inputs, units], `dense_{i}.bias`, and for BatchNormalization
`batch_normalization_{i}.{gamma,beta,moving_mean,moving_variance}` (evaluation mode: the moving
statistics, ε = 1e-3, as Keras).
"""

import gzip
import json
import struct
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

BATCH_NORM_EPSILON = np.float32(1e-3)


def read_idx(path):
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4 : 4 + 4 * dims])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        if (data_dir / name).exists():
            return data_dir / name
    raise SystemExit(f"{data_dir}: neither {stem}.gz nor {stem} found")


def model_name(path):
    (length,) = struct.unpack("<Q", path.read_bytes()[:8])
    header = json.loads(path.read_bytes()[8 : 8 + length])
    return header.get("__metadata__", {}).get("model")


def dense(x, t, i):
    return x @ t[f"dense_{i}.kernel"] + t[f"dense_{i}.bias"]


def batch_norm(x, t, i):
    p = f"batch_normalization_{i}."
    inv_std = np.float32(1) / np.sqrt(t[p + "moving_variance"] + BATCH_NORM_EPSILON)
    return t[p + "gamma"] * (x - t[p + "moving_mean"]) * inv_std + t[p + "beta"]


def logits(model, t, x):
    relu = lambda v: np.maximum(v, np.float32(0))
    if model == "baseline":
        return dense(relu(dense(relu(dense(x, t, 0)), t, 1)), t, 2)
    if model == "batchnorm":
        for i in range(4):
            x = relu(batch_norm(dense(x, t, i), t, i))
        return batch_norm(dense(x, t, 4), t, 4)
    raise SystemExit(f"no numpy forward pass for the `{model}` model (baseline, batchnorm)")


def main():
    weights = Path(sys.argv[1])
    data_dir = Path(sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist")
    tensors = load_file(str(weights))
    images = read_idx(find(data_dir, "t10k-images-idx3-ubyte")).reshape(-1, 784)
    labels = read_idx(find(data_dir, "t10k-labels-idx1-ubyte"))
    x = images.astype(np.float32) / np.float32(255)
    predicted = logits(model_name(weights), tensors, x).argmax(axis=1)
    right = int((predicted == labels).sum())
    print(right, f"{right / len(labels):.4f}")


if __name__ == "__main__":
    main()
