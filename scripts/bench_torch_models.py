#!/usr/bin/env python3
"""PyTorch's side of scripts/bench_vs_pytorch.sh: the same models as fedsim's
presets and old kinds (docs/models.md), written by hand with the same layer
shapes, trained with a plain torch.optim.SGD loop on generated data that is
already in tensors, at the same batch size and thread count
(torch.set_num_threads). Prints one JSON object.

Timing follows `fedsim bench-model`: one untimed warm-up epoch over the
samples, then as many whole epochs as fill --seconds, timed together.

LSTMs: PyTorch's nn.LSTM has two biases per gate (b_ih, b_hh); fedsim has one
(Keras' layout). b_hh is zeroed and frozen here, so the trainable parameter
count equals fedsim's and the maths is the same.
"""
import argparse
import ctypes
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LastStepLSTM(nn.Module):
    """Embedding, stacked LSTMs (batch first), then the head on the last step."""

    def __init__(self, vocab, dim, units, layers, head):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, units, num_layers=layers, batch_first=True)
        for name, p in self.lstm.named_parameters():
            if name.startswith("bias_hh"):
                with torch.no_grad():
                    p.zero_()
                p.requires_grad_(False)
        self.head = head

    def forward(self, x):
        out, _ = self.lstm(self.emb(x))
        return self.head(out[:, -1, :])


class EveryStepLSTM(LastStepLSTM):
    """As LastStepLSTM, but the head runs on every step (next-token prediction):
    logits of shape (batch, steps, classes)."""

    def forward(self, x):
        out, _ = self.lstm(self.emb(x))
        return self.head(out)


class BasicBlock(nn.Module):
    """conv 3x3 (stride), GroupNorm(2), ReLU, conv 3x3, GroupNorm(2), plus the
    identity or a 1x1 projection (no bias, no norm); ReLU after the sum."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n1 = nn.GroupNorm(2, cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.n2 = nn.GroupNorm(2, cout)
        self.proj = nn.Conv2d(cin, cout, 1, stride, 0, bias=False) if (stride != 1 or cin != cout) else None

    def forward(self, x):
        y = self.n2(self.c2(F.relu(self.n1(self.c1(x)))))
        return F.relu(y + (self.proj(x) if self.proj is not None else x))


def resnet20_gn(classes):
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.GroupNorm(2, 16), nn.ReLU()]
    cin = 16
    for stage in range(3):
        cout = 16 << stage
        for block in range(3):
            layers.append(BasicBlock(cin, cout, 2 if stage > 0 and block == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes)]
    return nn.Sequential(*layers)


def build(kind, vocab, hidden):
    """(model, input shape per sample, classes, token vocabulary or 0); next-token
    models' samples are rows of steps + 1 ids (see main)."""
    R = nn.ReLU
    if kind == "leaf_femnist_cnn":
        m = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), R(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding=2), R(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 2048), R(), nn.Linear(2048, 62))
        return m, (1, 28, 28), 62, 0
    if kind == "tff_emnist_cnn":
        m = nn.Sequential(nn.Conv2d(1, 32, 3), R(), nn.Conv2d(32, 64, 3), R(), nn.MaxPool2d(2), nn.Dropout(0.25),
                          nn.Flatten(), nn.Linear(9216, 128), R(), nn.Dropout(0.5), nn.Linear(128, 62))
        return m, (1, 28, 28), 62, 0
    if kind == "cnn_mcmahan":
        m = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), R(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding=2), R(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 512), R(), nn.Linear(512, 10))
        return m, (1, 28, 28), 10, 0
    if kind in ("niid_cifar_cnn", "cnn_lenet"):
        c, s, classes = (3, 32, 10) if kind == "niid_cifar_cnn" else (1, 28, 10)
        h = ((s - 4) // 2 - 4) // 2  # conv 5, pool 2, conv 5, pool 2
        f = 16 * h * h
        m = nn.Sequential(nn.Conv2d(c, 6, 5), R(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), R(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(f, 120), R(), nn.Linear(120, 84), R(), nn.Linear(84, classes))
        return m, (c, s, s), classes, 0
    if kind == "resnet20_gn":
        return resnet20_gn(10), (3, 32, 32), 10, 0
    if kind == "leaf_shakespeare_lstm":
        return LastStepLSTM(80, 8, 256, 2, nn.Linear(256, 80)), (80,), 80, 80
    if kind == "tff_stackoverflow_lstm":
        # TFF's next-word model: embedding 96, LSTM 670 over every step, dense 96, dense 10,004.
        head = nn.Sequential(nn.Linear(670, 96), nn.Linear(96, 10004))
        return EveryStepLSTM(10004, 96, 670, 1, head), (21,), 10004, 10004
    if kind == "sent140_lstm":
        head = nn.Sequential(nn.Linear(100, 128), nn.Linear(128, 2))
        return LastStepLSTM(vocab, 100, 100, 2, head), (25,), 2, vocab
    if kind == "mlp":
        sizes = [784] + hidden + [10]
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i + 2 < len(sizes):
                layers.append(R())
        return nn.Sequential(*layers), (784,), 10, 0
    raise SystemExit(f"bench_torch_models.py: unknown model {kind}")


def blas_name():
    """The BLAS that torch's dense layers and LSTMs call (Debian's torch is built
    against the generic libblas.so.3, i.e. whichever alternative is installed)."""
    try:
        lib = ctypes.CDLL("libblas.so.3")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return "OpenBLAS " + lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "not OpenBLAS (reference BLAS?)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--hidden", default="200,200")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--vocab", type=int, default=10001)
    ap.add_argument("--lr", type=float, default=0.01)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    hidden = [int(v) for v in a.hidden.split(",") if v]
    model, shape, classes, vocab = build(a.model, a.vocab, hidden)
    model.train()
    every_step = isinstance(model, EveryStepLSTM)
    if every_step:
        # Rows of steps + 1 ids without pad (id 0), as fedsim's bench-model draws them: the model reads the first
        # steps ids and predicts the next id at every step.
        rows = torch.randint(1, vocab, (a.samples,) + shape)
        x, y = rows[:, :-1].contiguous(), rows[:, 1:].contiguous()
    elif vocab:
        x = torch.randint(vocab, (a.samples,) + shape)
        y = torch.randint(classes, (a.samples,))
    else:
        x = torch.rand((a.samples,) + shape)
        y = torch.randint(classes, (a.samples,))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=a.lr)

    def epoch():
        loss = None
        for i in range(0, a.samples, a.batch):
            opt.zero_grad(set_to_none=True)
            out = model(x[i:i + a.batch])
            if every_step:
                loss = F.cross_entropy(out.reshape(-1, classes), y[i:i + a.batch].reshape(-1))
            else:
                loss = F.cross_entropy(out, y[i:i + a.batch])
            loss.backward()
            opt.step()
        return loss

    t0 = time.perf_counter()
    epoch()
    warm = max(1e-6, time.perf_counter() - t0)
    epochs = max(1, math.ceil(a.seconds / warm))
    t0 = time.perf_counter()
    for _ in range(epochs):
        loss = epoch()
    s = time.perf_counter() - t0
    print(json.dumps({"model": a.model, "num_params": sum(p.numel() for p in params), "batch": a.batch,
                      "threads": torch.get_num_threads(), "epochs": epochs, "samples": epochs * a.samples,
                      "seconds": s, "samples_per_second": epochs * a.samples / s, "final_loss": float(loss),
                      "torch": torch.__version__, "blas": blas_name()}))


if __name__ == "__main__":
    main()
