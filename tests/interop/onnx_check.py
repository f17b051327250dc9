"""Loads fashion-gpu's exported .onnx files with the onnx package and ONNX Runtime, as a user
would, predicts the real Fashion-MNIST test set and prints, per file, `FILE RIGHT LOSS`: the
number of the 10,000 test images classified right and the mean of -ln p[label] (float64, from
ONNX Runtime's float32 probabilities), to compare with `fashion-gpu eval`.

Usage: onnx_check.py DATA_DIR [--sabotage transpose|epsilon] FILE...

Each file first passes `onnx.checker.check_model(full_check=True)`. `--sabotage` then corrupts
the loaded model the way an exporter bug would, before predicting; the figures must then differ:
  transpose  the first MatMul/Gemm/Conv weight holds its values transposed (as a 2-D matrix,
             [rows, rest]) in the same shape: a kernel written in the wrong order
  epsilon    every BatchNormalization's epsilon is 1e-5 (ONNX's default) instead of Keras's 1e-3
"""

import argparse
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper

from numpy_forward import find, read_idx

BATCH = 1000
EPSILON_SABOTAGE = 1e-5


def transpose_first_weight(model):
    graph = model.graph
    node = next((n for n in graph.node if n.op_type in ("MatMul", "Gemm", "Conv")), None)
    if node is None:
        raise SystemExit("--sabotage transpose: the model has no MatMul, Gemm or Conv")
    weight = next(t for t in graph.initializer if t.name == node.input[1])
    values = numpy_helper.to_array(weight)
    rows = values.reshape(values.shape[0], -1)
    wrong = np.ascontiguousarray(rows.T).reshape(values.shape)
    weight.CopyFrom(numpy_helper.from_array(wrong, weight.name))


def set_batch_norm_epsilon(model, epsilon):
    nodes = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    if not nodes:
        raise SystemExit("--sabotage epsilon: the model has no BatchNormalization")
    for node in nodes:
        for attribute in node.attribute:
            if attribute.name == "epsilon":
                attribute.f = epsilon


SABOTAGE = {"transpose": transpose_first_weight, "epsilon": lambda m: set_batch_norm_epsilon(m, EPSILON_SABOTAGE)}


def evaluate(path, sabotage, pixels, labels):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    if sabotage:
        SABOTAGE[sabotage](model)
        source = model.SerializeToString()
    else:
        source = str(path)
    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    (model_input,) = session.get_inputs()
    x = pixels.reshape((-1, *model_input.shape[1:]))
    probabilities = np.concatenate(
        [session.run(None, {model_input.name: x[i : i + BATCH]})[0] for i in range(0, len(x), BATCH)]
    )
    right = int((probabilities.argmax(axis=1) == labels).sum())
    picked = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    return right, float(np.mean(-np.log(picked)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--sabotage", choices=sorted(SABOTAGE))
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args()
    images = read_idx(find(args.data_dir, "t10k-images-idx3-ubyte"))
    labels = read_idx(find(args.data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)
    pixels = images.astype(np.float32) / np.float32(255)
    for path in args.files:
        right, loss = evaluate(path, args.sabotage, pixels, labels)
        print(path, right, f"{loss:.8f}")


if __name__ == "__main__":
    main()
