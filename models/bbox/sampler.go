package bbox

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// RandomSamplerOptions are mmdet 2.x's RandomSampler arguments.
type RandomSamplerOptions struct {
	// Num is the number of boxes to sample per image.
	Num int `cfg:"num,required"`
	// PosFraction is the wanted share of positives.
	PosFraction float64 `cfg:"pos_fraction,required"`
	// NegPosUb caps negatives at NegPosUb times the positives (at least
	// one positive counted); negative turns the cap off.
	NegPosUb float64 `cfg:"neg_pos_ub"`
	// AddGtAsProposals puts the ground truths in front of the candidates,
	// each a positive of itself.
	AddGtAsProposals bool `cfg:"add_gt_as_proposals"`
}

// Defaults sets mmdet's defaults.
func (o *RandomSamplerOptions) Defaults() {
	o.NegPosUb = -1
	o.AddGtAsProposals = true
}

// RandomSampler draws positives and negatives uniformly at random from an
// assignment, as mmdet's RandomSampler does. All randomness comes from the
// rng passed to Sample.
type RandomSampler struct {
	o RandomSamplerOptions
}

// NewRandomSampler checks the options.
func NewRandomSampler(o RandomSamplerOptions) (*RandomSampler, error) {
	if o.Num <= 0 {
		return nil, fmt.Errorf("num %d must be positive, such as 256", o.Num)
	}
	if !(o.PosFraction >= 0 && o.PosFraction <= 1) {
		return nil, fmt.Errorf("pos_fraction %v must lie in [0, 1]", o.PosFraction)
	}
	return &RandomSampler{o: o}, nil
}

// SamplingResult is mmdet's SamplingResult. Indices refer to the
// candidates: the ground truths followed by the boxes when
// add_gt_as_proposals is on (and there are ground truths), else the boxes.
type SamplingResult struct {
	// PosInds and NegInds are the sampled candidates, ascending.
	PosInds, NegInds []int
	// PosBoxes and NegBoxes are those candidates' boxes.
	PosBoxes, NegBoxes []Box
	// PosGtBoxes is each positive's assigned ground-truth box.
	PosGtBoxes []Box
	// PosAssignedGtInds is each positive's ground-truth index (from 0).
	PosAssignedGtInds []int
	// PosGtLabels is each positive's label; nil without labels.
	PosGtLabels []int
	// PosIsGt tells, per positive, whether it is a ground truth added as a
	// proposal (mmdet's pos_is_gt).
	PosIsGt []bool
	// GtFlags tells, per candidate, whether it is an added ground truth
	// (mmdet's gt_flags).
	GtFlags []bool
	// NumGts is the number of ground truths.
	NumGts int
}

// Sample is mmdet 2.x's BaseSampler.sample with RandomSampler's draws:
// int(num*pos_fraction) positives at most, then num minus the positives
// drawn (capped by neg_pos_ub) negatives, each drawn without replacement
// when there are more candidates than wanted. assign is not modified.
// gtLabels must hold one label per ground truth when assign has labels
// and ground truths are added as proposals; a mismatch panics.
func (s *RandomSampler) Sample(assign AssignResult, boxes, gts []Box, gtLabels []int, rng *rand.Rand) SamplingResult {
	if len(assign.GtInds) != len(boxes) {
		panic(fmt.Sprintf("bbox.RandomSampler.Sample: assignment of %d boxes for %d boxes", len(assign.GtInds), len(boxes)))
	}
	cand, gtInds, labels := boxes, assign.GtInds, assign.Labels
	flags := make([]bool, len(boxes))
	if s.o.AddGtAsProposals && len(gts) > 0 {
		if labels != nil && len(gtLabels) != len(gts) {
			panic(fmt.Sprintf("bbox.RandomSampler.Sample: %d labels for %d ground truths added as proposals", len(gtLabels), len(gts)))
		}
		cand = append(slices.Clone(gts), boxes...)
		self := make([]int, len(gts))
		for i := range self {
			self[i] = i + 1
		}
		gtInds = append(self, assign.GtInds...)
		if labels != nil {
			labels = append(slices.Clone(gtLabels), assign.Labels...)
		}
		flags = append(slices.Repeat([]bool{true}, len(gts)), flags...)
	}
	var posPool, negPool []int
	for i, k := range gtInds {
		switch {
		case k > 0:
			posPool = append(posPool, i)
		case k == 0:
			negPool = append(negPool, i)
		}
	}
	pos := randomChoice(posPool, int(float64(s.o.Num)*s.o.PosFraction), rng)
	wantNeg := s.o.Num - len(pos)
	if s.o.NegPosUb >= 0 {
		wantNeg = min(wantNeg, int(s.o.NegPosUb*float64(max(1, len(pos)))))
	}
	neg := randomChoice(negPool, wantNeg, rng)

	r := SamplingResult{PosInds: pos, NegInds: neg, GtFlags: flags, NumGts: len(gts)}
	for _, i := range pos {
		g := gtInds[i] - 1
		r.PosBoxes = append(r.PosBoxes, cand[i])
		r.PosGtBoxes = append(r.PosGtBoxes, gts[g])
		r.PosAssignedGtInds = append(r.PosAssignedGtInds, g)
		r.PosIsGt = append(r.PosIsGt, flags[i])
		if labels != nil {
			r.PosGtLabels = append(r.PosGtLabels, labels[i])
		}
	}
	for _, i := range neg {
		r.NegBoxes = append(r.NegBoxes, cand[i])
	}
	return r
}

// randomChoice returns pool when it holds at most num entries, else num
// of them drawn without replacement; either way sorted ascending, as
// mmdet's unique() leaves them.
func randomChoice(pool []int, num int, rng *rand.Rand) []int {
	num = max(num, 0)
	if len(pool) <= num {
		return slices.Clone(pool)
	}
	p := slices.Clone(pool)
	for i := range num {
		j := i + rng.IntN(len(p)-i)
		p[i], p[j] = p[j], p[i]
	}
	out := p[:num]
	slices.Sort(out)
	return out
}
