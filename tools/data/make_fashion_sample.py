#!/usr/bin/env python3
"""Writes the Fashion-MNIST sample embedded in the library (src/ResNetSharp/Data/Samples).

The first 300 training and 100 test images of each class, in the original order, from Debian's
dataset-fashion-mnist (apt-get install dataset-fashion-mnist). Standard library only.

    python3 tools/data/make_fashion_sample.py [/usr/share/datasets/fashion-mnist]
"""
import gzip, os, struct, sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
DST = os.path.join(os.path.dirname(__file__), "..", "..", "src", "ResNetSharp", "Data", "Samples")
PER_CLASS = {"train": 300, "t10k": 100}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = struct.unpack(">" + "i" * rank, data[4:4 + 4 * rank])
    return dims, data[4 + 4 * rank:]


def write_idx(path, dims, payload):
    header = bytes([0, 0, 8, len(dims)]) + struct.pack(">" + "i" * len(dims), *dims)
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(header + payload)
    os.replace(tmp, path)


for split, per_class in PER_CLASS.items():
    (n, h, w), pixels = read_idx(os.path.join(SRC, f"{split}-images-idx3-ubyte.gz"))
    _, labels = read_idx(os.path.join(SRC, f"{split}-labels-idx1-ubyte.gz"))
    taken, counts = [], [0] * 10
    for i, y in enumerate(labels):
        if counts[y] < per_class:
            counts[y] += 1
            taken.append(i)
    images = b"".join(pixels[i * h * w:(i + 1) * h * w] for i in taken)
    write_idx(os.path.join(DST, f"{split}-images-idx3-ubyte.gz"), (len(taken), h, w), images)
    write_idx(os.path.join(DST, f"{split}-labels-idx1-ubyte.gz"), (len(taken),), bytes(labels[i] for i in taken))
    print(f"{split}: {len(taken)} images")
