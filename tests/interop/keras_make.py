"""Builds the study's models in Keras itself, trains them briefly on the real Fashion-MNIST
training set, saves them as .keras files and prints what Keras scores them at on the test set:
one line per file, `FILE RIGHT LOSS` (as keras_check.py prints it), for fashion-gpu's
`eval --weights FILE.keras` to be compared with.

Usage: KERAS_BACKEND=jax keras_make.py OUT_DIR [DATA_DIR]

Writes OUT_DIR/keras_baseline.keras (Flatten, Dense 256 relu, Dense 128 relu, Dense 10 softmax),
OUT_DIR/keras_batchnorm.keras (4 x [Dense linear, BatchNormalization, Activation relu] with
256, 256, 128, 128 units, then Dense 10 linear, BatchNormalization, Activation softmax; trained,
so its moving statistics are far from their 0/1 start) and OUT_DIR/keras_cnn.keras
(ZeroPadding2D 1, Conv2D 4 3x3 relu, 2 x MaxPooling2D, Flatten, Dense 10 softmax; saved
without optimizer state, small enough to be a fuzz seed). Seeded: the same files every run.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from numpy_forward import find, read_idx  # noqa: E402

SEED = 20240501
STEPS = 300
BATCH = 100


def baseline():
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="baseline",
    )


def batchnorm():
    model = keras.Sequential([keras.Input((28, 28)), layers.Flatten()], name="batchnorm")
    for units in (256, 256, 128, 128):
        model.add(layers.Dense(units))
        model.add(layers.BatchNormalization())
        model.add(layers.Activation("relu"))
    model.add(layers.Dense(10))
    model.add(layers.BatchNormalization())
    model.add(layers.Activation("softmax"))
    return model


def cnn():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.ZeroPadding2D(1),
            layers.Conv2D(4, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ],
        name="cnn",
    )


def compile_model(model):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )


def score(path, x, labels):
    model = keras.saving.load_model(path)
    probabilities = model.predict(x.reshape((-1,) + tuple(model.input_shape[1:])), batch_size=1000, verbose=0)
    right = int((probabilities.argmax(axis=1) == labels).sum())
    loss = float(np.mean(-np.log(probabilities[np.arange(len(labels)), labels].astype(np.float64))))
    print(f"{path} {right} {loss:.8f}")


def main():
    out_dir = Path(sys.argv[1])
    data_dir = Path(sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist")
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(SEED)

    train_x = read_idx(find(data_dir, "train-images-idx3-ubyte"))[: STEPS * BATCH].astype(np.float32) / 255
    train_y = read_idx(find(data_dir, "train-labels-idx1-ubyte"))[: STEPS * BATCH].astype(np.int64)
    test_x = read_idx(find(data_dir, "t10k-images-idx3-ubyte")).astype(np.float32) / 255
    test_y = read_idx(find(data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)

    for name, build in (("baseline", baseline), ("batchnorm", batchnorm), ("cnn", cnn)):
        model = build()
        compile_model(model)
        x = train_x.reshape((-1,) + tuple(model.input_shape[1:]))
        model.fit(x, train_y, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)
        if name == "cnn":
            # A fresh compile drops Adam's moments: the file holds the weights alone.
            trained = model.get_weights()
            model = build()
            model.set_weights(trained)
            compile_model(model)
        path = out_dir / f"keras_{name}.keras"
        model.save(path)
        score(path, test_x, test_y)


if __name__ == "__main__":
    main()
