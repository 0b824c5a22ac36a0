package bbox

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// assignment makes an AssignResult over nPos positives (assigned to gts
// in turn), nNeg negatives and nIgn ignored boxes, in that order.
func assignment(nPos, nNeg, nIgn, nGts int) (AssignResult, []Box) {
	r := AssignResult{NumGts: nGts}
	var boxes []Box
	for i := range nPos + nNeg + nIgn {
		k := -1
		switch {
		case i < nPos:
			k = i%nGts + 1
		case i < nPos+nNeg:
			k = 0
		}
		r.GtInds = append(r.GtInds, k)
		r.MaxOverlaps = append(r.MaxOverlaps, 0.5)
		lbl := -1
		if k > 0 {
			lbl = 10 + k - 1
		}
		r.Labels = append(r.Labels, lbl)
		boxes = append(boxes, Box{float32(i), 0, float32(i) + 1, 1})
	}
	return r, boxes
}

func gtBoxes(n int) ([]Box, []int) {
	var gts []Box
	var labels []int
	for k := range n {
		gts = append(gts, Box{100 + float32(k), 0, 110 + float32(k), 10})
		labels = append(labels, 10+k)
	}
	return gts, labels
}

func TestRandomSamplerCounts(t *testing.T) {
	for _, c := range []struct {
		name              string
		nPos, nNeg        int
		opts              RandomSamplerOptions
		wantPos, wantNeg  int
		wantGtAsProposals int
	}{
		{"enough of both", 300, 1000, RandomSamplerOptions{Num: 256, PosFraction: 0.5, NegPosUb: -1}, 128, 128, 0},
		{"few positives", 10, 1000, RandomSamplerOptions{Num: 256, PosFraction: 0.5, NegPosUb: -1}, 10, 246, 0},
		{"rcnn 25% positives", 500, 1000, RandomSamplerOptions{Num: 512, PosFraction: 0.25, NegPosUb: -1}, 128, 384, 0},
		{"neg_pos_ub caps negatives", 10, 1000, RandomSamplerOptions{Num: 256, PosFraction: 0.5, NegPosUb: 3}, 10, 30, 0},
		{"neg_pos_ub counts one positive when none", 0, 1000, RandomSamplerOptions{Num: 256, PosFraction: 0.5, NegPosUb: 3}, 0, 3, 0},
		{"few negatives", 300, 20, RandomSamplerOptions{Num: 256, PosFraction: 0.5, NegPosUb: -1}, 128, 20, 0},
		{"gts added", 2, 1000, RandomSamplerOptions{Num: 256, PosFraction: 0.25, NegPosUb: -1, AddGtAsProposals: true}, 5, 251, 3},
	} {
		s, err := NewRandomSampler(c.opts)
		if err != nil {
			t.Fatal(err)
		}
		assign, boxes := assignment(c.nPos, c.nNeg, 7, 3)
		gts, labels := gtBoxes(3)
		r := s.Sample(assign, boxes, gts, labels, rand.New(rand.NewPCG(1, 2)))
		if len(r.PosInds) != c.wantPos || len(r.NegInds) != c.wantNeg {
			t.Errorf("%s: %d positives, %d negatives; want %d, %d", c.name, len(r.PosInds), len(r.NegInds), c.wantPos, c.wantNeg)
			continue
		}
		offset := c.wantGtAsProposals
		if len(r.GtFlags) != len(boxes)+offset {
			t.Errorf("%s: %d gt flags for %d candidates", c.name, len(r.GtFlags), len(boxes)+offset)
		}
		for _, inds := range [][]int{r.PosInds, r.NegInds} {
			if !slices.IsSorted(inds) || len(slices.Compact(slices.Clone(inds))) != len(inds) {
				t.Errorf("%s: indices %v not ascending and unique", c.name, inds)
			}
		}
		for k, i := range r.PosInds {
			isGt := i < offset
			var gi int
			if isGt {
				gi = i
			} else {
				gi = assign.GtInds[i-offset] - 1
				if gi < 0 {
					t.Fatalf("%s: positive %d is not a positive candidate", c.name, i)
				}
			}
			if r.PosIsGt[k] != isGt || r.PosAssignedGtInds[k] != gi || r.PosGtBoxes[k] != gts[gi] || r.PosGtLabels[k] != labels[gi] {
				t.Errorf("%s: positive %d: is_gt %v gt %d box %v label %d", c.name, i, r.PosIsGt[k], r.PosAssignedGtInds[k], r.PosGtBoxes[k], r.PosGtLabels[k])
			}
			want := gts[min(i, len(gts)-1)]
			if !isGt {
				want = boxes[i-offset]
			}
			if r.PosBoxes[k] != want {
				t.Errorf("%s: positive %d box %v, want %v", c.name, i, r.PosBoxes[k], want)
			}
		}
		for k, i := range r.NegInds {
			if i < offset || assign.GtInds[i-offset] != 0 || r.NegBoxes[k] != boxes[i-offset] {
				t.Errorf("%s: negative %d is not a negative candidate", c.name, i)
			}
		}
	}
}

func TestRandomSamplerSeeded(t *testing.T) {
	s, err := NewRandomSampler(RandomSamplerOptions{Num: 64, PosFraction: 0.5, NegPosUb: -1})
	if err != nil {
		t.Fatal(err)
	}
	assign, boxes := assignment(200, 400, 0, 4)
	assign.Labels = nil
	draw := func(seed uint64) SamplingResult {
		return s.Sample(assign, boxes, make([]Box, 4), nil, rand.New(rand.NewPCG(seed, 7)))
	}
	a, b, c := draw(1), draw(1), draw(2)
	if !slices.Equal(a.PosInds, b.PosInds) || !slices.Equal(a.NegInds, b.NegInds) {
		t.Error("same seed drew different samples")
	}
	if slices.Equal(a.PosInds, c.PosInds) || slices.Equal(a.NegInds, c.NegInds) {
		t.Error("another seed drew the same samples")
	}
	if a.PosGtLabels != nil {
		t.Errorf("labels %v from an assignment without labels", a.PosGtLabels)
	}
}

func TestRandomSamplerDoesNotModifyAssignment(t *testing.T) {
	s, _ := NewRandomSampler(RandomSamplerOptions{Num: 8, PosFraction: 0.5, NegPosUb: -1, AddGtAsProposals: true})
	assign, boxes := assignment(3, 5, 0, 2)
	before := slices.Clone(assign.GtInds)
	gts, labels := gtBoxes(2)
	s.Sample(assign, boxes, gts, labels, rand.New(rand.NewPCG(1, 1)))
	if !slices.Equal(before, assign.GtInds) {
		t.Error("Sample changed the assignment")
	}
}

func TestRandomSamplerOptionErrors(t *testing.T) {
	if _, err := NewRandomSampler(RandomSamplerOptions{Num: 0, PosFraction: 0.5}); !containsKey(err, "num") {
		t.Errorf("num 0: %v", err)
	}
	if _, err := NewRandomSampler(RandomSamplerOptions{Num: 256, PosFraction: 1.5}); !containsKey(err, "pos_fraction") {
		t.Errorf("pos_fraction 1.5: %v", err)
	}
}
