package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/runners"
)

// TestResult is the JSON file the test command writes with --metrics-out,
// and with --out when the model is not a detector (a detector's --out is
// its COCO results).
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
// metric to stdout (a detector's bbox metric also prints pycocotools'
// summary lines). A supernet config without a subnet is scored over fixed,
// seeded subnets (mean and spread). --out writes a detector's detections in
// COCO's results format, as mmdet's --format-only does, and otherwise the
// metrics (TestResult).
func Test(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf ConfigFlags
	cf.Register(fs)
	metric := fs.StringSlice("metrics", nil, "the metric to compute (a registered one, such as accuracy); default: the config's evaluation.metric")
	out := fs.String("out", "", "write results to this JSON file: for a detector, its detections in COCO's results format (a list of {image_id, bbox: [x, y, w, h], score, category_id}, as mmdet's --format-only writes; tools/coco_eval reads it); otherwise, and for a supernet scored over several subnets, {config, checkpoint, metrics}")
	metricsOut := fs.String("metrics-out", "", "write {config, checkpoint, metrics} to this JSON file, for any model (a pipeline's test step reads it); mmdet's test.py writes this to --work-dir as eval_<time>.json")
	numSubnets := fs.Int("num-subnets", 0, "for a supernet: how many fixed subnets to average over (default: evaluation.num_subnets, else 5)")
	launcher := fs.String("launcher", "none", "job launcher: none (one process) or mpi (one rank of `mpirun -np N`, each evaluating a share of the subnets or of the data; needs a build with -tags mpi)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: test CONFIG CHECKPOINT [--metrics accuracy] [--out FILE] [--metrics-out FILE] [--cfg-options KEY=VALUE ...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(ExpandArgs(args)); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return fmt.Errorf("expected CONFIG and CHECKPOINT, got %d arguments", fs.NArg())
	}
	for _, f := range [][2]string{{"--out", *out}, {"--metrics-out", *metricsOut}} {
		if f[1] != "" {
			if err := checkWritable(f[0], f[1]); err != nil {
				return err
			}
		}
	}
	if err := dist.CheckLauncher(*launcher); err != nil {
		return err
	}
	cfg, err := cf.Load(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	comm, end, err := Launch(*launcher, "test", stderr)
	if err != nil {
		return err
	}
	defer func() { end(err) }()
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
	// Fail before the first batch, not after an hour of them: the metric
	// against this data (bbox needs a COCO-format set) and every image.
	if c, ok := ds.(interface{ CheckImages() error }); ok {
		if err := c.CheckImages(); err != nil {
			return fmt.Errorf("data.test: %w", err)
		}
	}
	// Rank 0 prints and writes; every rank evaluates its share.
	if comm.Rank() != 0 {
		stdout, stderr = io.Discard, io.Discard
	}
	ev := &runners.Evaluator{Alg: alg, Loader: loader, Metric: spec, Report: stdout, Comm: comm}
	if err := ev.Check(); err != nil {
		return err
	}
	// A detector's results, kept for --out; nil until a batch has
	// detections.
	var dets *runners.COCOResults
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
		ev.Observe = func(in *models.Batch, res models.Result) error {
			if res.Detections == nil {
				return nil
			}
			if dets == nil {
				var err error
				if dets, err = runners.NewCOCOResults(ds, "--out with a detector"); err != nil {
					return err
				}
			}
			return dets.Add(in, res)
		}
		vals, err = ev.Evaluate(ctx)
	}
	if err != nil {
		return err
	}
	if comm.Rank() != 0 {
		return nil
	}
	// Detection numbers are fractions (0.375), as mmdet prints them;
	// classification accuracies are percentages.
	format := "%s: %.2f\n"
	if dets != nil || slices.ContainsFunc(vals, func(v runners.NamedValue) bool { return strings.HasPrefix(v.Name, "bbox_") }) {
		// A supernet detector's mean over subnets too: 0.3869, not 0.39.
		format = "%s: %.4f\n"
	}
	result := TestResult{Config: fs.Arg(0), Checkpoint: fs.Arg(1), Metrics: map[string]float64{}}
	for _, v := range vals {
		fmt.Fprintf(stdout, format, v.Name, v.Value)
		result.Metrics[v.Name] = v.Value
	}
	if *metricsOut != "" {
		b, err := json.MarshalIndent(result, "", "  ")
		if err != nil {
			return err
		}
		if err := config.WriteFileAtomic(*metricsOut, append(b, '\n')); err != nil {
			return fmt.Errorf("--metrics-out %s: %w", *metricsOut, err)
		}
	}
	if *out == "" {
		return nil
	}
	var b []byte
	if dets != nil {
		b, err = dets.JSON()
	} else {
		b, err = json.MarshalIndent(result, "", "  ")
		b = append(b, '\n')
	}
	if err != nil {
		return err
	}
	if err := config.WriteFileAtomic(*out, b); err != nil {
		return fmt.Errorf("--out %s: %w", *out, err)
	}
	if dets != nil {
		fmt.Fprintf(stderr, "wrote %d detections in COCO's results format to %s\n", len(dets.Detections()), *out)
	}
	return nil
}

// checkWritable fails unless a file can be created beside path, so that
// an evaluation never runs only to lose its results.
func checkWritable(flag, path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s %s: the folder %s does not exist; create it or write elsewhere", flag, path, dir)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s %s: %s is not a folder", flag, path, dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s %s is a folder; name a file such as %s", flag, path, filepath.Join(path, "results.json"))
	}
	f, err := os.CreateTemp(dir, ".razor-write-check-*")
	if err != nil {
		return fmt.Errorf("%s %s: the folder %s is not writable: %w", flag, path, dir, UnwrapPathError(err))
	}
	f.Close()
	return os.Remove(f.Name())
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
