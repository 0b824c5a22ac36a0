#!/usr/bin/python3
"""Times models/ops' benchmark cases in PyTorch and prints Go/PyTorch ratios.

Run with Debian's system python3 (python3-torch) on two threads, the same
budget the Go kernels get on a 2-core machine:

    go test -run '^$' -bench Ops -benchtime 10x -count 15 ./models/ops/ > /tmp/go.txt
    go test -tags openblas -run '^$' -bench Ops -benchtime 10x -count 15 ./models/ops/ > /tmp/openblas.txt
    /usr/bin/python3 scripts/bench/ops_torch.py /tmp/go.txt=go /tmp/openblas.txt=openblas

Each argument is a `go test -bench` output file ("-" for stdin), optionally
followed by "=label". Go timings are the median over the -count
repetitions of the mean of -benchtime calls (each after a warm-up call);
PyTorch timings are the median of --runs timed calls after warm-up, taken
in interleaved rounds over all cases: both sides warm. (With -benchtime 1x
a Go timing is one call straight after the benchmark's start, whose first
touch of pooled buffers and parked helper threads made the same 1x1
convolution take 1.85-3.65 ms against 1.75-2.16 ms warm.) Without
arguments it prints the PyTorch timings alone.

On a machine shared with other work, load also changes between the Go and
the PyTorch runs. Interleave them instead: in each round run the Go
benchmarks a few times (appending to the same files) and save a PyTorch
round with --save; then print with --load over all saved rounds (the median
per case across rounds):

    for r in 1 2 3 4 5; do
      go test -run '^$' -bench Ops -benchtime 10x -count 3 ./models/ops/ >> /tmp/go.txt
      go test -tags openblas -run '^$' -bench Ops -benchtime 10x -count 3 ./models/ops/ >> /tmp/openblas.txt
      /usr/bin/python3 scripts/bench/ops_torch.py --runs 3 --save /tmp/torch$r.json
    done
    /usr/bin/python3 scripts/bench/ops_torch.py --load '/tmp/torch?.json' /tmp/go.txt=go /tmp/openblas.txt=openblas

The cases mirror BenchmarkOps in models/ops/bench_test.go (batch 32):
  conv1x1/{C/2}x{H}x{W}   1x1 convolution, C/2 -> C/2 channels
  dw{k}/{C}x{H}x{W}       depthwise kxk, stride 1, padding k/2
  bn/{C}x{H}x{W}          batch norm, training mode
"fwd" is the forward pass (no autograd recording); "bwd" computes every
gradient (input and weight; input, weight and bias for batch norm) from a
recorded forward.
"""
import argparse
import glob
import json
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F

BATCH = 32
STAGES = [(64, 56), (160, 28), (320, 14), (640, 7)]


def cases():
    """Yields (name, forward, backward) for every benchmark case."""
    for c, hw in STAGES:
        half = c // 2
        yield from conv_case("conv1x1/%dx%dx%d" % (half, hw, hw), half, hw, half, 1, 1)
        for k in (3, 5, 7):
            yield from conv_case("dw%d/%dx%dx%d" % (k, c, hw, hw), c, hw, c, k, c)
        yield from bn_case("bn/%dx%dx%d" % (c, hw, hw), c, hw)


def conv_case(name, cin, hw, cout, k, groups):
    x = torch.randn(BATCH, cin, hw, hw, requires_grad=True)
    w = torch.randn(cout, cin // groups, k, k, requires_grad=True)

    def fwd():
        with torch.no_grad():
            F.conv2d(x, w, padding=k // 2, groups=groups)

    y = F.conv2d(x, w, padding=k // 2, groups=groups)
    gy = torch.randn_like(y)

    def bwd():
        torch.autograd.grad(y, [x, w], gy, retain_graph=True)

    yield name + "/fwd", fwd
    yield name + "/bwd", bwd


def bn_case(name, c, hw):
    x = torch.randn(BATCH, c, hw, hw, requires_grad=True)
    gamma = torch.randn(c, requires_grad=True)
    beta = torch.randn(c, requires_grad=True)
    rm, rv = torch.zeros(c), torch.ones(c)

    def fwd():
        with torch.no_grad():
            F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)

    y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    gy = torch.randn_like(y)

    def bwd():
        torch.autograd.grad(y, [x, gamma, beta], gy, retain_graph=True)

    yield name + "/fwd", fwd
    yield name + "/bwd", bwd


def time_torch(runs, pattern):
    """Returns {case: median seconds}. Cases are timed in interleaved
    rounds, so a burst of load on the shared machine spreads over all cases
    instead of spoiling one."""
    selected = [(name, f) for name, f in cases() if not pattern or re.search(pattern, name)]
    for _, f in selected:
        for _ in range(2):
            f()
    times = {name: [] for name, _ in selected}
    for _ in range(runs):
        for name, f in selected:
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


BENCH_LINE = re.compile(r"^BenchmarkOps/(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op")


def read_go(spec):
    """Parses a go test -bench output into {case: median seconds}."""
    path, _, label = spec.partition("=")
    label = label or path
    f = sys.stdin if path == "-" else open(path)
    runs = {}
    with f:
        for line in f:
            m = BENCH_LINE.match(line)
            if m:
                runs.setdefault(m.group(1), []).append(float(m.group(2)) * 1e-9)
    if not runs:
        sys.exit("%s: no BenchmarkOps lines; run go test -bench Ops and pass its output" % path)
    return label, {k: statistics.median(v) for k, v in runs.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("go", nargs="*", help="go test -bench output file (or -), optionally =label")
    ap.add_argument("--runs", type=int, default=15, help="timed PyTorch calls per case (median reported)")
    ap.add_argument("--filter", default="", help="regular expression selecting cases")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--save", metavar="FILE", help="write this run's PyTorch timings to FILE as JSON and stop")
    ap.add_argument("--load", metavar="GLOB",
                    help="use the median of the saved PyTorch rounds matching GLOB instead of timing now")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    go = [read_go(spec) for spec in args.go]
    loaded = sorted(glob.glob(args.load)) if args.load else []
    if args.load and not loaded:
        sys.exit("--load %s: no saved rounds match" % args.load)
    if loaded:
        rounds = []
        for path in loaded:
            with open(path) as f:
                rounds.append(json.load(f))
        torch_times = {name: statistics.median(r[name] for r in rounds if name in r)
                       for name in rounds[0] if not args.filter or re.search(args.filter, name)}
    else:
        torch_times = time_torch(args.runs, args.filter)
    if args.save:
        with open(args.save, "w") as f:
            json.dump(torch_times, f, indent=1)
        return

    header = ["case", "torch ms"]
    for label, _ in go:
        header += ["%s ms" % label, "%s/torch" % label]
    rows = []
    for name, t in torch_times.items():
        row = [name, "%.3f" % (t * 1e3)]
        for _, times in go:
            if name in times:
                row += ["%.3f" % (times[name] * 1e3), "%.2f" % (times[name] / t)]
            else:
                row += ["-", "-"]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    rounds = " (median of %d saved rounds)" % len(loaded) if loaded else ""
    print("torch %s, %d threads, batch %d%s" % (torch.__version__, args.threads, BATCH, rounds))
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |")


if __name__ == "__main__":
    main()
