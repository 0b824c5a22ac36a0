package algorithms_test

import (
	"slices"
	"sort"
	"testing"

	"github.com/razorgo/razor/algorithms"
)

// TestParameterNamesEqualReference checks every state-dict key and shape
// against the PyTorch reference model, for the full-width supernet
// classifier, the detection backbone and the retrained SPOS paper subnet.
func TestParameterNamesEqualReference(t *testing.T) {
	var ref map[string][][2]any
	readJSON(t, "shufflenet_keys.json", &ref)
	cases := []struct {
		fixture string
		build   func() algorithms.Algorithm
	}{
		{"supernet_classifier", func() algorithms.Algorithm { return build(t, sposSupernet) }},
		{"detection_backbone", func() algorithms.Algorithm { return build(t, detnasSupernet) }},
		{"spos_paper_classifier", func() algorithms.Algorithm { return build(t, sposSubnet) }},
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			want := map[string][]int{}
			for _, kv := range ref[c.fixture] {
				var shape []int
				for _, d := range kv[1].([]any) {
					shape = append(shape, int(d.(float64)))
				}
				want[kv[0].(string)] = shape
			}
			got := c.build().StateDict()
			var missing, extra, wrong []string
			for k, shape := range want {
				v, ok := got[k]
				switch {
				case !ok:
					missing = append(missing, k)
				case !slices.Equal(dims(v.Shape()), shape):
					wrong = append(wrong, k)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					extra = append(extra, k)
				}
			}
			sort.Strings(missing)
			sort.Strings(extra)
			sort.Strings(wrong)
			if len(missing)+len(extra)+len(wrong) > 0 {
				t.Fatalf("%d keys missing (first %v), %d extra (first %v), %d with another shape (first %v)",
					len(missing), first(missing), len(extra), first(extra), len(wrong), first(wrong))
			}
			if len(got) < 100 {
				t.Fatalf("only %d keys", len(got))
			}
		})
	}
}

func dims(s []int) []int {
	if len(s) == 0 {
		return []int{}
	}
	return s
}

func first(s []string) []string { return s[:min(len(s), 3)] }
