package detectors_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/internal/hashfill"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/detectors"
	"github.com/razorgo/razor/models/nn"
)

// reference is what scripts/fixtures/frcnn_reference.py writes: an
// independent PyTorch re-implementation of mmdet 2.x's Faster R-CNN + FPN
// inference with the DetNAS subnet backbone, on hashfill weights and image.
type reference struct {
	Image struct {
		H, W     int
		ImgScale []int `json:"img_scale"`
	} `json:"image"`
	Keys       [][2]json.RawMessage `json:"keys"`
	Detections struct {
		Count  int          `json:"count"`
		Boxes  [][4]float64 `json:"boxes"`
		Scores []float64    `json:"scores"`
		Labels []int        `json:"labels"`
	} `json:"detections"`
	Debug struct {
		Metas struct {
			ImgShape    [3]int     `json:"img_shape"`
			PadShape    [3]int     `json:"pad_shape"`
			ScaleFactor [4]float64 `json:"scale_factor"`
		} `json:"metas"`
		Backbone []stat `json:"backbone"`
		FPN      []stat `json:"fpn"`
		RPN      struct {
			NumProposals   int          `json:"num_proposals"`
			FirstProposals [][5]float64 `json:"first_proposals"`
		} `json:"rpn"`
	} `json:"debug"`
}

type stat struct {
	Shape  []int     `json:"shape"`
	Sum    float64   `json:"sum"`
	SumSq  float64   `json:"sumsq"`
	Index  []int     `json:"index"`
	Values []float64 `json:"values"`
}

func loadReference(t testing.TB, name string) *reference {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &r
}

// detnasDetector builds the DetNAS subnet detector of the shipped COCO
// config and fills every tensor with hashfill's values.
func detnasDetector(t testing.TB, ref *reference) *detectors.FasterRCNN {
	t.Helper()
	cfg, err := config.Load("../../configs/nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_1x_coco.yaml", config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	det, ok := alg.Model().(*detectors.FasterRCNN)
	if !ok {
		t.Fatalf("the DetNAS detection config builds %T, want *detectors.FasterRCNN", alg.Model())
	}
	own := det.StateDict()
	want := map[string][]int{}
	for _, kv := range ref.Keys {
		var name string
		var shape []int
		if err := json.Unmarshal(kv[0], &name); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(kv[1], &shape); err != nil {
			t.Fatal(err)
		}
		want[name] = shape
	}
	var missing, extra, shapes []string
	for name, shape := range want {
		got, ok := own[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		if fmt.Sprint([]int(got.Shape())) != fmt.Sprint(shape) && !(len(shape) == 0 && got.Shape().TotalSize() == 1) {
			shapes = append(shapes, fmt.Sprintf("%s %v, mmdet %v", name, got.Shape(), shape))
		}
	}
	for name := range own {
		if _, ok := want[name]; !ok {
			extra = append(extra, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra)+len(shapes) > 0 {
		t.Fatalf("state dict differs from mmdet's names:\nmissing %v\nextra %v\nshapes %v", missing, extra, shapes)
	}
	sd := map[string]*tensor.Dense{}
	for name, cur := range own {
		if cur.Dtype() == tensor.Int64 {
			sd[name] = tensor.New(tensor.WithShape(cur.Shape()...), tensor.WithBacking(make([]int64, cur.Shape().TotalSize())))
			continue
		}
		sd[name] = tensor.New(tensor.WithShape(cur.Shape()...), tensor.WithBacking(hashfill.DetectorTensor(name, want[name])))
	}
	if _, err := det.LoadStateDict(sd, true); err != nil {
		t.Fatal(err)
	}
	det.SetTraining(false)
	return det
}

// input is the reference's image after mmdet's test pipeline at scale 1:
// normalised with the ImageNet mean and std, zero-padded to a multiple of
// 32, as a 1×3×H×W batch with its meta.
func input(ref *reference) *models.Batch {
	h, w := ref.Image.H, ref.Image.W
	img := hashfill.Image(h, w)
	ph, pw := (h+31)/32*32, (w+31)/32*32
	mean := [3]float32{123.675, 116.28, 103.53}
	std := [3]float32{58.395, 57.12, 57.375}
	x := make([]float32, 3*ph*pw)
	for c := range 3 {
		for y := range h {
			for i := range w {
				x[(c*ph+y)*pw+i] = (float32(img[(y*w+i)*3+c]) - mean[c]) / std[c]
			}
		}
	}
	return &models.Batch{
		Images: tensor.New(tensor.WithShape(1, 3, ph, pw), tensor.WithBacking(x)),
		Metas: []models.ImageMeta{{
			OriShape: [3]int{h, w, 3}, ImgShape: [3]int{h, w, 3}, PadShape: [3]int{ph, pw, 3},
			ScaleFactor: [4]float32{1, 1, 1, 1},
		}},
	}
}

func iou(a [4]float32, b [4]float64) float64 {
	ix := math.Min(float64(a[2]), b[2]) - math.Max(float64(a[0]), b[0])
	iy := math.Min(float64(a[3]), b[3]) - math.Max(float64(a[1]), b[1])
	if ix <= 0 || iy <= 0 {
		return 0
	}
	inter := ix * iy
	ua := float64((a[2]-a[0])*(a[3]-a[1])) + (b[2]-b[0])*(b[3]-b[1]) - inter
	return inter / ua
}

// compareDetections requires the same count and, for every reference
// detection, one of razor's with its label, IoU at least 0.99 and a score
// within 1e-3, each used once. Matching by content rather than position
// lets two detections whose scores differ by less than float32 noise come
// out in either order.
func compareDetections(t *testing.T, got []models.Detection, ref *reference) {
	t.Helper()
	want := ref.Detections
	if len(got) != want.Count {
		t.Errorf("%d detections, the reference has %d", len(got), want.Count)
	}
	used := make([]bool, len(got))
	bad := 0
	for i := range want.Count {
		best, bestIoU := -1, 0.0
		for j, d := range got {
			if used[j] || d.Label != want.Labels[i] || math.Abs(float64(d.Score)-want.Scores[i]) > 1e-3 {
				continue
			}
			if v := iou(d.Box, want.Boxes[i]); v > bestIoU {
				best, bestIoU = j, v
			}
		}
		if best < 0 || bestIoU < 0.99 {
			if bad++; bad <= 5 {
				t.Errorf("reference detection %d (label %d, score %.4f, box %.2f) has no match in razor's (best IoU %.4f)", i, want.Labels[i], want.Scores[i], want.Boxes[i], bestIoU)
			}
			continue
		}
		used[best] = true
	}
	if bad > 5 {
		t.Errorf("... %d reference detections without a match in all", bad)
	}
}

func checkStat(t *testing.T, what string, v []float32, s stat) {
	t.Helper()
	var sum, sq float64
	for _, x := range v {
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	if math.Abs(sq-s.SumSq) > 1e-4*s.SumSq {
		t.Errorf("%s: sum of squares %.6g, reference %.6g", what, sq, s.SumSq)
	}
	if math.Abs(sum-s.Sum) > 1e-4*math.Sqrt(s.SumSq*float64(len(v))) {
		t.Errorf("%s: sum %.6g, reference %.6g", what, sum, s.Sum)
	}
	for k, i := range s.Index {
		if math.Abs(float64(v[i])-s.Values[k]) > 1e-4*(1+math.Abs(s.Values[k])) {
			t.Errorf("%s[%d] = %.6g, reference %.6g", what, i, v[i], s.Values[k])
			return
		}
	}
}

// TestFasterRCNNMatchesReference runs the DetNAS detector and checks the
// backbone and FPN outputs, the first proposals and the detections
// against the PyTorch reference.
func TestFasterRCNNMatchesReference(t *testing.T) {
	for _, name := range []string{"frcnn_detnas_480x320.json", "frcnn_detnas_1333x800.json"} {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			ref := loadReference(t, name)
			det := detnasDetector(t, ref)
			in := input(ref)
			if m := ref.Debug.Metas; m.PadShape != in.Metas[0].PadShape {
				t.Fatalf("pad shape %v, the reference pads to %v", in.Metas[0].PadShape, m.PadShape)
			}

			b := nn.NewBinding()
			defer b.Release()
			x := b.Input("img", in.Images)
			feats, err := det.Backbone().Forward(b, x)
			if err != nil {
				t.Fatal(err)
			}
			outs, err := det.Neck().Forward(b, feats)
			if err != nil {
				t.Fatal(err)
			}
			cls, reg, err := det.RPNHead().Forward(b, outs)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Eval(); err != nil {
				t.Fatal(err)
			}
			for i, f := range feats {
				v, _ := b.Value(f)
				checkStat(t, fmt.Sprintf("backbone output %d", i), v, ref.Debug.Backbone[i])
			}
			for i, f := range outs {
				v, _ := b.Value(f)
				checkStat(t, fmt.Sprintf("FPN output %d", i), v, ref.Debug.FPN[i])
			}
			props, scores, err := det.RPNHead().Proposals(b, cls, reg, in.Metas, det.RPNHead().TestCfg())
			if err != nil {
				t.Fatal(err)
			}
			if len(props[0]) != ref.Debug.RPN.NumProposals {
				t.Errorf("%d proposals, the reference has %d", len(props[0]), ref.Debug.RPN.NumProposals)
			}
			for i, p := range ref.Debug.RPN.FirstProposals {
				if i >= len(props[0]) {
					break
				}
				if v := iou(props[0][i], [4]float64{p[0], p[1], p[2], p[3]}); v < 0.999 || math.Abs(float64(scores[0][i])-p[4]) > 1e-4 {
					t.Errorf("proposal %d: %v score %.5f, reference %.3f (IoU %.5f)", i, props[0][i], scores[0][i], p, v)
				}
			}

			res, err := models.Predict(det, in)
			if err != nil {
				t.Fatal(err)
			}
			compareDetections(t, res.Detections[0], ref)
		})
	}
}

// TestFasterRCNNCountsWithoutRunning checks that a counting binding gets
// through both stages without evaluating anything, pooling mmdet's
// forward_dummy 1000 proposals.
func TestFasterRCNNCountsWithoutRunning(t *testing.T) {
	ref := loadReference(t, "frcnn_detnas_480x320.json")
	det := detnasDetector(t, ref)
	b := nn.NewBinding()
	b.CountCosts()
	in := &models.Batch{Images: tensor.New(tensor.WithShape(1, 3, 320, 480), tensor.Of(tensor.Float32))}
	if _, err := det.ForwardTest(b, in); err != nil {
		t.Fatal(err)
	}
	var fc bool
	for _, c := range b.Costs() {
		if strings.HasSuffix(c.Path, "roi_head.bbox_head.shared_fcs.0") {
			fc = true
			if want := int64(1000 * 12544 * 1024); c.FLOPs != want {
				t.Errorf("shared_fcs.0 counts %d FLOPs, want 1000 RoIs x 12544 x 1024 = %d", c.FLOPs, want)
			}
		}
	}
	if !fc {
		t.Fatal("the count has no shared_fcs.0: the second stage was not counted")
	}
}
