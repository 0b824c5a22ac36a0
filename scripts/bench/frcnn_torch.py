#!/usr/bin/python3
"""Times PyTorch inference of the DetNAS Faster R-CNN + FPN fixture model
(scripts/fixtures/frcnn_reference.py: hash-filled weights, the hashfill
test image, mmdet 2.x test pipeline and post-processing) on one 800x1333
image, for a side-by-side with razor's detector.

    /usr/bin/python3 scripts/bench/frcnn_torch.py [--runs 5] [--threads 2] [--size 1333x800]

It runs on two threads by default, the budget razor's kernels get on the
2-core development machine, warms up once (first calls allocate and pick
kernels), then prints one JSON line: the median and every run's seconds
for the whole inference (preprocessing, backbone, FPN, RPN with its NMS,
RoI head and multiclass NMS), plus the detection count as a check that it
ran the fixture's model.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "fixtures"))
import frcnn_reference as R  # noqa: E402
import hashfill  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", default="1333x800", help="WxH of the image, resized with scale 1")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    model = R.FasterRCNN(R.read_subnet(R.SUBNET_YAML))
    R.fill(model)
    img = hashfill.image(h, w)

    def once():
        t0 = time.perf_counter()
        _, scores, _, _ = R.infer(model, img, (w, h), torch.float32, stat=lambda t: None)
        return time.perf_counter() - t0, int(scores.numel())

    once()
    times, count = [], 0
    for _ in range(args.runs):
        t, count = once()
        times.append(t)
    print(json.dumps({"model": "faster_rcnn_detnas_shufflenetv2_fpn", "image": "%dx%d" % (w, h),
                      "threads": args.threads, "runs": args.runs, "median_seconds": statistics.median(times),
                      "seconds": times, "detections": count, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
