#!/usr/bin/python3
"""Times PyTorch training steps of the DetNAS Faster R-CNN + FPN fixture
model (scripts/fixtures/frcnn_train_reference.py: hash-filled weights,
hashfill images, mmdet 2.x training forward) for a side-by-side with
razor's training step.

    /usr/bin/python3 scripts/bench/frcnn_train_torch.py [--runs 3] [--threads 2] [--case all]

A step is the training forward (float32, train mode, gts added as
proposals), the backward of the summed losses and an SGD step (lr 0.02,
momentum 0.9, weight decay 1e-4); the batch's images are made once,
before any step. Cases:
  1333x800x2  the COCO config: two 800x1333 images (padded to 800x1344),
              full widths, 80 classes, RPN sampler 256 (half positive),
              RCNN sampler 512 (a quarter positive), proposals nms_pre 2000
              per level, 1000 kept
  recipe      the digits recipe's model: two 256x256 images, backbone
              widen_factor 0.5 (stages 32, 80, 160, 320), FPN, RPN and
              RoI features 64 channels, box head fc 256, anchor scale 4,
              10 classes, RPN sampler 256, RCNN sampler 128, proposals
              nms_pre 1000, 300 kept
  320x320x8   eight 320x320 images with the COCO config's model
razor's BenchmarkFasterRCNNTrainStep (models/detectors/bench_test.go)
builds the same models and batches for "coco" (this 1333x800x2) and
"recipe"; scripts/bench/frcnn_train_compare.py runs both.
Each case runs in its own process (so its peak RSS is its own) on two
threads by default, the budget razor's kernels get on the 2-core
development machine, warms up once, and the script prints one JSON line
per case: median and every run's seconds per step, images per second,
peak RSS (getrusage ru_maxrss), the parameter count and the warm-up
step's total loss, and the step's sample counts as a check.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "fixtures"))
import frcnn_reference as R  # noqa: E402
import frcnn_train_reference as T  # noqa: E402

def train_cfg(rpn_num, rcnn_num, nms_pre, max_per_img):
    """The COCO config's train_cfg with these sampler sizes and proposal counts."""
    return {
        "rpn": dict(T.TRAIN_CFG["rpn"], sampler=dict(T.TRAIN_CFG["rpn"]["sampler"], num=rpn_num)),
        "rpn_proposal": dict(T.TRAIN_CFG["rpn_proposal"], nms_pre=nms_pre, max_per_img=max_per_img),
        "rcnn": dict(T.TRAIN_CFG["rcnn"], sampler=dict(T.TRAIN_CFG["rcnn"]["sampler"], num=rcnn_num)),
    }


COCO_MODEL = {}
RECIPE_MODEL = {"widen_factor": 0.5, "in_channels": [32, 80, 160, 320], "channels": 64, "fc": 256,
                "num_classes": 10, "anchor_scales": [4]}
# name: (h, w, images, FasterRCNN arguments, train_cfg)
CASES = {
    "1333x800x2": (800, 1333, 2, COCO_MODEL, train_cfg(256, 512, 2000, 1000)),
    "recipe": (256, 256, 2, RECIPE_MODEL, train_cfg(256, 128, 1000, 300)),
    "320x320x8": (320, 320, 8, COCO_MODEL, train_cfg(256, 512, 2000, 1000)),
}


def ground_truths(h, w, n, num_classes):
    """Six boxes per image of sizes from a twentieth to a half of the
    image, placed by image index, so the sampler finds positives."""
    out = []
    for i in range(n):
        boxes = []
        for k in range(6):
            bw, bh = w * (0.05 + 0.09 * k), h * (0.05 + 0.08 * ((k + i) % 6))
            x0 = (w - bw) * ((37 * (k + 1) + 11 * i) % 100) / 100
            y0 = (h - bh) * ((53 * (k + 1) + 17 * i) % 100) / 100
            boxes.append([x0, y0, x0 + bw, y0 + bh])
        out.append({"bboxes": boxes, "labels": [(7 * k + i) % num_classes for k in range(6)], "bboxes_ignore": []})
    return out


def run_case(name, runs, threads):
    torch.set_num_threads(threads)
    h, w, n, model_args, cfg = CASES[name]
    model = R.FasterRCNN(R.read_subnet(R.SUBNET_YAML), **model_args)
    R.fill(model)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)
    sizes, gt = [(h, w)] * n, ground_truths(h, w, n, model.num_classes)
    batch = T.make_batch(torch.float32, sizes)

    def step(seed):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        losses, counts, _, _ = T.train_forward(model, torch.float32, cfg=cfg, seed=seed, sizes=sizes, gt_spec=gt,
                                               measure=False, batch=batch)
        total = T.total_loss(losses)
        total.backward()
        opt.step()
        return time.perf_counter() - t0, counts, float(total)

    _, _, first_loss = step(0)
    times, counts = [], None
    for r in range(runs):
        t, counts, _ = step(r + 1)
        times.append(t)
    med = statistics.median(times)
    return {"model": "faster_rcnn_detnas_shufflenetv2_fpn", "case": name, "image": "%dx%d" % (w, h),
            "images_per_batch": n, "threads": threads, "runs": runs, "median_seconds": med, "seconds": times,
            "images_per_second": n / med, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "params": sum(p.numel() for p in model.parameters()), "first_loss": first_loss,
            "rpn_samples": [c["pos"] + c["neg"] for c in counts["rpn"]],
            "rcnn_samples": [c["pos"] + c["neg"] for c in counts["rcnn"]], "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--case", default="all", choices=["all"] + list(CASES))
    args = ap.parse_args()
    if args.case != "all":
        print(json.dumps(run_case(args.case, args.runs, args.threads)), flush=True)
        return
    for name in CASES:
        subprocess.run([sys.executable, os.path.abspath(__file__), "--case", name, "--runs", str(args.runs),
                        "--threads", str(args.threads)], check=True)


if __name__ == "__main__":
    main()
