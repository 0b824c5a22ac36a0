package metrics

import (
	"math"
	"strings"
	"testing"
)

func TestTopKCorrect(t *testing.T) {
	tests := []struct {
		name   string
		logits [][]float32
		labels []int
		ks     []int
		want   []int
	}{
		{
			name:   "distinct scores",
			logits: [][]float32{{0.1, 0.5, 0.2, 0.9}, {3, 2, 1, 0}, {-1, -2, -3, -0.5}},
			labels: []int{1, 3, 2},
			ks:     []int{1, 2, 3, 4},
			// ranks: 1, 3, 3
			want: []int{0, 1, 1, 3},
		},
		{
			// The true class 2 ties with classes 0 and 3: only class 0 (a
			// lower index) is ranked ahead of it, so its rank is 1.
			name:   "tie with a lower index ranks ahead",
			logits: [][]float32{{0.7, 0.1, 0.7, 0.7}},
			labels: []int{2},
			ks:     []int{1, 2},
			want:   []int{0, 1},
		},
		{
			name:   "tie with only higher indices keeps first place",
			logits: [][]float32{{0.2, 0.7, 0.7, 0.7}},
			labels: []int{1},
			ks:     []int{1},
			want:   []int{1},
		},
		{
			name:   "infinities order like numbers",
			logits: [][]float32{{float32(math.Inf(-1)), float32(math.Inf(1)), 0}},
			labels: []int{2},
			ks:     []int{1, 2},
			want:   []int{0, 1},
		},
		{
			name: "no samples",
			ks:   []int{1, 5},
			want: []int{0, 0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TopKCorrect(tc.logits, tc.labels, tc.ks)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("TopKCorrect = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestTopKCorrectErrors(t *testing.T) {
	nan := float32(math.NaN())
	tests := []struct {
		name   string
		logits [][]float32
		labels []int
		ks     []int
		want   string
	}{
		{"count mismatch", [][]float32{{1, 2}}, []int{0, 1}, []int{1}, "1 rows of logits but 2 labels"},
		{"no k", [][]float32{{1, 2}}, []int{0}, nil, "no k given"},
		{"k too large", [][]float32{{1, 2}}, []int{0}, []int{1, 5}, "k=5 is out of range; k must lie in [1, 2]"},
		{"k zero", [][]float32{{1, 2}}, []int{0}, []int{0}, "k=0 is out of range"},
		{"empty rows", [][]float32{{}}, []int{0}, []int{1}, "rows are empty"},
		{"ragged", [][]float32{{1, 2}, {1}}, []int{0, 0}, []int{1}, "row 1 has 1 scores but row 0 has 2"},
		{"label negative", [][]float32{{1, 2}}, []int{-1}, []int{1}, "label -1 of sample 0 is out of range"},
		{"label too large", [][]float32{{1, 2}, {1, 2}}, []int{0, 2}, []int{1}, "label 2 of sample 1 is out of range; labels must lie in [0, 2)"},
		{"NaN", [][]float32{{1, 2}, {nan, 2}}, []int{0, 1}, []int{1}, "score of class 0 for sample 1 is NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TopKCorrect(tc.logits, tc.labels, tc.ks)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAccuracyAccumulates(t *testing.T) {
	acc, err := NewAccuracy(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.Values(); err == nil {
		t.Error("Values before any Update gave no error")
	}
	if err := acc.Update([][]float32{{0.9, 0.1, 0}, {0.2, 0.3, 0.5}}, []int{0, 1}); err != nil {
		t.Fatal(err)
	}
	if err := acc.Update([][]float32{{1, 2}}, []int{5}); err == nil {
		t.Error("a batch with label 5 of 2 classes was accepted")
	}
	if err := acc.Update([][]float32{{0, 0, 1}, {1, 0, 0}}, []int{1, 1}); err != nil {
		t.Fatal(err)
	}
	got, err := acc.Values()
	if err != nil {
		t.Fatal(err)
	}
	// Ranks of the true class: 0; 1 (class 2 scores higher); 2 (class 2
	// scores higher, class 0 ties with a lower index); 1 (class 0 scores
	// higher, class 2 ties with a higher index and stays behind).
	if acc.Total() != 4 || got[0] != 0.25 || got[1] != 0.75 {
		t.Errorf("total %d, values %v; want 4 samples, top-1 0.25, top-2 0.75", acc.Total(), got)
	}
	if _, err := NewAccuracy(); err == nil {
		t.Error("NewAccuracy() without k gave no error")
	}
	if _, err := NewAccuracy(1, 0); err == nil {
		t.Error("NewAccuracy(1, 0) gave no error")
	}
}
