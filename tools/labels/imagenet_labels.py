#!/usr/bin/env python3
"""Writes torchvision's ImageNet-1k class names, one per line in class-index order, to the given file.

The names come from Debian's python3-torchvision (torchvision/models/_meta.py, _IMAGENET_CATEGORIES), read as a
Python literal without importing torchvision (no torch needed). `apt-get install -y python3-torchvision` if missing.

    tools/labels/imagenet_labels.py src/ResNetSharp.Imaging/Resources/imagenet1k_labels.txt
"""
import ast
import os
import sys

META = "/usr/lib/python3/dist-packages/torchvision/models/_meta.py"


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} OUT.txt", file=sys.stderr)
        return 2
    try:
        tree = ast.parse(open(META, encoding="utf-8").read(), META)
    except FileNotFoundError:
        print(f"{META} not found: apt-get install -y python3-torchvision", file=sys.stderr)
        return 1
    names = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_IMAGENET_CATEGORIES" for t in node.targets):
            names = ast.literal_eval(node.value)
    if names is None or len(names) != 1000 or any("\n" in n or not n for n in names):
        print(f"{META}: _IMAGENET_CATEGORIES missing or not 1000 one-line names", file=sys.stderr)
        return 1
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(n + "\n" for n in names)
    os.replace(tmp, sys.argv[1])
    print(f"wrote {len(names)} names to {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
