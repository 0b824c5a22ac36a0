#!/usr/bin/python3
"""Side-by-side training-step time and peak memory of razor's Faster R-CNN
and the same model in PyTorch, in interleaved rounds, with medians and the
PyTorch/razor ratio.

What is measured: one training step of the DetNAS subnet Faster R-CNN +
FPN on hashfill weights and images with the same six ground-truth boxes
per image: the train-mode forward (BN on batch statistics, the samplers
and proposals of the case's train_cfg, gts added as RoIs), the backward
of the summed losses and an SGD step (lr 0.02, momentum 0.9, weight decay
1e-4). razor's side is BenchmarkFasterRCNNTrainStep/CASE
(models/detectors/bench_test.go: the model built from
configs/nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_1x_coco.yaml, with
overrides for "recipe"); PyTorch's is scripts/bench/frcnn_train_torch.py,
the re-implementation razor's training reference test checks against.
Cases:
  coco    two 800x1333 images (padded to 800x1344), the COCO config's model
          and samplers (PyTorch's case 1333x800x2)
  recipe  two 256x256 images, the digits recipe's model (half-width
          backbone, 64-channel FPN and heads, anchor scale 4, 10 classes,
          RCNN sampler 128, 300 proposals)
Samplers draw at random on both sides from different generators, so the
sampled anchors and RoIs differ; the work per step does not. As a check
that both built the same model, the script refuses parameter counts that
differ and prints each side's loss of its warm-up step (close, not equal).

Run from anywhere with Debian's system python3 (python3-torch 1.13,
torchvision 0.14), Go on PATH and libopenblas-dev:

    /usr/bin/python3 scripts/bench/frcnn_train_compare.py [--rounds 5] [--threads 2] \\
        [--cases coco,recipe] [--iters coco=2 --iters recipe=10]

It builds the models/detectors test binary once (go test -c -tags
openblas), then for each case runs R rounds; a round is one razor process
and one PyTorch process, their order alternating between rounds, because
on a shared machine the load drifts over minutes. Every run is its own
process (so its peak RSS, getrusage ru_maxrss, is its own): build the
model, one untimed warm-up step, then --iters timed steps whose mean is
the run's seconds per step. razor runs with GOMAXPROCS and
OPENBLAS_NUM_THREADS set to --threads, PyTorch with
torch.set_num_threads(--threads). It prints every run, then per case the
median over rounds of seconds per step, images per second and peak RSS
of each side, and torch/razor (above 1: razor is faster).

--razor PATH times a prebuilt test binary instead of building one.
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
BENCH = "BenchmarkFasterRCNNTrainStep"
# razor's case name: (PyTorch's case name, images per step, default timed steps per run)
CASES = {"coco": ("1333x800x2", 2, 2), "recipe": ("recipe", 2, 10)}


def build(tmp):
    path = os.path.join(tmp, "detectors_openblas.test")
    subprocess.run(["go", "test", "-c", "-tags", "openblas", "-o", path, "./models/detectors/"], cwd=ROOT, check=True)
    return path


def run_razor(path, case, iters, threads):
    """Seconds per step, peak RSS MiB, parameter count and warm-up loss of
    one benchmark process."""
    env = dict(os.environ, GOMAXPROCS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run([path, "-test.run", "^$", "-test.bench", "^%s/%s$" % (BENCH, case),
                          "-test.benchtime", "%dx" % iters], cwd=PKG_DIR, env=env, capture_output=True, text=True)
    line = re.search(r"^%s/%s\S*\s+\d+\s+(.*)$" % (BENCH, case), out.stdout, re.M)
    if out.returncode != 0 or line is None:
        sys.exit("%s %s failed (exit %d):\n%s%s" % (path, case, out.returncode, out.stdout, out.stderr))
    metrics = {unit: float(v) for v, unit in re.findall(r"(\S+) (\S+)", line.group(1))}
    return {"seconds": metrics["ns/op"] / 1e9, "peak_rss_mib": metrics["peak-RSS-MiB"],
            "params": int(metrics["params"]), "first_loss": metrics["first-loss"]}


def run_torch(case, iters, threads):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench", "frcnn_train_torch.py"),
                          "--case", CASES[case][0], "--runs", str(iters), "--threads", str(threads)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("frcnn_train_torch.py %s failed (exit %d):\n%s%s" % (case, out.returncode, out.stdout, out.stderr))
    res = json.loads(out.stdout.strip().splitlines()[-1])
    return {"seconds": statistics.mean(res["seconds"]), "peak_rss_mib": res["peak_rss_mib"],
            "params": res["params"], "first_loss": res["first_loss"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", default="coco,recipe", help="comma-separated, of: " + ", ".join(CASES))
    ap.add_argument("--iters", action="append", default=[], metavar="CASE=N",
                    help="timed steps per run, after one warm-up (defaults: %s)"
                    % ", ".join("%s=%d" % (c, v[2]) for c, v in CASES.items()))
    ap.add_argument("--razor", metavar="PATH", help="a prebuilt models/detectors test binary (-tags openblas)")
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in cases:
        if c not in CASES:
            ap.error("unknown case %r; the cases are %s" % (c, ", ".join(CASES)))
    iters = {c: v[2] for c, v in CASES.items()}
    for kv in args.iters:
        c, _, n = kv.partition("=")
        if c not in CASES or not n.isdigit() or int(n) < 1:
            ap.error("--iters %r: expected CASE=N with CASE one of %s and N >= 1" % (kv, ", ".join(CASES)))
        iters[c] = int(n)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        binary = args.razor or build(tmp)
        print("# Faster R-CNN + FPN (DetNAS subnet) training step (forward, backward, SGD), %d threads; "
              "%d round(s) of interleaved runs" % (args.threads, args.rounds), flush=True)
        for case in cases:
            contestants = [("razor", lambda c=case: run_razor(binary, c, iters[c], args.threads)),
                           ("torch", lambda c=case: run_torch(c, iters[c], args.threads))]
            runs = {"razor": [], "torch": []}
            for r in range(args.rounds):
                for label, run in (contestants if r % 2 == 0 else contestants[::-1]):
                    res = run()
                    runs[label].append(res)
                    print("%-7s round %d  %-6s %8.3f s/step  peak RSS %7.0f MiB  warm-up loss %.4f" % (
                        case, r + 1, label, res["seconds"], res["peak_rss_mib"], res["first_loss"]), flush=True)
            if runs["razor"][0]["params"] != runs["torch"][0]["params"]:
                sys.exit("%s: razor's model has %d parameters, PyTorch's %d: not the same model" % (
                    case, runs["razor"][0]["params"], runs["torch"][0]["params"]))
            results[case] = runs

    print("\nmedians over %d rounds (%s timed steps per run, each run's mean):" % (
        args.rounds, ", ".join("%s %d" % (c, iters[c]) for c in cases)))
    print("%-7s %12s %12s %12s %10s %10s %11s %11s" % (
        "case", "razor s/step", "torch s/step", "torch/razor", "razor im/s", "torch im/s", "razor MiB", "torch MiB"))
    for case, runs in results.items():
        n = CASES[case][1]
        med = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
        rss = {k: statistics.median(r["peak_rss_mib"] for r in v) for k, v in runs.items()}
        print("%-7s %12.3f %12.3f %12.2f %10.2f %10.2f %11.0f %11.0f" % (
            case, med["razor"], med["torch"], med["torch"] / med["razor"], n / med["razor"], n / med["torch"],
            rss["razor"], rss["torch"]))


if __name__ == "__main__":
    main()
