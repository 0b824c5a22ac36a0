package bbox

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestNMSMatchesTorchvision checks kept indices exactly against
// torchvision.ops.nms: tied scores, identical boxes, zero-area boxes,
// IoUs exactly at the threshold, and two thresholds (1/3, 0.3) where the
// float32 comparison of mmcv's kernel keeps a box torchvision drops.
func TestNMSMatchesTorchvision(t *testing.T) {
	var cases []struct {
		Note            string      `json:"note"`
		Boxes           [][]float64 `json:"boxes"`
		Scores          []float64   `json:"scores"`
		IoUThr          float64     `json:"iou_thr"`
		Keep            []int       `json:"keep"`
		TorchvisionKeep []int       `json:"torchvision_keep"`
	}
	loadFixture(t, "nms.json", &cases)
	for _, c := range cases {
		got := NMS(toBoxes(c.Boxes), toF32(c.Scores), float32(c.IoUThr))
		if !slices.Equal(got, c.Keep) {
			t.Errorf("%s: kept %v, want %v", c.Note, got, c.Keep)
		}
		if c.TorchvisionKeep != nil && slices.Equal(got, c.TorchvisionKeep) {
			t.Errorf("%s: kept what torchvision keeps; the float32 comparison should keep one more", c.Note)
		}
	}
}

func TestNMSEdgeCases(t *testing.T) {
	if got := NMS(nil, nil, 0.5); len(got) != 0 {
		t.Errorf("no boxes: kept %v", got)
	}
	boxes := []Box{{0, 0, 10, 10}, {0, 0, 10, 10}, {0, 0, 10, 10}}
	if got := NMS(boxes, []float32{0.2, 0.9, 0.9}, 0.5); !slices.Equal(got, []int{1}) {
		t.Errorf("identical boxes: kept %v, want [1] (first of the tied top scores)", got)
	}
	if got := NMS(boxes, []float32{0.2, 0.9, 0.9}, 1); !slices.Equal(got, []int{1, 2, 0}) {
		t.Errorf("threshold 1: kept %v, want all in score order [1 2 0]", got)
	}
}

type batchedCase struct {
	Boxes         [][]float64 `json:"boxes"`
	Scores        []float64   `json:"scores"`
	Idxs          []int       `json:"idxs"`
	IoUThr        float64     `json:"iou_thr"`
	ClassAgnostic bool        `json:"class_agnostic"`
	SplitThr      int         `json:"split_thr"`
	Keep          []int       `json:"keep"`
}

type multiclassCase struct {
	Boxes      [][]float64 `json:"boxes"`
	Scores     []float64   `json:"scores"`
	NumClasses int         `json:"num_classes"`
	ScoreThr   float64     `json:"score_thr"`
	IoUThr     float64     `json:"iou_thr"`
	MaxNum     int         `json:"max_num"`
	DetBoxes   [][]float64 `json:"det_boxes"`
	DetScores  []float64   `json:"det_scores"`
	DetLabels  []int       `json:"det_labels"`
}

// TestBatchedNMSMatchesMmcv checks mmcv 1.x batched_nms's offset path, its
// split path (small split_thr) and the class-agnostic path exactly.
func TestBatchedNMSMatchesMmcv(t *testing.T) {
	var fx struct {
		Batched    []batchedCase    `json:"batched"`
		Multiclass []multiclassCase `json:"multiclass"`
	}
	loadFixture(t, "batched_nms.json", &fx)
	for i, c := range fx.Batched {
		boxes, scores := toBoxes(c.Boxes), toF32(c.Scores)
		o := NMSOptions{Type: "nms", IoUThreshold: c.IoUThr, ClassAgnostic: c.ClassAgnostic, SplitThr: c.SplitThr}
		if got := o.Batched(boxes, scores, c.Idxs); !slices.Equal(got, c.Keep) {
			t.Errorf("case %d (split_thr %d, agnostic %v): kept %v, want %v", i, c.SplitThr, c.ClassAgnostic, got, c.Keep)
		}
		if c.SplitThr == DefaultSplitThr {
			if got := BatchedNMS(boxes, scores, c.Idxs, float32(c.IoUThr), c.ClassAgnostic); !slices.Equal(got, c.Keep) {
				t.Errorf("case %d: BatchedNMS kept %v, want %v", i, got, c.Keep)
			}
		}
	}
	for i, c := range fx.Multiclass {
		got := MulticlassNMS(toBoxes(c.Boxes), toF32(c.Scores), c.NumClasses, float32(c.ScoreThr), float32(c.IoUThr), c.MaxNum)
		if len(got) != len(c.DetLabels) {
			t.Fatalf("multiclass case %d: %d detections, want %d", i, len(got), len(c.DetLabels))
		}
		want := toBoxes(c.DetBoxes)
		for k, d := range got {
			if d.Box != want[k] || d.Score != float32(c.DetScores[k]) || d.Label != c.DetLabels[k] {
				t.Fatalf("multiclass case %d, detection %d: %+v, want box %v score %v label %d", i, k, d, want[k], c.DetScores[k], c.DetLabels[k])
			}
		}
	}
}

// TestBatchedNMSKeepsClassesApart: two identical boxes of different
// classes both survive; agnostic, only the higher score does.
func TestBatchedNMSKeepsClassesApart(t *testing.T) {
	boxes := []Box{{0, 0, 10, 10}, {0, 0, 10, 10}, {1, 1, 10, 10}}
	scores := []float32{0.5, 0.8, 0.7}
	if got := BatchedNMS(boxes, scores, []int{0, 1, 1}, 0.5, false); !slices.Equal(got, []int{1, 0}) {
		t.Errorf("per class: kept %v, want [1 0]", got)
	}
	if got := BatchedNMS(boxes, scores, []int{0, 1, 1}, 0.5, true); !slices.Equal(got, []int{1}) {
		t.Errorf("agnostic: kept %v, want [1]", got)
	}
	if got := BatchedNMS(nil, nil, nil, 0.5, false); len(got) != 0 {
		t.Errorf("empty: kept %v", got)
	}
}

func TestMulticlassShapeErrors(t *testing.T) {
	o := NMSOptions{Type: "nms", IoUThreshold: 0.5, SplitThr: DefaultSplitThr}
	if _, err := o.Multiclass(make([]Box, 3), make([]float32, 6), 2, 0.05, -1); err == nil {
		t.Error("3 boxes for 2 proposals of 2 classes: want an error")
	}
	if _, err := o.Multiclass(nil, make([]float32, 5), 2, 0.05, -1); err == nil {
		t.Error("5 scores in rows of 3: want an error")
	}
	dets, err := o.Multiclass([]Box{{0, 0, 1, 1}}, []float32{0.01, 0.02, 0.97}, 2, 0.05, -1)
	if err != nil || len(dets) != 0 {
		t.Errorf("all below score_thr: %v, %v; want no detections", dets, err)
	}
}

// rpnLikeBoxes are n random boxes on a size x size image, many of them
// overlapping, with random scores and one of levels idxs each, as an RPN's
// candidates before NMS.
func rpnLikeBoxes(n, levels int, size float32, seed uint64) ([]Box, []float32, []int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	boxes, scores, idxs := make([]Box, n), make([]float32, n), make([]int, n)
	for i := range boxes {
		cx, cy := rng.Float32()*size, rng.Float32()*size
		w, h := 4+rng.Float32()*size/4, 4+rng.Float32()*size/4
		boxes[i] = Box{cx - w/2, cy - h/2, cx + w/2, cy + h/2}
		scores[i] = float32(rng.IntN(200)) / 200 // ties among equal scores
		idxs[i] = rng.IntN(levels)
	}
	return boxes, scores, idxs
}

// NMSTop and BatchedNMSTop stop after limit kept boxes and keep exactly
// the first limit of what NMS and BatchedNMS keep.
func TestNMSTopIsAPrefix(t *testing.T) {
	for seed := range uint64(4) {
		boxes, scores, idxs := rpnLikeBoxes(2000, 5, 256, seed)
		all := NMS(boxes, scores, 0.7)
		allBatched := BatchedNMS(boxes, scores, idxs, 0.7, false)
		if len(all) < 300 || len(allBatched) < 300 {
			t.Fatalf("seed %d: only %d / %d kept; the test needs more", seed, len(all), len(allBatched))
		}
		for _, limit := range []int{1, 7, 300, len(all), len(all) + 5} {
			want := all[:min(limit, len(all))]
			if got := NMSTop(boxes, scores, 0.7, limit); !slices.Equal(got, want) {
				t.Errorf("seed %d: NMSTop(%d) kept %d boxes, not NMS's first %d", seed, limit, len(got), len(want))
			}
			wantB := allBatched[:min(limit, len(allBatched))]
			if got := BatchedNMSTop(boxes, scores, idxs, 0.7, false, limit); !slices.Equal(got, wantB) {
				t.Errorf("seed %d: BatchedNMSTop(%d) kept %d boxes, not BatchedNMS's first %d", seed, limit, len(got), len(wantB))
			}
		}
		if got := NMSTop(boxes, scores, 0.7, 0); !slices.Equal(got, all) {
			t.Errorf("seed %d: NMSTop with no limit differs from NMS", seed)
		}
	}
}

// BenchmarkRPNNMS is the digits recipe's RPN suppression: about 3000
// candidates from 5 levels of a 256x256 image, IoU 0.7, 300 kept.
func BenchmarkRPNNMS(b *testing.B) {
	boxes, scores, idxs := rpnLikeBoxes(3000, 5, 256, 9)
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			BatchedNMS(boxes, scores, idxs, 0.7, false)
		}
	})
	b.Run("top300", func(b *testing.B) {
		for b.Loop() {
			BatchedNMSTop(boxes, scores, idxs, 0.7, false, 300)
		}
	})
}
