#!/usr/bin/env python3
"""Generates the layer benchmark's reproducible tree (same seed -> same bytes).

Usage: gen_tree.py DIR [SCALE]   (SCALE 1.0 is about 500 MB)

- many small files: ~24k source-like text files of 0.5-24 KiB in nested packages (~290 MB);
- two 64 MiB incompressible files (model weights);
- one 64 MiB compressible file (JSON-like numbers and words).
"""
import os
import random
import sys

WORDS = (
    "import def class return self torch numpy from if else for in while with as try except "
    "lambda yield None True False tensor model predict input output path weights layer cog "
    "config value index shape dtype float int str list dict async await raise pass"
).split()


def text(rng, size):
    out = []
    n = 0
    while n < size:
        indent = "    " * rng.randrange(4)
        line = indent + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 12)))
        line += "  # %d\n" % rng.randrange(100000) if rng.random() < 0.3 else "\n"
        out.append(line)
        n += len(line)
    return "".join(out)[:size].encode()


def main():
    root = sys.argv[1]
    scale = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    rng = random.Random(20261122)
    os.makedirs(root, exist_ok=True)
    small = int(24000 * scale)
    for index in range(small):
        pkg = os.path.join(root, "site-packages", "pkg%03d" % (index % 300), "sub%d" % (index % 7))
        os.makedirs(pkg, exist_ok=True)
        size = int(rng.triangular(512, 24576, 8000))
        with open(os.path.join(pkg, "mod%05d.py" % index), "wb") as f:
            f.write(text(rng, size))
    big = int(64 * 1024 * 1024 * scale)
    weights = os.path.join(root, "weights")
    os.makedirs(weights, exist_ok=True)
    for index in range(2):
        with open(os.path.join(weights, "shard%d.safetensors" % index), "wb") as f:
            f.write(rng.randbytes(big))
    with open(os.path.join(weights, "tokenizer.json"), "wb") as f:
        chunk = []
        n = 0
        while n < big:
            piece = '{"id": %d, "token": "%s", "score": %.6f},\n' % (
                n, rng.choice(WORDS) + rng.choice(WORDS), rng.random())
            chunk.append(piece)
            n += len(piece)
        f.write("".join(chunk).encode()[:big])
    os.makedirs(os.path.join(root, "empty-dir"), exist_ok=True)


if __name__ == "__main__":
    main()
