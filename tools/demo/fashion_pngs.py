#!/usr/bin/env python3
"""Writes Fashion-MNIST test images as PNG files named by index and true class, for predict/embed/similar demos.

    python3 tools/demo/fashion_pngs.py OUT_DIR [COUNT] [IDX_DIR]

COUNT (default 500) images from the start of the test set; IDX_DIR defaults to Debian's dataset-fashion-mnist.
Standard library only (the PNGs are 8-bit grayscale, written by hand).
"""
import gzip, os, struct, sys, zlib

CLASSES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
out = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
src = sys.argv[3] if len(sys.argv) > 3 else "/usr/share/datasets/fashion-mnist"


def read(name):
    with gzip.open(os.path.join(src, name), "rb") as f:
        data = f.read()
    rank = data[3]
    return struct.unpack(">" + "i" * rank, data[4:4 + 4 * rank]), data[4 + 4 * rank:]


def png(path, w, h, pixels):
    raw = b"".join(b"\x00" + pixels[y * w:(y + 1) * w] for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


(n, h, w), images = read("t10k-images-idx3-ubyte.gz")
_, labels = read("t10k-labels-idx1-ubyte.gz")
os.makedirs(out, exist_ok=True)
for i in range(min(count, n)):
    png(os.path.join(out, f"{i:05d}-{CLASSES[labels[i]]}.png"), w, h, images[i * h * w:(i + 1) * h * w])
print(f"{min(count, n)} images in {out}")
