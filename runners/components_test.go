package runners

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/registry"
)

// orderHook is a custom hook that records its tag, for ordering tests.
type orderHook struct {
	Tag string `cfg:"tag,required"`
}

func (h *orderHook) Priority() int { return PriorityNormal }

func init() {
	registry.MustRegister(Hooks, "TestOrderHook", func(o orderHook) (Hook, error) { return &o, nil })
}

// hookNames names each hook in run order: its type, and a custom hook's tag.
func hookNames(r *Runner) []string {
	var out []string
	for _, h := range r.Hooks() {
		name := fmt.Sprintf("%T", h)
		if o, ok := h.(*orderHook); ok {
			name = o.Tag
		}
		out = append(out, strings.TrimPrefix(name, "*runners."))
	}
	return out
}

func TestConfigHooksOrder(t *testing.T) {
	cfg, err := config.FromMap(map[string]any{
		"lr_config":         map[string]any{"policy": "poly", "by_epoch": false},
		"optimizer_config":  map[string]any{"grad_clip": nil},
		"checkpoint_config": map[string]any{"interval": 7},
		"log_config":        map[string]any{"interval": 3, "hooks": []any{map[string]any{"type": "TextLoggerHook"}}},
		"custom_hooks": []any{
			map[string]any{"type": "TestOrderHook", "tag": "first", "priority": "very_high"},
			map[string]any{"type": "TestOrderHook", "tag": "normal"},
			map[string]any{"type": "TestOrderHook", "tag": "last", "priority": 95},
			map[string]any{"type": "TestOrderHook", "tag": "highest", "priority": "HIGHEST"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{}
	if err := ConfigHooks(cfg, r, &Env{Config: cfg}, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"highest", "LrUpdaterHook", "first", "OptimizerHook", "CheckpointHook", "normal", "LoggerHook", "last"}
	if got := hookNames(r); !reflect.DeepEqual(got, want) {
		t.Fatalf("hooks run as %v, want %v", got, want)
	}
	for _, h := range r.Hooks() {
		switch h := h.(type) {
		case *CheckpointHook:
			// An iteration-based run's checkpoint hook counts iterations.
			if h.Interval != 7 || h.ByEpoch || !h.SaveLast {
				t.Errorf("checkpoint hook %+v", h)
			}
		case *LoggerHook:
			if h.Interval != 3 {
				t.Errorf("logger interval %d, want log_config.interval 3", h.Interval)
			}
		case *LrUpdaterHook:
			if h.Schedule.policy != "poly" || h.Schedule.ByEpoch() {
				t.Errorf("lr schedule %+v", h.Schedule.cfg)
			}
		}
	}
}

func TestConfigHooksDefaults(t *testing.T) {
	// Without any section: the optimizer hook, a checkpoint hook counting
	// epochs in an epoch-based run, and a text logger every 50 iterations.
	cfg, err := config.FromMap(map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{}
	if err := ConfigHooks(cfg, r, &Env{Config: cfg, ByEpoch: true}, false); err != nil {
		t.Fatal(err)
	}
	if got, want := hookNames(r), []string{"OptimizerHook", "CheckpointHook", "LoggerHook"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("hooks %v, want %v", got, want)
	}
	if ch := r.Hooks()[1].(*CheckpointHook); !ch.ByEpoch {
		t.Error("an epoch-based run's checkpoint hook does not count epochs")
	}
	if lh := r.Hooks()[2].(*LoggerHook); lh.Interval != 50 {
		t.Errorf("logger interval %d, want 50", lh.Interval)
	}
}

func TestConfigHooksErrors(t *testing.T) {
	cases := []struct {
		tree map[string]any
		want []string
	}{
		{map[string]any{"checkpoint_config": map[string]any{"interval": 1, "intervall": 2}},
			[]string{"checkpoint_config", "intervall", "interval"}},
		{map[string]any{"lr_config": map[string]any{"policy": "OneCycle"}},
			[]string{`lr_config.policy "OneCycle" is not supported`, "Poly", "Step"}},
		{map[string]any{"lr_config": map[string]any{"warmup": "linear"}}, []string{"lr_config.policy is required"}},
		{map[string]any{"optimizer_config": map[string]any{"type": "Fp16OptimizerHook"}},
			[]string{"optimizer_config.type", "Fp16OptimizerHook", "OptimizerHook"}},
		{map[string]any{"log_config": map[string]any{"hooks": []any{map[string]any{"type": "TensorboardLoggerHook"}}}},
			[]string{"log_config.hooks.0.type", "TensorboardLoggerHook", "TextLoggerHook"}},
		{map[string]any{"log_config": map[string]any{"interval": 0}}, []string{"log_config.hooks.0", "interval must be positive"}},
		{map[string]any{"custom_hooks": []any{map[string]any{"type": "TestOrderHook", "tag": "x", "priority": "SOON"}}},
			[]string{"custom_hooks.0.priority SOON is not a priority", "VERY_HIGH"}},
		{map[string]any{"custom_hooks": []any{map[string]any{"type": "TestOrderHook", "tag": "x", "priority": 101}}},
			[]string{"custom_hooks.0.priority 101 is not a priority"}},
		{map[string]any{"custom_hooks": []any{map[string]any{"type": "TestOrderHook"}}}, []string{"custom_hooks.0", "tag"}},
		{map[string]any{"custom_hooks": map[string]any{"type": "TestOrderHook"}}, []string{"custom_hooks must be a list"}},
	}
	for _, tc := range cases {
		cfg, err := config.FromMap(tc.tree)
		if err != nil {
			t.Fatal(err)
		}
		err = ConfigHooks(cfg, &Runner{}, &Env{Config: cfg}, false)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v, want it to contain %q", tc.tree, err, w)
			}
		}
	}
}

func TestLoops(t *testing.T) {
	l, err := Loops.Build(map[string]any{"type": "mmcv.EpochBasedRunner", "max_epochs": 12}, "runner", nil)
	if err != nil {
		t.Fatal(err)
	}
	if it, ep := l.Bounds(); !l.ByEpoch() || it != 0 || ep != 12 {
		t.Errorf("EpochBasedRunner: by epoch %v, bounds %d %d", l.ByEpoch(), it, ep)
	}
	for _, tc := range []struct {
		node map[string]any
		want string
	}{
		{map[string]any{"type": "IterBasedRunner", "max_epochs": 3}, "max_epochs"},
		{map[string]any{"type": "IterBasedRunner", "max_iters": 0}, "max_iters must be positive"},
		{map[string]any{"type": "EpochBasedRunner"}, "max_epochs"},
	} {
		if _, err := Loops.Build(tc.node, "runner", nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.node, err, tc.want)
		}
	}
	if err := Loops.Supported(map[string]any{"type": "IterBasedRuner"}, "runner"); err == nil ||
		!strings.Contains(err.Error(), `runner.type "IterBasedRuner" is not supported (did you mean "IterBasedRunner"?)`) {
		t.Errorf("unknown runner: %v", err)
	}
}

func TestMetricSpec(t *testing.T) {
	cfg, err := config.FromMap(map[string]any{"evaluation": map[string]any{"metric": []any{"accuracy"}, "metric_options": map[string]any{"topk": []any{1, 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ConfigMetricSpec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := spec.Build()
	if err != nil {
		t.Fatal(err)
	}
	// Sample 0 is right at top-1, sample 1 only at top-2, sample 2 at neither.
	res := models.Result{Scores: [][]float32{{0.1, 0.7, 0.2}, {0.5, 0.2, 0.3}, {0.6, 0.3, 0.1}}}
	if err := m.Process(&models.Batch{Labels: []int{1, 2, 2}}, res); err != nil {
		t.Fatal(err)
	}
	vals, err := m.Compute()
	if err != nil {
		t.Fatal(err)
	}
	want := []NamedValue{{Name: "accuracy_top-1", Value: 100.0 / 3}, {Name: "accuracy_top-2", Value: 200.0 / 3}}
	if len(vals) != len(want) {
		t.Fatalf("values %v, want %v", vals, want)
	}
	for i, v := range vals {
		if v.Name != want[i].Name || math.Abs(v.Value-want[i].Value) > 1e-9 {
			t.Errorf("values %v, want %v", vals, want)
		}
	}
	if err := m.Process(&models.Batch{}, res); err == nil || !strings.Contains(err.Error(), "gt_label") {
		t.Errorf("a batch without labels: %v", err)
	}
	for _, tc := range []struct {
		tree map[string]any
		want string
	}{
		{map[string]any{"evaluation": map[string]any{"metric": "segm"}}, `evaluation.metric "segm": no such metric is registered; registered: Accuracy, bbox`},
		{map[string]any{"evaluation": map[string]any{"metric_options": []any{1}}}, "evaluation.metric_options must be a mapping"},
	} {
		cfg, err := config.FromMap(tc.tree)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ConfigMetricSpec(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.tree, err, tc.want)
		}
	}
	bad := MetricSpec{Name: "accuracy", Options: map[string]any{"top": 1}, Path: "evaluation.metric"}
	if _, err := bad.Build(); err == nil || !strings.Contains(err.Error(), "top") || !strings.Contains(err.Error(), "topk") {
		t.Errorf("unknown option: %v", err)
	}
}
