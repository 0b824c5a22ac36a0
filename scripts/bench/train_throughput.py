"""Training throughput of one SPOS supernet step (draw a path, forward,
backward, SGD step) in razor and in PyTorch on the same machine, in one run.

    /usr/bin/python3 scripts/bench/train_throughput.py [--tags openblas] [--steps N] [--threads N]

razor's side is `go test -bench SupernetStep ./algorithms` (compiled first,
then run as its own process); PyTorch's side is the reference model of
scripts/fixtures/shufflenet_fixtures.py with torch.set_num_threads(N)
(razor runs with GOMAXPROCS=N; N is 2 by default). Both
train the full-width ShuffleNetV2 search space with 10 classes: batch 64 at
32x32 and batch 32 at 224x224. Each side reports the median images/s over
its measured steps, after untimed warm-up steps (PyTorch allocates and
picks kernels on an op's first use, and a random path meets new ops for a
while), and its peak resident memory (ru_maxrss of the process).

Run it on an otherwise idle machine: PyTorch's OpenMP threads spin while
they wait, so with other processes on the cores its times grow many-fold
(a shared machine once made it look ten times slower than it is).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CASES = [(64, 32), (32, 224)]


WARMUP = 8


def torch_side(batch, size, steps, threads):
    """Runs in a child process so its peak memory is its own."""
    code = r"""
import random, resource, statistics, sys, time
import torch, torch.nn.functional as F
sys.path.insert(0, %r)
import shufflenet_fixtures as sf
torch.set_num_threads(%d)
torch.manual_seed(0)
rng = random.Random(0)
batch, size, steps, warmup = %d, %d, %d, %d
model = sf.Classifier(10, widen_factor=1.0)
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=4e-5)
x = torch.randn(batch, 3, size, size)
y = torch.randint(0, 10, (batch,))
blocks = list(model.backbone.blocks.keys())
times = []
for i in range(warmup + steps):
    t = time.perf_counter()
    model.backbone.choose({b: rng.choice(sf.OPS) for b in blocks})
    loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if i >= warmup:
        times.append(time.perf_counter() - t)
print(batch / statistics.median(times))
""" % (os.path.join(ROOT, "scripts", "fixtures"), threads, batch, size, steps, WARMUP)
    proc = subprocess.run(["/usr/bin/time", "-f", "maxrss %M", sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(proc.stdout.split()[0]), peak_mib(proc.stderr)


def peak_mib(stderr):
    """Reads GNU time's `maxrss KiB` line."""
    m = re.findall(r"maxrss ([0-9]+)", stderr)
    if not m:
        sys.exit("no maxrss in:\n" + stderr)
    return int(m[-1]) / 1024


def go_side(batch, size, steps, threads, binary):
    cmd = ["/usr/bin/time", "-f", "maxrss %M", binary, "-test.run", "XXX", "-test.bench", "SupernetStep/batch%d_%dx%d$" % (batch, size, size),
           "-test.benchtime", "%dx" % steps, "-test.count", "3"]
    env = dict(os.environ, GOMAXPROCS=str(threads))
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=os.path.join(ROOT, "algorithms"), env=env)
    rates = [float(m) for m in re.findall(r"([0-9.]+) images/s", proc.stdout)]
    if not rates:
        sys.exit("no benchmark result in:\n" + proc.stdout + proc.stderr)
    return statistics.median(rates), peak_mib(proc.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tags", default="", help="go build tags, e.g. openblas")
    ap.add_argument("--steps", type=int, default=10, help="measured steps per run")
    ap.add_argument("--threads", type=int, default=2, help="torch threads and GOMAXPROCS")
    args = ap.parse_args()
    binary = os.path.join(tempfile.mkdtemp(), "algorithms.test")
    build = ["go", "test", "-c", "-o", binary]
    if args.tags:
        build += ["-tags", args.tags]
    subprocess.run(build + ["./algorithms"], check=True, cwd=ROOT)
    print("| case | razor%s images/s | PyTorch images/s | razor / PyTorch | razor peak MiB | PyTorch peak MiB |"
          % (" (" + args.tags + ")" if args.tags else " (pure Go)"))
    print("|---|---|---|---|---|---|")
    for batch, size in CASES:
        steps = args.steps if size < 100 else max(2, args.steps // 2)
        g, gm = go_side(batch, size, steps, args.threads, binary)
        t, tm = torch_side(batch, size, steps, args.threads)
        print("| batch %d, %dx%d | %.1f | %.1f | %.2f | %.0f | %.0f |" % (batch, size, size, g, t, g / t, gm, tm), flush=True)


if __name__ == "__main__":
    main()
