// Command infer runs a config's model on one image: a classifier's top
// classes, or a detector's boxes drawn on the image.
//
//	infer CONFIG CHECKPOINT IMAGE [--topk K] [--json] [--score-thr T] [--out-file FILE.png] [--cfg-options KEY=VALUE ...]
//
// The image goes through the config's test pipeline (data.test.pipeline,
// else test_pipeline: load, resize, crop or pad, normalise). A classifier
// prints the top-k class indices with their softmax probabilities; --json
// prints {"classes": [...], "scores": [...]}. A detector's detections
// scoring at least --score-thr (0.3, as mmdet's show_result) are drawn on
// the image -- boxes, "class|score" tabs -- written as PNG to --out-file
// (default IMAGE's name + "_result.png" in the working folder), and
// printed to stdout as a JSON list of {class, label, score, bbox: [x1, y1,
// x2, y2]} in original-image pixels, best first. Class names come from
// data.test.classes, else from the data.test dataset when it can be read,
// else the labels are shown as numbers.
// CHECKPOINT is one of razor's checkpoints or an mmrazor/mmcls PyTorch .pth
// (keys architecture.model.* or the model's own, backbone.*). A supernet
// config needs a subnet: --cfg-options algorithm.mutable_cfg=SUBNET.yaml.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/tools/cli"
)

func main() { cli.Main("infer", cli.Infer) }
