package runners

import (
	"math"
	"strings"
	"testing"

	"github.com/razorgo/razor/config"
)

func schedule(t *testing.T, node map[string]any) *LrSchedule {
	t.Helper()
	var c LrConfig
	c.Defaults()
	if err := config.Decode(node, "lr_config", &c); err != nil {
		t.Fatal(err)
	}
	s, err := NewLrSchedule(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLrPolicies(t *testing.T) {
	cases := []struct {
		name                      string
		node                      map[string]any
		iter, epoch, maxIt, maxEp int
		want                      float64
	}{
		// SPOS/DetNAS: poly, power 1, min_lr 0, per iteration.
		{"poly start", map[string]any{"policy": "poly", "power": 1.0, "min_lr": 0.0, "by_epoch": false}, 0, 0, 300000, 0, 0.5},
		{"poly middle", map[string]any{"policy": "poly", "power": 1.0, "min_lr": 0.0, "by_epoch": false}, 150000, 0, 300000, 0, 0.25},
		{"poly power 2 with min", map[string]any{"policy": "poly", "power": 2.0, "min_lr": 0.1, "by_epoch": false}, 50, 0, 100, 0, 0.4*0.25 + 0.1},
		// mmdet 1x: step [8, 11] by epoch, linear warmup 500 iters from 0.001.
		{"step before", map[string]any{"policy": "step", "step": []any{8, 11}}, 10000, 7, 0, 12, 0.5},
		{"step after first", map[string]any{"policy": "step", "step": []any{8, 11}}, 10000, 8, 0, 12, 0.05},
		{"step after both", map[string]any{"policy": "step", "step": []any{8, 11}}, 10000, 11, 0, 12, 0.005},
		{"step every 3", map[string]any{"policy": "step", "step": 3, "gamma": 0.5}, 0, 7, 0, 12, 0.125},
		{"linear warmup start", map[string]any{"policy": "step", "step": []any{8, 11}, "warmup": "linear", "warmup_iters": 500, "warmup_ratio": 0.001}, 0, 0, 0, 12, 0.5 * 0.001},
		{"linear warmup half", map[string]any{"policy": "step", "step": []any{8, 11}, "warmup": "linear", "warmup_iters": 500, "warmup_ratio": 0.001}, 250, 0, 0, 12, 0.5 * (1 - 0.5*0.999)},
		{"warmup over", map[string]any{"policy": "step", "step": []any{8, 11}, "warmup": "linear", "warmup_iters": 500, "warmup_ratio": 0.001}, 500, 0, 0, 12, 0.5},
		{"constant warmup", map[string]any{"policy": "fixed", "warmup": "constant", "warmup_iters": 10, "warmup_ratio": 0.1}, 3, 0, 0, 1, 0.05},
		{"exp warmup", map[string]any{"policy": "fixed", "warmup": "exp", "warmup_iters": 10, "warmup_ratio": 0.1}, 5, 0, 0, 1, 0.5 * math.Pow(0.1, 0.5)},
		{"cosine middle", map[string]any{"policy": "CosineAnnealing", "min_lr": 0.0, "by_epoch": false}, 50, 0, 100, 0, 0.25},
		{"cosine ratio end", map[string]any{"policy": "CosineAnnealing", "min_lr_ratio": 0.01, "by_epoch": false}, 100, 0, 100, 0, 0.005},
		{"cosine quarter", map[string]any{"policy": "cosineannealing", "min_lr": 0.1}, 0, 25, 0, 100, 0.1 + 0.5*0.4*(math.Cos(math.Pi/4)+1)},
	}
	for _, tc := range cases {
		s := schedule(t, tc.node)
		if got := s.At(0.5, tc.iter, tc.epoch, tc.maxIt, tc.maxEp); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: lr = %.12g, want %.12g", tc.name, got, tc.want)
		}
	}
}

func TestLrConfigErrors(t *testing.T) {
	cases := []struct {
		node map[string]any
		frag string
	}{
		{map[string]any{"policy": "OneCycle"}, `policy "OneCycle" is not supported`},
		{map[string]any{"policy": "step"}, "lr_config.step must be a whole number or a list"},
		{map[string]any{"policy": "step", "step": []any{11, 8}}, "lr_config.step.1: steps must be increasing"},
		{map[string]any{"policy": "poly", "warmup": "linear"}, "warmup_iters must be positive"},
		{map[string]any{"policy": "poly", "warmup": "cubic", "warmup_iters": 3}, `warmup "cubic" is not supported`},
		{map[string]any{"policy": "CosineAnnealing", "min_lr": 0.0, "min_lr_ratio": 0.1}, "not both"},
	}
	for _, tc := range cases {
		var c LrConfig
		c.Defaults()
		if err := config.Decode(tc.node, "lr_config", &c); err != nil {
			t.Fatal(err)
		}
		_, err := NewLrSchedule(c)
		if err == nil || !strings.Contains(err.Error(), tc.frag) {
			t.Errorf("%v: error %v, want %q", tc.node, err, tc.frag)
		}
	}
}
