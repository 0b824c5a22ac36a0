"""razor's three builds side by side: how much the pure-Go build gives up
against the OpenBLAS one, in one run on one machine.

    /usr/bin/python3 scripts/bench/builds_compare.py [--rounds N] [--bench REGEX] [--pkg DIR]

Builds the benchmark binary of a package (./algorithms by default) three
ways -- `-tags openblas` (cgo: OpenBLAS GEMM and the C depthwise/batch-norm
kernels), the default build (cgo: the Go assembly GEMM and the same C
kernels) and `CGO_ENABLED=0` (no C at all) -- then runs them in interleaved
rounds (openblas, default, pure, openblas, ...), so a machine whose speed
drifts over minutes drifts for all three alike. Each round runs every
benchmark matching --bench once per build (`-test.count 1`); the report has
each build's median ns/op over the rounds and its ratio to the OpenBLAS
build (below 1 is faster), and the spread (min-max) of each.

The default --bench is the supernet step at the three shapes the README
reports: batch 64 at 32x32, batch 32 at 224x224 (full width) and the MNIST
recipe's step. Run it on an otherwise idle machine; GOMAXPROCS is left to
the machine (2 on the reference one).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILDS = [
    ("openblas", ["-tags", "openblas"], {}),
    ("default", [], {}),
    ("pure", [], {"CGO_ENABLED": "0"}),
]
LINE = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op(.*)$")
MEM = re.compile(r"([0-9.]+) peak-RSS-MiB")


def build(pkg, flags, env, out):
    cmd = ["go", "test", "-c", "-o", out] + flags + [pkg]
    subprocess.run(cmd, check=True, cwd=ROOT, env=dict(os.environ, **env))


def run(binary, pkg, bench, benchtime):
    cmd = [binary, "-test.run", "^$", "-test.bench", bench, "-test.count", "1"]
    if benchtime:
        cmd += ["-test.benchtime", benchtime]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.join(ROOT, pkg))
    if proc.returncode != 0:
        sys.exit("%s failed:\n%s%s" % (" ".join(cmd), proc.stdout, proc.stderr))
    out = {}
    for line in proc.stdout.splitlines():
        m = LINE.match(line.strip())
        if m:
            out[m.group(1)] = float(m.group(2))
    if not out:
        sys.exit("no benchmark matched %r:\n%s" % (bench, proc.stdout))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pkg", default="./algorithms")
    ap.add_argument("--bench", default="SupernetStep/(batch64_32x32|batch32_224x224|mnist_batch32_32x32)$")
    ap.add_argument("--benchtime", default="", help="passed as -test.benchtime, e.g. 10x")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    binaries = []
    for name, flags, env in BUILDS:
        path = os.path.join(tmp, name + ".test")
        build(args.pkg, flags, env, path)
        binaries.append((name, path))
    times = {}  # (bench, build) -> [ns/op]
    for r in range(args.rounds):
        for name, path in binaries:
            for bench, ns in run(path, args.pkg, args.bench, args.benchtime).items():
                times.setdefault((bench, name), []).append(ns)
        print("round %d/%d done" % (r + 1, args.rounds), file=sys.stderr, flush=True)
    benches = sorted({b for b, _ in times})
    names = [n for n, _, _ in BUILDS]
    print("| benchmark | " + " | ".join("%s ms (min-max)" % n for n in names) + " | default / openblas | pure / openblas |")
    print("|---" * (len(names) + 3) + "|")
    for bench in benches:
        med = {n: statistics.median(times[(bench, n)]) for n in names}
        cells = ["%.2f (%.2f-%.2f)" % (med[n] / 1e6, min(times[(bench, n)]) / 1e6, max(times[(bench, n)]) / 1e6) for n in names]
        print("| %s | %s | %.2f | %.2f |" % (bench, " | ".join(cells), med["default"] / med["openblas"], med["pure"] / med["openblas"]))


if __name__ == "__main__":
    main()
