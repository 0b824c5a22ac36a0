// Command test evaluates a trained checkpoint on the config's test split,
// as mmrazor's tools/test.py does.
//
//	test CONFIG CHECKPOINT [--metrics accuracy] [--out FILE] [--cfg-options KEY=VALUE ...]
//
// A supernet config without a subnet is scored over evaluation.num_subnets
// fixed, seeded subnets (mean and spread); pass
// --cfg-options algorithm.mutable_cfg=SUBNET.yaml to test one subnet.
//
// A detector is scored by the bbox metric (evaluation.metric: bbox) on a
// COCO-format set, printing pycocotools' 12 summary lines and then
// bbox_mAP ... bbox_AR_l@1000 as fractions; its --out file is its
// detections in COCO's results format (what mmdet's --format-only writes
// and tools/coco_eval reads), while a classifier's is {config, checkpoint,
// metrics}. --cfg-options data.test.ann_file=... data.test.img_prefix=...
// points it at any COCO-format set.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/tools/cli"
)

func main() { cli.Main("test", cli.Test) }
