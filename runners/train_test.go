package runners

import (
	"testing"

	"github.com/razorgo/razor/config"
)

func TestConfigMetric(t *testing.T) {
	cases := []struct {
		tree map[string]any
		want string
		err  bool
	}{
		{map[string]any{}, "accuracy", false},
		{map[string]any{"evaluation": map[string]any{"metric": "bbox"}}, "bbox", false},
		{map[string]any{"evaluation": map[string]any{"metric": []any{"accuracy"}}}, "accuracy", false},
		{map[string]any{"evaluation": map[string]any{"metric": []any{}}}, "", true},
		{map[string]any{"evaluation": map[string]any{"metric": []any{"a", "b"}}}, "", true},
	}
	for _, tc := range cases {
		cfg, err := config.FromMap(tc.tree)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ConfigMetric(cfg)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%v: %q, %v", tc.tree, got, err)
		}
	}
}
