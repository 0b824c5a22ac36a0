package runners

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/registry"
)

// Hooks builds hooks: the training hooks a config's sections describe
// (lr_config, optimizer_config, checkpoint_config, log_config.hooks,
// evaluation) and every entry of custom_hooks. A contributor's hook
// registers here from its package's init and is named in custom_hooks.
var Hooks = registry.New[Hook]("hook")

// Env is what a hook may need from the run it joins.
type Env struct {
	// Config is the run's merged config.
	Config *config.Config
	// Alg is the algorithm being trained.
	Alg algorithms.Algorithm
	// WorkDir receives the run's files.
	WorkDir string
	// Seed is the run's seed.
	Seed uint64
	// ByEpoch is the loop's counting (EpochBasedRunner).
	ByEpoch bool
	// Terminal receives progress bars; nil when output is not a terminal.
	Terminal io.Writer
	// TrainSet is the training data (nil where a run has none).
	TrainSet datasets.Dataset
}

// Provisioner is a hook that sets itself up from the run (builds its data
// loaders, reads the algorithm) after every hook is built and before the
// loop starts: decode, provision, run.
type Provisioner interface {
	Provision(env *Env) error
}

// priorities are mmcv's hook priority names.
var priorities = map[string]int{
	"HIGHEST": 0, "VERY_HIGH": PriorityVeryHigh, "HIGH": PriorityHigh, "ABOVE_NORMAL": PriorityAboveNormal,
	"NORMAL": PriorityNormal, "BELOW_NORMAL": PriorityBelowNormal, "LOW": PriorityLow, "VERY_LOW": PriorityVeryLow, "LOWEST": 100,
}

// ParsePriority reads a custom hook's priority: a name (NORMAL, VERY_LOW,
// any case) or a whole number from 0 (first) to 100 (last), as mmcv's.
func ParsePriority(v any, path string) (int, error) {
	switch p := v.(type) {
	case int:
		if p >= 0 && p <= 100 {
			return p, nil
		}
	case string:
		if n, ok := priorities[strings.ToUpper(p)]; ok {
			return n, nil
		}
	}
	names := make([]string, 0, len(priorities))
	for n := range priorities {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return priorities[names[i]] < priorities[names[j]] })
	return 0, fmt.Errorf("%s %v is not a priority; use a whole number from 0 (runs first) to 100 or one of %s", path, v, strings.Join(names, ", "))
}

// ConfigHooks builds the hooks of cfg's training sections, in mmcv's order
// -- the lr updater, the optimizer hook, the checkpoint hook, the loggers,
// custom_hooks, then (with validate, when the config has data.val) the
// evaluation hook -- registers them on r and provisions them from env.
func ConfigHooks(cfg *config.Config, r *Runner, env *Env, validate bool) error {
	type placed struct {
		hook     Hook
		priority int
		set      bool
	}
	var hooks []placed
	add := func(node map[string]any, path string, defaults map[string]any) error {
		h, err := Hooks.Build(node, path, defaults)
		if err != nil {
			return err
		}
		hooks = append(hooks, placed{hook: h})
		return nil
	}
	byEpoch := map[string]any{"by_epoch": env.ByEpoch}

	if node, ok, err := section(cfg, "lr_config"); err != nil {
		return err
	} else if ok {
		typ, err := lrUpdaterType(node)
		if err != nil {
			return err
		}
		if err := add(withType(node, typ), "lr_config", byEpoch); err != nil {
			return err
		}
	}
	node, _, err := section(cfg, "optimizer_config")
	if err != nil {
		return err
	}
	if err := add(withType(node, "OptimizerHook"), "optimizer_config", nil); err != nil {
		return err
	}
	node, _, err = section(cfg, "checkpoint_config")
	if err != nil {
		return err
	}
	if err := add(withType(node, "CheckpointHook"), "checkpoint_config", byEpoch); err != nil {
		return err
	}
	loggers, err := loggerNodes(cfg)
	if err != nil {
		return err
	}
	for i, l := range loggers {
		if err := add(l.node, fmt.Sprintf("log_config.hooks.%d", i), map[string]any{"interval": l.interval}); err != nil {
			return err
		}
	}
	if v, ok := cfg.Get("custom_hooks"); ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("custom_hooks must be a list of hook mappings, each with a type, not %v", v)
		}
		for i, item := range list {
			path := fmt.Sprintf("custom_hooks.%d", i)
			m, ok := item.(map[string]any)
			if !ok {
				return fmt.Errorf("%s must be a mapping with a type naming a hook (registered: %s), not %v", path, strings.Join(Hooks.Names(), ", "), item)
			}
			args := make(map[string]any, len(m))
			p := placed{}
			for k, v := range m {
				if k == "priority" {
					if p.priority, err = ParsePriority(v, path+".priority"); err != nil {
						return err
					}
					p.set = true
					continue
				}
				args[k] = v
			}
			if p.hook, err = Hooks.Build(args, path, nil); err != nil {
				return err
			}
			hooks = append(hooks, p)
		}
	}
	if validate && cfg.Has("evaluation") && cfg.Has("data.val") {
		node, _, err := section(cfg, "evaluation")
		if err != nil {
			return err
		}
		if err := add(withType(node, "EvalHook"), "evaluation", byEpoch); err != nil {
			return err
		}
	}
	for _, p := range hooks {
		if pv, ok := p.hook.(Provisioner); ok {
			if err := pv.Provision(env); err != nil {
				return err
			}
		}
		if p.set {
			r.RegisterAt(p.hook, p.priority)
		} else {
			r.Register(p.hook)
		}
	}
	return nil
}

// section reads a mapping of cfg (empty when unset or null).
func section(cfg *config.Config, key string) (map[string]any, bool, error) {
	v, ok := cfg.Get(key)
	if !ok || v == nil {
		return map[string]any{}, false, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false, fmt.Errorf("%s must be a mapping, not %v", key, v)
	}
	return m, true, nil
}

// withType copies node with typ as its type unless it names one.
func withType(node map[string]any, typ string) map[string]any {
	out := make(map[string]any, len(node)+1)
	for k, v := range node {
		out[k] = v
	}
	if _, ok := out["type"]; !ok {
		out["type"] = typ
	}
	return out
}

// lrUpdaterType is the hook lr_config's policy names, as mmcv derives it:
// a lower-case policy is capitalized (poly -> PolyLrUpdaterHook).
func lrUpdaterType(node map[string]any) (string, error) {
	if t, ok := node["type"].(string); ok {
		return t, nil
	}
	policy, _ := node["policy"].(string)
	var known []string
	for _, n := range Hooks.Names() {
		if p, ok := strings.CutSuffix(n, "LrUpdaterHook"); ok {
			known = append(known, p)
		}
	}
	if policy == "" {
		return "", fmt.Errorf("lr_config.policy is required; use one of %s", strings.Join(known, ", "))
	}
	name := policy
	if strings.ToLower(policy) == policy {
		r := []rune(policy)
		r[0] = unicode.ToUpper(r[0])
		name = string(r)
	}
	name += "LrUpdaterHook"
	if !Hooks.Has(name) {
		return "", fmt.Errorf("lr_config.policy %q is not supported; use one of %s (no %s is registered)", policy, strings.Join(known, ", "), name)
	}
	return name, nil
}

// loggerNode is one logger hook of log_config.
type loggerNode struct {
	node     map[string]any
	interval int
}

// loggerNodes reads log_config: its interval (50 when unset) and hooks
// (TextLoggerHook when unset, as razor always logs).
func loggerNodes(cfg *config.Config) ([]loggerNode, error) {
	lc := struct {
		Interval int   `cfg:"interval"`
		Hooks    []any `cfg:"hooks"`
	}{Interval: 50}
	if v, ok := cfg.Get("log_config"); ok && v != nil {
		if err := config.Decode(v, "log_config", &lc); err != nil {
			return nil, err
		}
	}
	if lc.Hooks == nil {
		lc.Hooks = []any{map[string]any{"type": "TextLoggerHook"}}
	}
	out := make([]loggerNode, len(lc.Hooks))
	for i, h := range lc.Hooks {
		m, ok := h.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("log_config.hooks.%d must be a mapping with a type, such as {type: TextLoggerHook}, not %v", i, h)
		}
		out[i] = loggerNode{node: m, interval: lc.Interval}
	}
	return out, nil
}

func init() {
	for _, policy := range []string{"Poly", "Step", "CosineAnnealing", "Fixed"} {
		registry.MustRegister(Hooks, policy+"LrUpdaterHook", func(o LrConfig) (Hook, error) {
			if o.Policy == "" {
				o.Policy = policy
			} else if !strings.EqualFold(o.Policy, policy) {
				return nil, fmt.Errorf("policy %q does not match the hook's %s policy", o.Policy, policy)
			}
			s, err := NewLrSchedule(o)
			if err != nil {
				return nil, err
			}
			return &LrUpdaterHook{Schedule: s}, nil
		})
	}
	registry.MustRegister(Hooks, "OptimizerHook", func(o OptimizerHook) (Hook, error) { return &o, nil })
	registry.MustRegister(Hooks, "CheckpointHook", func(o CheckpointHook) (Hook, error) { return &o, nil })
	registry.MustRegister(Hooks, "TextLoggerHook", func(o LoggerHook) (Hook, error) {
		if o.Interval <= 0 {
			return nil, fmt.Errorf("interval must be positive, got %d", o.Interval)
		}
		return &o, nil
	})
	registry.MustRegister(Hooks, "EvalHook", func(o EvaluationConfig) (Hook, error) { return newEvalHook(o) })
}
