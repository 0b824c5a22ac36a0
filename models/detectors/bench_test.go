package detectors_test

import (
	"context"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/internal/hashfill"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/detectors"
	"github.com/razorgo/razor/runners/optim"
)

// BenchmarkFasterRCNNInference times models.Predict of the DetNAS detector
// on the reference's 1333x800 image (padded to 1344x800) with hashfill
// weights: backbone, FPN, RPN with its NMS, 1000 RoIs through the box head
// and the multiclass NMS, in eval mode. The weights and image are the ones
// scripts/bench/frcnn_torch.py times, so both do the same work, down to
// the same proposals.
func BenchmarkFasterRCNNInference(b *testing.B) {
	ref := loadReference(b, "frcnn_detnas_1333x800.json")
	det := detnasDetector(b, ref)
	in := input(ref)
	res, err := models.Predict(det, in)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(res.Detections[0]); n != ref.Detections.Count {
		b.Fatalf("%d detections, the reference has %d: not the fixture's work", n, ref.Detections.Count)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := models.Predict(det, in); err != nil {
			b.Fatal(err)
		}
	}
}

// trainStepCase is one batch shape of BenchmarkFasterRCNNTrainStep, the
// same model and batch scripts/bench/frcnn_train_torch.py builds under the
// same name.
type trainStepCase struct {
	name       string
	h, w, n    int
	numClasses int
	// overrides turn the shipped COCO subnet config into the case's model.
	overrides []string
}

// trainStepCases: "coco" is the shipped config on its training shape (two
// 800x1333 images, padded to 800x1344); "recipe" is the digits recipe's
// model on two 256x256 images: a half-width backbone, 64-channel FPN and
// heads, anchors of scale 4, 10 classes, 128 RoIs per image and 300
// proposals.
var trainStepCases = []trainStepCase{
	{name: "coco", h: 800, w: 1333, n: 2, numClasses: 80},
	{name: "recipe", h: 256, w: 256, n: 2, numClasses: 10, overrides: []string{
		"algorithm.architecture.model.backbone.widen_factor=0.5",
		"algorithm.architecture.model.neck.in_channels=[32, 80, 160, 320]",
		"algorithm.architecture.model.neck.out_channels=64",
		"algorithm.architecture.model.rpn_head.in_channels=64",
		"algorithm.architecture.model.rpn_head.feat_channels=64",
		"algorithm.architecture.model.rpn_head.anchor_generator.scales=[4]",
		"algorithm.architecture.model.roi_head.bbox_roi_extractor.out_channels=64",
		"algorithm.architecture.model.roi_head.bbox_head.in_channels=64",
		"algorithm.architecture.model.roi_head.bbox_head.conv_out_channels=64",
		"algorithm.architecture.model.roi_head.bbox_head.fc_out_channels=256",
		"algorithm.architecture.model.roi_head.bbox_head.num_classes=10",
		"algorithm.architecture.model.train_cfg.rcnn.sampler.num=128",
		"algorithm.architecture.model.train_cfg.rpn_proposal.nms_pre=1000",
		"algorithm.architecture.model.train_cfg.rpn_proposal.max_per_img=300",
	}},
}

// trainStepBatch is the case's batch: n hashfill images h x w, normalised
// as the PyTorch reference normalises (multiplying by float32(1/std)),
// zero-padded to a multiple of 32, each with frcnn_train_torch.py's six
// ground-truth boxes.
func trainStepBatch(c trainStepCase) *models.Batch {
	ph, pw := (c.h+31)/32*32, (c.w+31)/32*32
	mean := [3]float32{123.675, 116.28, 103.53}
	stdInv := [3]float32{float32(1 / 58.395), float32(1 / 57.12), float32(1 / 57.375)}
	x := make([]float32, c.n*3*ph*pw)
	in := &models.Batch{Images: tensor.New(tensor.WithShape(c.n, 3, ph, pw), tensor.WithBacking(x))}
	img := hashfill.Image(c.h, c.w)
	for i := range c.n {
		for ch := range 3 {
			for y := range c.h {
				for xx := range c.w {
					x[((i*3+ch)*ph+y)*pw+xx] = (float32(img[(y*c.w+xx)*3+ch]) - mean[ch]) * stdInv[ch]
				}
			}
		}
		in.Metas = append(in.Metas, models.ImageMeta{
			OriShape: [3]int{c.h, c.w, 3}, ImgShape: [3]int{c.h, c.w, 3}, PadShape: [3]int{ph, pw, 3},
			ScaleFactor: [4]float32{1, 1, 1, 1},
		})
		// Sizes from a twentieth to a half of the image, placed by the
		// image's index: ground_truths in frcnn_train_torch.py, in float64
		// then rounded as torch.tensor(..., dtype=float32) rounds.
		w, h := float64(c.w), float64(c.h)
		var boxes [][4]float32
		var labels []int
		for k := range 6 {
			bw, bh := w*(0.05+0.09*float64(k)), h*(0.05+0.08*float64((k+i)%6))
			x0 := (w - bw) * float64((37*(k+1)+11*i)%100) / 100
			y0 := (h - bh) * float64((53*(k+1)+17*i)%100) / 100
			boxes = append(boxes, [4]float32{float32(x0), float32(y0), float32(x0 + bw), float32(y0 + bh)})
			labels = append(labels, (7*k+i)%c.numClasses)
		}
		in.GTBoxes = append(in.GTBoxes, boxes)
		in.GTLabels = append(in.GTLabels, labels)
		in.GTIgnore = append(in.GTIgnore, nil)
	}
	return in
}

// BenchmarkFasterRCNNTrainStep times one training step of the DetNAS
// detector built from the shipped subnet config (with the case's
// overrides) on hashfill weights and images: the algorithm's TrainStep
// (train-mode forward with the config's samplers, the summed losses'
// backward) and an SGD step (lr 0.02, momentum 0.9, weight decay 1e-4),
// gradients cleared to none first, as scripts/bench/frcnn_train_torch.py
// times PyTorch. One untimed step first, as there. Metrics: peak-RSS-MiB is
// the process's ru_maxrss, which covers everything the process did, so run
// one case per process (-bench 'TrainStep/coco$'); params counts the
// trainable values and first-loss is the untimed step's total loss, both
// for checking that the PyTorch side built the same model.
func BenchmarkFasterRCNNTrainStep(b *testing.B) {
	for _, c := range trainStepCases {
		b.Run(c.name, func(b *testing.B) {
			cfg, err := config.Load("../../configs/nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_1x_coco.yaml", config.Options{Overrides: c.overrides})
			if err != nil {
				b.Fatal(err)
			}
			alg, err := algorithms.FromConfig(cfg)
			if err != nil {
				b.Fatal(err)
			}
			det, ok := alg.Model().(*detectors.FasterRCNN)
			if !ok {
				b.Fatalf("the config builds %T, want *detectors.FasterRCNN", alg.Model())
			}
			fillHashfill(b, det)
			params := alg.NamedParameters()
			var numParams int
			for _, p := range params {
				numParams += p.Shape().TotalSize()
			}
			opt, err := optim.NewSGD(params, optim.SGDConfig{LR: 0.02, Momentum: 0.9, WeightDecay: 1e-4}, nil)
			if err != nil {
				b.Fatal(err)
			}
			in := trainStepBatch(c)
			rng := rand.New(rand.NewPCG(1, 2))
			step := func() float64 {
				opt.ZeroGrad(true)
				vals, err := alg.TrainStep(context.Background(), in, rng)
				if err != nil {
					b.Fatal(err)
				}
				opt.Step()
				return vals[len(vals)-1].Value
			}
			first := step()
			if math.IsNaN(first) || math.IsInf(first, 0) {
				b.Fatalf("the first step's loss is %v", first)
			}
			for b.Loop() {
				step()
			}
			var ru syscall.Rusage
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
			b.ReportMetric(float64(numParams), "params")
			b.ReportMetric(first, "first-loss")
		})
	}
}
