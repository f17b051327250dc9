"""Loads .keras files with Keras 3 exactly as a user would and scores them on the real
Fashion-MNIST test set: one line per file, `FILE RIGHT LOSS` (RIGHT = test images classified
right, LOSS = mean -ln p[label] in float64 from Keras's float32 probabilities, 8 decimals).

Usage: KERAS_BACKEND=jax keras_check.py DATA_DIR [--sabotage transpose|epsilon] FILE...

DATA_DIR holds t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz). The first model's
summary and one `model.evaluate` (the compile_config the file carries) go to stderr.

--sabotage corrupts each loaded model as an exporter bug would, so that a comparison with
fashion-gpu's own evaluation must fail:
  transpose  the first Dense or Conv2D kernel W becomes W.T.reshape(W.shape) (a kernel written
             in PyTorch's [out, in] order);
  epsilon    every BatchNormalization's epsilon becomes 1e-5 (PyTorch's default, not Keras's 1e-3).
"""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from numpy_forward import find, read_idx  # noqa: E402


def sabotage(model, kind):
    if kind == "transpose":
        layer = next(l for l in model.layers if isinstance(l, (keras.layers.Dense, keras.layers.Conv2D)))
        kernel, *rest = layer.get_weights()
        layer.set_weights([kernel.T.reshape(kernel.shape), *rest])
    elif kind == "epsilon":
        norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
        if not norms:
            raise SystemExit("--sabotage epsilon: the model has no BatchNormalization layer")
        for layer in norms:
            layer.epsilon = 1e-5


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--sabotage", choices=["transpose", "epsilon"])
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    images = read_idx(find(args.data_dir, "t10k-images-idx3-ubyte"))
    labels = read_idx(find(args.data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)
    pixels = images.astype(np.float32) / np.float32(255)

    for index, path in enumerate(args.files):
        model = keras.saving.load_model(path)
        x = pixels.reshape((-1,) + tuple(model.input_shape[1:]))
        if index == 0:
            model.summary(print_fn=lambda line, *_, **__: print(line, file=sys.stderr))
            loss, accuracy = model.evaluate(x, labels, batch_size=1000, verbose=0)
            print(f"keras evaluate ({path}): loss {loss:.6f} accuracy {accuracy:.4f}", file=sys.stderr)
        if args.sabotage:
            sabotage(model, args.sabotage)
        probabilities = model.predict(x, batch_size=1000, verbose=0)
        right = int((probabilities.argmax(axis=1) == labels).sum())
        chosen = probabilities[np.arange(len(labels)), labels].astype(np.float64)
        loss = float(np.mean(-np.log(chosen)))
        print(f"{path} {right} {loss:.8f}")


if __name__ == "__main__":
    main()
