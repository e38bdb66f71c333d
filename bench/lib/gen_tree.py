"""The `path` benchmark tree: thousands of small files (mixed compressible
text and random bytes) and a few large ones, the same bytes every run
(seeded). Used by bench/path_backup.sh and bench/restore.sh.

    python3 bench/lib/gen_tree.py DIR [SCALE]
"""
import os, random, sys
root, scale = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
rng = random.Random(42)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])
# Thousands of small files (mixed compressible text and random bytes).
for i in range(20000 * scale):
    d = os.path.join(root, "small", f"d{i // 500:03d}")
    os.makedirs(d, exist_ok=True)
    n = rng.randint(2048, 16384)
    body = text(n) if i % 3 else os.urandom(n)
    with open(os.path.join(d, f"f{i:06d}.dat"), "wb") as f:
        f.write(body)
# A few large ones: two incompressible, two compressible (logs).
os.makedirs(os.path.join(root, "large"), exist_ok=True)
for i in range(2 * scale):
    with open(os.path.join(root, "large", f"blob{i}.bin"), "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    with open(os.path.join(root, "large", f"log{i}.txt"), "wb") as f:
        chunk = text(1 << 20)
        for k in range(100):
            f.write(chunk[k:] + chunk[:k])
