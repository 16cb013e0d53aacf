#!/usr/bin/env python3
"""Regenerates the small sample datasets committed beside this script.

    python3 datasets/make_samples.py [--fmnist-dir /usr/share/datasets/fashion-mnist]

fmnist-sample/: the first 1000 training and the first 500 test images (and
their labels) of Fashion-MNIST, copied byte for byte from Debian's
dataset-fashion-mnist package and re-gzipped with a zero timestamp, so the
output is the same on every run.

sample.csv: 300 rows, header "label,x1,x2,x3,x4", 3 classes drawn from
well-separated Gaussians (class c has mean MEANS[c] and standard deviation 1 in
every feature), rows in random order; Python's random module, seed 1.

leaf-shakespeare-sample/: LEAF's Shakespeare JSON layout (train/ and test/,
users, num_samples, user_data with x = 80-character windows and y = the next
character) for 4 made-up "speaking roles", each with its own text: seeded
random sentences over a small word list (Python's random module, seed 2), so
the character LSTM's code paths can be run and compared without LEAF's data.
The text is not Shakespeare's; it only has LEAF's format.

Only the standard library is used.
"""
import argparse
import gzip
import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MEANS = [(0.0, 0.0, 0.0, 0.0), (4.0, 4.0, 0.0, -4.0), (-4.0, 4.0, 4.0, 0.0)]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        return f.read()


def write_gz(path, data):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
            f.write(data)


def cut_images(data, count):
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    assert magic == 0x803 and n >= count, "not an idx3-ubyte image file with enough images"
    return struct.pack(">IIII", magic, count, rows, cols) + data[16:16 + count * rows * cols]


def cut_labels(data, count):
    magic, n = struct.unpack(">II", data[:8])
    assert magic == 0x801 and n >= count, "not an idx1-ubyte label file with enough labels"
    return struct.pack(">II", magic, count) + data[8:8 + count]


def make_fmnist(src):
    out = os.path.join(HERE, "fmnist-sample")
    os.makedirs(out, exist_ok=True)
    for prefix, count in (("train", 1000), ("t10k", 500)):
        images = read_idx(os.path.join(src, prefix + "-images-idx3-ubyte.gz"))
        labels = read_idx(os.path.join(src, prefix + "-labels-idx1-ubyte.gz"))
        write_gz(os.path.join(out, prefix + "-images-idx3-ubyte.gz"), cut_images(images, count))
        write_gz(os.path.join(out, prefix + "-labels-idx1-ubyte.gz"), cut_labels(labels, count))


def make_csv():
    rng = random.Random(1)
    rows = []
    for c, mean in enumerate(MEANS):
        for _ in range(100):
            rows.append([c] + [rng.gauss(m, 1.0) for m in mean])
    rng.shuffle(rows)
    with open(os.path.join(HERE, "sample.csv"), "w", newline="\n") as f:
        f.write("label,x1,x2,x3,x4\n")
        for r in rows:
            f.write("{},{}\n".format(r[0], ",".join("{:.4f}".format(v) for v in r[1:])))


WORDS = ("the and of to my thy thou art lord king love night day sweet fair heart "
         "death life sword crown speak hear what shall not with this that your")


def make_leaf_shakespeare():
    rng = random.Random(2)
    words = WORDS.split()
    out = os.path.join(HERE, "leaf-shakespeare-sample")
    roles = ["ROLE_A", "ROLE_B", "ROLE_C", "ROLE_D"]
    split = {"train": {"users": [], "num_samples": [], "user_data": {}},
             "test": {"users": [], "num_samples": [], "user_data": {}}}
    for k, role in enumerate(roles):
        text = ""
        while len(text) < 400 + 60 * k:
            sentence = " ".join(rng.choice(words) for _ in range(rng.randint(3, 9)))
            text += sentence.capitalize() + rng.choice([". ", "! ", "? ", ", "])
        pairs = [(text[i:i + 80], text[i + 80]) for i in range(0, len(text) - 80, 3)]
        cut = int(len(pairs) * 0.8)
        for name, part in (("train", pairs[:cut]), ("test", pairs[cut:])):
            d = split[name]
            d["users"].append(role)
            d["num_samples"].append(len(part))
            d["user_data"][role] = {"x": [x for x, _ in part], "y": [y for _, y in part]}
    for name, d in split.items():
        os.makedirs(os.path.join(out, name), exist_ok=True)
        with open(os.path.join(out, name, "sample_{}.json".format(name)), "w", newline="\n") as f:
            json.dump(d, f, sort_keys=True)
            f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fmnist-dir", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    make_fmnist(args.fmnist_dir)
    make_csv()
    make_leaf_shakespeare()


if __name__ == "__main__":
    main()
