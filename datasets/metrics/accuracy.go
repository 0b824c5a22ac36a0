package metrics

import (
	"errors"
	"fmt"
	"math"
)

// trueClassRank returns how many classes are ranked ahead of the true class
// in one row of scores, with the tie rule documented on TopKCorrect: a
// prediction is top-k correct when the rank is below k.
//
// The row must not contain NaN and label must index into it; TopKCorrect
// checks both before calling.
func trueClassRank(scores []float32, label int) int {
	target := scores[label]
	rank := 0
	for j, s := range scores {
		if s > target || (s == target && j < label) {
			rank++
		}
	}
	return rank
}

// TopKCorrect counts, for each k in ks, the samples whose true label is among
// the k best-scored classes (ties ordered as described below).
//
// Ties: classes are ordered by higher score first and, among equal scores,
// lower class index first. A class tied with the true class is ranked ahead
// of it only when its index is lower. PyTorch's topk leaves the order of
// ties unspecified, so this stable rule is the deterministic choice that
// agrees with it whenever scores are distinct.
//
// logits is [N][C]; labels holds N class indices in [0, C). Every row must
// have the same length C, every k must lie in [1, C] (as torch.topk demands),
// and a NaN score is an error because it has no place in the ordering.
func TopKCorrect(logits [][]float32, labels []int, ks []int) ([]int, error) {
	if len(logits) != len(labels) {
		return nil, fmt.Errorf("top-k accuracy: %d rows of logits but %d labels; they must match", len(logits), len(labels))
	}
	if len(ks) == 0 {
		return nil, errors.New("top-k accuracy: no k given; pass at least one k such as 1 or 5")
	}
	correct := make([]int, len(ks))
	if len(logits) == 0 {
		return correct, nil
	}
	classes := len(logits[0])
	if classes == 0 {
		return nil, errors.New("top-k accuracy: logits rows are empty; each row needs one score per class")
	}
	for _, k := range ks {
		if k < 1 || k > classes {
			return nil, fmt.Errorf("top-k accuracy: k=%d is out of range; k must lie in [1, %d], the number of classes", k, classes)
		}
	}
	for i, row := range logits {
		if len(row) != classes {
			return nil, fmt.Errorf("top-k accuracy: row %d has %d scores but row 0 has %d; every row needs one score per class", i, len(row), classes)
		}
		label := labels[i]
		if label < 0 || label >= classes {
			return nil, fmt.Errorf("top-k accuracy: label %d of sample %d is out of range; labels must lie in [0, %d)", label, i, classes)
		}
		for j, s := range row {
			if math.IsNaN(float64(s)) {
				return nil, fmt.Errorf("top-k accuracy: score of class %d for sample %d is NaN; scores must be numbers", j, i)
			}
		}
		rank := trueClassRank(row, label)
		for ki, k := range ks {
			if rank < k {
				correct[ki]++
			}
		}
	}
	return correct, nil
}

// Accuracy accumulates top-k accuracy over batches, as an evaluation loop
// sees them. The zero value is not usable; create one with NewAccuracy.
type Accuracy struct {
	ks      []int
	correct []int
	total   int
}

// NewAccuracy returns an accumulator for the given k values (for example 1
// and 5). Each k must be at least 1; the upper bound is checked against the
// number of classes when batches arrive.
func NewAccuracy(ks ...int) (*Accuracy, error) {
	if len(ks) == 0 {
		return nil, errors.New("accuracy: no k given; pass at least one k such as 1 or 5")
	}
	for _, k := range ks {
		if k < 1 {
			return nil, fmt.Errorf("accuracy: k=%d is invalid; k must be at least 1", k)
		}
	}
	return &Accuracy{ks: append([]int(nil), ks...), correct: make([]int, len(ks))}, nil
}

// Update adds one batch of logits [N][C] and its labels. A batch that fails
// validation leaves the accumulator unchanged.
func (a *Accuracy) Update(logits [][]float32, labels []int) error {
	correct, err := TopKCorrect(logits, labels, a.ks)
	if err != nil {
		return err
	}
	for i, c := range correct {
		a.correct[i] += c
	}
	a.total += len(labels)
	return nil
}

// Total is the number of samples seen so far.
func (a *Accuracy) Total() int { return a.total }

// Values returns the fraction in [0, 1] of samples that were top-k correct,
// one value per k in the order given to NewAccuracy. It is an error to ask
// before any sample was added, since the fraction is then undefined.
func (a *Accuracy) Values() ([]float64, error) {
	if a.total == 0 {
		return nil, errors.New("accuracy: no samples were added; call Update with at least one batch first")
	}
	out := make([]float64, len(a.ks))
	for i, c := range a.correct {
		out[i] = float64(c) / float64(a.total)
	}
	return out, nil
}
