#!/usr/bin/env python3
"""Generate a deterministic benchmark tree: N files totalling about SIZE bytes.

Sizes follow a skewed distribution (many small files, a few large ones), like a real rootfs.
Usage: gen_tree.py DIR FILES TOTAL_BYTES
"""
import os
import random
import sys

def main():
    root, n, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(42)
    weights = [rng.paretovariate(1.2) for _ in range(n)]
    scale = total / sum(weights)
    block = os.urandom(1 << 20)
    for i, w in enumerate(weights):
        size = max(1, int(w * scale))
        d = os.path.join(root, f"d{i % 97:02d}", f"s{i % 13}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
            f.write(i.to_bytes(8, "little"))
            left = size
            while left > 0:
                chunk = block[: min(left, len(block))]
                f.write(chunk)
                left -= len(chunk)

if __name__ == "__main__":
    main()
