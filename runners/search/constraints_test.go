package search

import (
	"strings"
	"testing"
)

func TestConstraints(t *testing.T) {
	small, edge, big := Cost{FLOPs: 100e6, Params: 1e6}, Cost{FLOPs: 330e6, Params: 4e6}, Cost{FLOPs: 400e6, Params: 2e6}
	cases := []struct {
		name  string
		value any
		text  string
		allow []bool // small, edge, big
	}{
		{"none", nil, "none", []bool{true, true, true}},
		{"empty mapping", map[string]any{}, "none", []bool{true, true, true}},
		{"mmrazor bound is strict", map[string]any{"flops": 330e6}, "flops < 3.3e+08", []bool{true, false, false}},
		{"int bound", map[string]any{"params": 3000000}, "params < 3e+06", []bool{true, false, true}},
		{"two bounds", map[string]any{"flops": 350e6, "params": 3e6}, "(flops < 3.5e+08) && (params < 3e+06)", []bool{true, false, false}},
		{"expression", "flops <= 330e6 && params < 4e6", "flops <= 330e6 && params < 4e6", []bool{true, false, false}},
		{"inclusive expression", "flops <= 330e6", "flops <= 330e6", []bool{true, true, false}},
		{"range", "flops >= 200e6 and flops <= 400e6", "flops >= 200e6 and flops <= 400e6", []bool{false, true, true}},
		{"list", []any{"flops < 500e6", "params > 1.5e6"}, "(flops < 500e6) && (params > 1.5e6)", []bool{false, true, true}},
	}
	for _, tc := range cases {
		c, err := ParseConstraints(tc.value, "searcher.constraints")
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if c.String() != tc.text {
			t.Errorf("%s: text %q, want %q", tc.name, c.String(), tc.text)
		}
		for i, cost := range []Cost{small, edge, big} {
			ok, err := c.Allows(cost)
			if err != nil || ok != tc.allow[i] {
				t.Errorf("%s: Allows(%+v) = %v, %v; want %v", tc.name, cost, ok, err, tc.allow[i])
			}
		}
	}
}

func TestConstraintErrors(t *testing.T) {
	cases := []struct {
		value any
		want  string
	}{
		{"flops <", `searcher.constraints: "flops <" is not a valid condition`},
		{"flops + 1", `searcher.constraints: "flops + 1" is not a valid condition`},
		{"latency < 3", `"latency < 3" is not a valid condition (unknown name latency`},
		{"  ", "searcher.constraints: condition 0 is empty"},
		{map[string]any{"flop": 3e8}, "searcher.constraints.flop: unknown quantity; an upper bound can be set on flops, params"},
		{map[string]any{"flops": "300M"}, "searcher.constraints.flops must be a number"},
		{[]any{"flops < 1", 3}, "searcher.constraints.1 must be a condition"},
		{3e8, "searcher.constraints must be a mapping of upper bounds"},
	}
	for _, tc := range cases {
		_, err := ParseConstraints(tc.value, "searcher.constraints")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConstraints(%v) = %v, want an error containing %q", tc.value, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseConstraints(%v): error spans lines: %q", tc.value, err)
		}
	}
}

func TestFLOPsBound(t *testing.T) {
	for _, tc := range []struct {
		value any
		bound float64
		ok    bool
	}{
		{map[string]any{"flops": 330e6}, 330e6, true},
		{map[string]any{"flops": 330e6, "params": 1}, 330e6, true},
		{"flops < 330e6", 330e6, true},
		{"params < 4e6 && flops <= 2000000", 2e6, true},
		{[]any{"flops < 3e8", "params < 4e6 and flops < 2.5e8"}, 2.5e8, true},
		{"flops < 3e8 || params < 1", 0, false},
		{"flops > 1e8", 0, false},
		{"params < 330e6", 0, false},
		{nil, 0, false},
	} {
		c, err := ParseConstraints(tc.value, "c")
		if err != nil {
			t.Fatal(err)
		}
		if b, ok := c.FLOPsBound(); b != tc.bound || ok != tc.ok {
			t.Errorf("FLOPsBound of %v = %g, %v; want %g, %v", tc.value, b, ok, tc.bound, tc.ok)
		}
	}
}
