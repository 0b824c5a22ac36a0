package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/runners"
)

// TestResult is the JSON file the test command writes with --out.
type TestResult struct {
	// Config and Checkpoint are the command's two arguments.
	Config     string `json:"config"`
	Checkpoint string `json:"checkpoint"`
	// Metrics maps each metric's name (accuracy_top-1, ...) to its value.
	Metrics map[string]float64 `json:"metrics"`
}

// Test is the test command: it parses args (CONFIG CHECKPOINT and the test
// flags), builds the config's algorithm from every registered type, loads
// the checkpoint and evaluates it on the config's test split, printing each
// metric to stdout. A supernet config without a subnet is scored over
// fixed, seeded subnets (mean and spread).
func Test(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf ConfigFlags
	cf.Register(fs)
	metric := fs.StringSlice("metrics", nil, "the metric to compute (a registered one, such as accuracy); default: the config's evaluation.metric")
	out := fs.String("out", "", "write the metrics to this JSON file")
	numSubnets := fs.Int("num-subnets", 0, "for a supernet: how many fixed subnets to average over (default: evaluation.num_subnets, else 5)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: test CONFIG CHECKPOINT [--metrics accuracy] [--out FILE] [--cfg-options KEY=VALUE ...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(ExpandArgs(args)); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("expected CONFIG and CHECKPOINT, got %d arguments", fs.NArg())
	}
	cfg, err := cf.Load(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		return fmt.Errorf("config %s: %w", fs.Arg(0), err)
	}
	if err := LoadWeights(fs.Arg(1), alg, stderr); err != nil {
		return err
	}
	spec, err := pickMetric(cfg, *metric)
	if err != nil {
		return err
	}
	ds, err := runners.BuildDataset(cfg, "test")
	if err != nil {
		return err
	}
	loader, err := runners.BuildLoader(cfg, "test", ds, false, 0)
	if err != nil {
		return err
	}
	ev := &runners.Evaluator{Alg: alg, Loader: loader, Metric: spec}
	if f, ok := stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			ev.Progress = stderr
		}
	}
	var vals []runners.NamedValue
	oneShot, ok := alg.(algorithms.OneShot)
	if ok && oneShot.EvalSubnets(1, 0) != nil {
		n := *numSubnets
		if n == 0 {
			if n, err = cfg.Int("evaluation.num_subnets", 5); err != nil {
				return err
			}
		}
		if ev.BN, err = runners.EvalBNPolicy(cfg, alg, 0); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "note: %s is a supernet config without a subnet; scoring %d fixed subnets, %s (set --cfg-options algorithm.mutable_cfg=SUBNET.yaml to test one)\n", fs.Arg(0), n, ev.BN.Describe())
		vals, err = ev.EvaluateSubnets(ctx, oneShot.EvalSubnets(n, 0))
	} else {
		vals, err = ev.Evaluate(ctx)
	}
	if err != nil {
		return err
	}
	result := TestResult{Config: fs.Arg(0), Checkpoint: fs.Arg(1), Metrics: map[string]float64{}}
	for _, v := range vals {
		fmt.Fprintf(stdout, "%s: %.2f\n", v.Name, v.Value)
		result.Metrics[v.Name] = v.Value
	}
	if *out != "" {
		b, err := json.MarshalIndent(result, "", "  ")
		if err != nil {
			return err
		}
		if err := config.WriteFileAtomic(*out, append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// pickMetric is the metric --metrics names (one), else the config's
// evaluation.metric, with evaluation.metric_options.
func pickMetric(cfg *config.Config, flags []string) (runners.MetricSpec, error) {
	if len(flags) > 1 {
		return runners.MetricSpec{}, fmt.Errorf("--metrics: give one metric, got %s", strings.Join(flags, ", "))
	}
	if len(flags) == 0 {
		return runners.ConfigMetricSpec(cfg)
	}
	opts, _ := cfg.Get("evaluation.metric_options")
	spec, err := runners.ParseMetricSpec(flags[0], opts, "--metrics")
	if err != nil && !runners.Metrics.Has(flags[0]) {
		return spec, fmt.Errorf("metric %q is not supported: no package registers it; registered: %s", flags[0], strings.Join(runners.Metrics.Names(), ", "))
	}
	return spec, err
}
