#!/usr/bin/env python3
"""A PyTorch run of one of the study's MLPs on the real Fashion-MNIST, for the accuracy a peer
reaches with the same recipe: the figure `fashion-gpu compare` is held to where the study's own
figure cannot serve (its `l2` model: the study's penalty never reached its loss).

    python3 bench/pytorch_study.py --model l2 --epochs 30 --seeds 3

Prints one line per epoch in the compare CSV's columns (model, seed, epoch, loss,
train_accuracy, test_loss, test_accuracy, seconds) after a header, then the mean ± sd of the last
epoch's test accuracy over the seeds.

The recipe is fashion-gpu's: Dense layers with ReLU (`baseline` 256-128, `deep` and `l2`
256-256-128-128), Glorot-uniform kernels and zero biases, categorical cross-entropy, Adam (lr 1e-3,
β1 0.9, β2 0.999, ε 1e-7), batch 100, the training set reshuffled every epoch. `l2` adds Keras's
l2(0.002) penalty, λ·Σw² over every Dense kernel (not the biases), to the loss it minimises and
reports as the training loss (the test loss is the cross-entropy alone, as in fashion-gpu's history).
The loss and train accuracy are the steps' own (before each update, as Keras's `fit`).
"""

import argparse
import os
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import FASHION_DIR, PIXELS, baseline, find_idx, read_idx  # noqa: E402

HIDDEN = {"baseline": [256, 128], "deep": [256, 256, 128, 128], "l2": [256, 256, 128, 128]}
L2 = {"l2": 0.002}


def load_split(directory, prefix):
    """Images as float [n, 784] in [0, 1] and labels as int64 [n] of `train` or `t10k`."""
    (count, rows, cols), pixels = read_idx(find_idx(directory, f"{prefix}-images-idx3-ubyte"))
    (label_count,), labels = read_idx(find_idx(directory, f"{prefix}-labels-idx1-ubyte"))
    if count != label_count or rows * cols != PIXELS:
        sys.exit(f"the {prefix} images and labels do not match")
    images = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).reshape(count, PIXELS).float() / 255.0
    return images, torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()


def penalty(model, l2):
    return l2 * sum((layer.weight**2).sum() for layer in model if isinstance(layer, nn.Linear))


def run(model_name, seed, epochs, batch, train, test):
    torch.manual_seed(seed)
    model = baseline(HIDDEN[model_name])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    l2 = L2.get(model_name, 0.0)
    (x_train, y_train), (x_test, y_test) = train, test
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(x_train.shape[0])
        loss_sum, hits = 0.0, 0
        for start in range(0, x_train.shape[0], batch):
            index = order[start : start + batch]
            logits = model(x_train[index])
            loss = loss_fn(logits, y_train[index])
            if l2:
                loss = loss + penalty(model, l2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(index)
            hits += (logits.argmax(1) == y_train[index]).sum().item()
        seconds = time.perf_counter() - started
        model.eval()
        with torch.no_grad():
            logits = model(x_test)
            test_loss = loss_fn(logits, y_test).item()
            test_accuracy = (logits.argmax(1) == y_test).float().mean().item()
        samples = x_train.shape[0]
        print(
            f"{model_name},{seed},{epoch},{loss_sum / samples:.6f},{hits / samples:.6f},"
            f"{test_loss:.6f},{test_accuracy:.4f},{seconds:.3f}",
            flush=True,
        )
    return test_accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(HIDDEN), default="l2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=1, help="seeds FIRST..FIRST+N-1")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--data-dir", default=FASHION_DIR)
    args = parser.parse_args()
    if args.epochs < 1 or args.seeds < 1 or args.batch < 1:
        sys.exit("--epochs, --seeds and --batch must be at least 1")
    train, test = load_split(args.data_dir, "train"), load_split(args.data_dir, "t10k")
    print("model,seed,epoch,loss,train_accuracy,test_loss,test_accuracy,seconds")
    finals = [run(args.model, seed, args.epochs, args.batch, train, test) for seed in range(args.first_seed, args.first_seed + args.seeds)]
    sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
    print(f"# {args.model}: test accuracy after {args.epochs} epochs {statistics.mean(finals):.4f} ± {sd:.4f} over {len(finals)} seeds")


if __name__ == "__main__":
    main()
