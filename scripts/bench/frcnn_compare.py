#!/usr/bin/python3
"""Side-by-side inference time of razor's Faster R-CNN and the same model in
PyTorch, in interleaved rounds, with medians and the razor/PyTorch ratio.

What is measured: one inference of the DetNAS subnet Faster R-CNN + FPN
(configs/nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_1x_coco.yaml) on
the hashfill 1333x800 image (padded to 1344x800), hashfill weights, eval
mode: backbone, FPN, RPN head, proposals with their NMS, RoIAlign of the
1000 proposals, the box head and the multiclass NMS. razor's side is
BenchmarkFasterRCNNInference (models/detectors/bench_test.go, the whole
models.Predict); PyTorch's is scripts/bench/frcnn_torch.py, the independent
re-implementation the detector's reference test checks razor against, so
both do the same work down to the same proposals and detections. Each
side runs on --threads threads (GOMAXPROCS for razor, torch.set_num_threads
for PyTorch) and times single calls after one warm-up call.

Run from anywhere with Debian's system python3 (python3-torch 1.13,
torchvision 0.14) and Go on PATH:

    /usr/bin/python3 scripts/bench/frcnn_compare.py [--rounds 5] [--threads 2]

By default it builds two test binaries of models/detectors, "openblas"
(-tags openblas, needs Debian's libopenblas-dev) and "go" (CGO_ENABLED=0,
the pure-Go build), then in each round runs every binary and the PyTorch
script once each, alternating the order between rounds, because on a
shared machine the load drifts over minutes. Every run is one process:
build the model, one warm-up inference, --iters timed inferences (their
mean is the run's time). It prints each run's seconds, then the median per
contestant and the ratio of each razor build's median to PyTorch's, and
the median of the per-round ratios (each from runs minutes apart at most).

--razor LABEL=PATH (repeatable) times prebuilt test binaries instead, for
before/after comparisons of razor alone or against PyTorch, for example:

    go test -tags openblas -c -o /tmp/before.test ./models/detectors/
    ... change the kernels ...
    go test -tags openblas -c -o /tmp/after.test ./models/detectors/
    /usr/bin/python3 scripts/bench/frcnn_compare.py --razor before=/tmp/before.test \\
        --razor after=/tmp/after.test --no-torch
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PKG_DIR = os.path.join(ROOT, "models", "detectors")
BENCH = "BenchmarkFasterRCNNInference"


def build(tmp):
    """The default contestants: the openblas and the pure-Go test binary."""
    bins = []
    for label, tags, cgo in (("openblas", ["-tags", "openblas"], "1"), ("go", [], "0")):
        path = os.path.join(tmp, "detectors_%s.test" % label)
        env = dict(os.environ, CGO_ENABLED=cgo)
        subprocess.run(["go", "test", "-c", "-o", path] + tags + ["./models/detectors/"],
                       cwd=ROOT, env=env, check=True)
        bins.append((label, path))
    return bins


def run_razor(path, iters, threads):
    """Seconds per inference of one benchmark process."""
    env = dict(os.environ, GOMAXPROCS=str(threads))
    out = subprocess.run([path, "-test.run", "^$", "-test.bench", "^%s$" % BENCH,
                          "-test.benchtime", "%dx" % iters],
                         cwd=PKG_DIR, env=env, capture_output=True, text=True)
    m = re.search(r"^%s\S*\s+\d+\s+(\d+(?:\.\d+)?) ns/op" % BENCH, out.stdout, re.M)
    if out.returncode != 0 or m is None:
        sys.exit("%s failed (exit %d):\n%s%s" % (path, out.returncode, out.stdout, out.stderr))
    return float(m.group(1)) / 1e9


def run_torch(iters, threads):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench", "frcnn_torch.py"),
                          "--runs", str(iters), "--threads", str(threads)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("frcnn_torch.py failed (exit %d):\n%s%s" % (out.returncode, out.stdout, out.stderr))
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["detections"] != 100:
        sys.exit("frcnn_torch.py made %d detections, the fixture 100: not the same model" % res["detections"])
    return statistics.mean(res["seconds"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=1, help="timed inferences per run, after one warm-up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--razor", action="append", default=[], metavar="LABEL=PATH",
                    help="a prebuilt models/detectors test binary (repeatable); default: build openblas and go")
    ap.add_argument("--no-torch", action="store_true", help="time razor's binaries alone")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        bins = [tuple(s.split("=", 1)) for s in args.razor] if args.razor else build(tmp)
        contestants = [(label, lambda p=path: run_razor(p, args.iters, args.threads)) for label, path in bins]
        if not args.no_torch:
            contestants.append(("torch", lambda: run_torch(args.iters, args.threads)))
        print("# Faster R-CNN + FPN (DetNAS subnet) inference, 1333x800 padded to 1344x800, "
              "1000 RoIs, %d threads; seconds per inference, %d round(s) of interleaved runs"
              % (args.threads, args.rounds), flush=True)
        times = {label: [] for label, _ in contestants}
        for r in range(args.rounds):
            order = contestants if r % 2 == 0 else contestants[::-1]
            for label, run in order:
                t = run()
                times[label].append(t)
                print("round %d  %-10s %8.3f s" % (r + 1, label, t), flush=True)

    print("\nmedian over %d rounds:" % args.rounds)
    med = {label: statistics.median(ts) for label, ts in times.items()}
    for label, ts in times.items():
        print("  %-10s %8.3f s   (runs: %s)" % (label, med[label], " ".join("%.3f" % t for t in ts)))
    base = "torch" if "torch" in times else bins[0][0]
    for label, _ in bins:
        if label == base:
            continue
        paired = statistics.median(a / b for a, b in zip(times[label], times[base]))
        print("  %s/%s: %.3f (ratio of medians), %.3f (median of per-round ratios)"
              % (label, base, med[label] / med[base], paired))


if __name__ == "__main__":
    main()
