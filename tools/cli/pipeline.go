package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/razorgo/razor/internal/worklock"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/runners"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/runners/logplot"
	"github.com/razorgo/razor/runners/pipeline"
	"github.com/razorgo/razor/runners/search"
)

// PipelineTools are the built-in tools a pipeline step can name: train,
// search, test and make_mnist_det.
//
//   - train runs Train with --work-dir and --auto-resume; its outputs are
//     checkpoint (the newest, the end of training once it has finished) and
//     best_checkpoint (only when evaluation.save_best kept one); results.md
//     links its curves.png (CurvesFile).
//   - search runs Search on CONFIG CHECKPOINT with --work-dir and
//     --auto-resume; its outputs are best_subnet (best_subnet.yaml) and
//     report (search_report.json), a row of the searched subnets.
//   - test runs Test on CONFIG CHECKPOINT with --metrics-out; its output is
//     metrics (metrics.json), a row of the tested models, for a classifier
//     or a detector alike.
//   - infer runs Infer on CONFIG CHECKPOINT and the images in args, with
//     --out-dir: results.md links each image with the detector's boxes.
//   - make_mnist_det runs MakeMNISTDet on the step's args alone (no
//     config): it makes the digits detection set where --out says, for the
//     steps after it; regenerating gives the same bytes, so an interrupted
//     step simply runs again.
func PipelineTools() map[string]pipeline.Tool {
	resumable := func(dir string) []string { return []string{"--work-dir", dir, "--auto-resume"} }
	return map[string]pipeline.Tool{
		"train": {Run: Train, Launcher: true, Flags: resumable, Outputs: []string{"checkpoint", "best_checkpoint"}, Collect: collectTrain, Summarize: trainCurves, Fingerprint: ConfigFingerprint},
		"search": {Run: Search, Launcher: true, Checkpoint: true, Flags: resumable, Outputs: []string{"best_subnet", "report"},
			Collect:   collectFiles(map[string]string{"best_subnet": search.BestSubnetFile, "report": search.ReportFile}),
			Summarize: pipeline.SearchSummary("best_subnet", "report"), Fingerprint: ConfigFingerprint},
		"infer": {Run: Infer, Checkpoint: true,
			Flags:     func(dir string) []string { return []string{"--out-dir", dir} },
			Collect:   func(string) (map[string]string, error) { return map[string]string{}, nil },
			Summarize: inferPictures, Fingerprint: ConfigFingerprint},
		"make_mnist_det": {Run: MakeMNISTDet, NoConfig: true,
			Collect: func(string) (map[string]string, error) { return map[string]string{}, nil }},
		"test": {Run: Test, Launcher: true, Checkpoint: true, Outputs: []string{"metrics"},
			Flags:     func(dir string) []string { return []string{"--metrics-out", filepath.Join(dir, "metrics.json")} },
			Collect:   collectFiles(map[string]string{"metrics": "metrics.json"}),
			Summarize: TestSummary("metrics"), Fingerprint: ConfigFingerprint},
	}
}

// ConfigFingerprint is the built-in tools' pipeline.Tool.Fingerprint: the
// config read with its bases, overrides and expressions as the tool reads
// it, digested (SHA-256 of its YAML dump).
func ConfigFingerprint(path string, options []string) (string, error) {
	cfg, err := config.Load(path, config.Options{Overrides: options})
	if err != nil {
		return "", err
	}
	y, err := cfg.YAML(false)
	if err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	sum := sha256.Sum256(y)
	return hex.EncodeToString(sum[:]), nil
}

// CurvesFile is the picture of a pipeline's training step: its losses and
// metrics against the iteration, drawn in the step's work dir.
const CurvesFile = "curves.png"

// trainCurves draws a finished training step's curves (every logged loss
// and metric, from all its logs, resumed runs included).
func trainCurves(rec *pipeline.Record) (pipeline.Summary, error) {
	dir := rec.Outputs["work_dir"]
	l, err := logplot.ReadRun(dir)
	if err != nil {
		return pipeline.Summary{}, fmt.Errorf("training curves: %w", err)
	}
	out := filepath.Join(dir, CurvesFile)
	if err := logplot.PlotCurves([]*logplot.Log{l}, logplot.PlotOptions{Title: rec.Step}, out); err != nil {
		return pipeline.Summary{}, fmt.Errorf("training curves of %s: %w", dir, err)
	}
	sum := pipeline.Summary{Figures: []pipeline.Figure{{Step: rec.Step, Caption: "training curves (losses and metrics against the iteration)", Path: out}}}
	// The steps table shows the run's last evaluation.
	for i := len(l.Entries) - 1; i >= 0; i-- {
		if e := l.Entries[i]; e.Mode == "val" {
			sum.Metric = pipeline.MainMetric(e.Values)
			break
		}
	}
	return sum, nil
}

// inferPictures links the images an infer step drew.
func inferPictures(rec *pipeline.Record) (pipeline.Summary, error) {
	drawn, err := filepath.Glob(filepath.Join(rec.Outputs["work_dir"], "*_result.png"))
	if err != nil {
		return pipeline.Summary{}, err
	}
	var sum pipeline.Summary
	for _, p := range drawn {
		sum.Figures = append(sum.Figures, pipeline.Figure{Step: rec.Step, Caption: "boxes on " + strings.TrimSuffix(filepath.Base(p), "_result.png"), Path: p})
	}
	return sum, nil
}

// collectTrain finds a finished training run's checkpoints.
func collectTrain(dir string) (map[string]string, error) {
	latest := runners.FindLatest(dir)
	if latest == "" {
		return nil, fmt.Errorf("it left no complete checkpoint in %s", dir)
	}
	out := map[string]string{"checkpoint": latest}
	entries, err := checkpoint.List(dir)
	if err != nil {
		return nil, err
	}
	// The eval hook keeps one best_* checkpoint; the newest wins should an
	// older one survive a crash.
	for _, e := range entries {
		if strings.HasPrefix(filepath.Base(e.Path), "best_") {
			out["best_checkpoint"] = e.Path
		}
	}
	return out, nil
}

// collectFiles returns outputs that are fixed files in the work dir, each
// of which must exist.
func collectFiles(files map[string]string) func(dir string) (map[string]string, error) {
	return func(dir string) (map[string]string, error) {
		out := map[string]string{}
		for name, file := range files {
			p := filepath.Join(dir, file)
			if !fileExists(p) {
				return nil, fmt.Errorf("it did not write %s (output %s)", p, name)
			}
			out[name] = p
		}
		return out, nil
	}
}

// Pipeline is the pipeline command with the built-in tools (PipelineTools):
//
//	pipeline CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--dry-run]
//
// It runs the config's steps in order, each in <work_dir>/<step name>,
// skips the steps that have finished, resumes an interrupted one, and ends
// with a results table in <work_dir>/results.md and results.json.
func Pipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return PipelineWith(ctx, args, PipelineTools(), stdout, stderr)
}

// PipelineWith is the pipeline command with a chosen set of tools, for a
// main that adds its own.
func PipelineWith(ctx context.Context, args []string, tools map[string]pipeline.Tool, stdout, stderr io.Writer) (err error) {
	fs := pflag.NewFlagSet("pipeline", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf ConfigFlags
	cf.Register(fs)
	workDir := fs.String("work-dir", "", "directory that holds every step's work dir and the results (default: the config's work_dir, else ./work_dirs/<config name>)")
	dryRun := fs.Bool("dry-run", false, "check the pipeline, then print each step's state and command line without running anything")
	launcher := fs.String("launcher", "none", "job launcher: none (one process) or mpi (every rank of `mpirun -np N` runs the train, search and test steps data-parallel, rank 0 alone the others and the records; needs a build with -tags mpi)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipeline CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--launcher none|mpi] [--dry-run]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(ExpandArgs(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("expected one CONFIG file, got %d arguments", fs.NArg())
	}
	if err := dist.CheckLauncher(*launcher); err != nil {
		return err
	}
	cfg, err := cf.Load(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	dir, err := cfg.WorkDir(*workDir)
	if err != nil {
		return err
	}
	comm, end, err := Launch(*launcher, "pipeline", stderr)
	if err != nil {
		return err
	}
	defer func() { end(err) }()
	if comm.Rank() != 0 {
		// Rank 0 alone prints the steps and the results.
		stdout = io.Discard
	}
	p := &pipeline.Runner{Tools: tools, WorkDir: dir, Stdout: stdout, Stderr: stderr, Comm: comm, Launcher: *launcher}
	if *dryRun {
		if comm.Rank() != 0 {
			return nil
		}
		return p.DryRun(cfg)
	}
	if comm.Rank() == 0 {
		lock, err := worklock.Acquire(dir, "pipeline")
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	_, err = p.Run(ctx, cfg)
	return err
}

// TestSummary is the Summarize of a tool whose output named metrics is a
// TestResult file, as Test writes with --out: it makes the step a row of
// the tested models, the model rebuilt from the step's config and
// overrides to count its params and FLOPs.
func TestSummary(metrics string) func(rec *pipeline.Record) (pipeline.Summary, error) {
	return func(rec *pipeline.Record) (pipeline.Summary, error) {
		var tr TestResult
		b, err := os.ReadFile(rec.Outputs[metrics])
		if err != nil {
			return pipeline.Summary{}, err
		}
		if err := json.Unmarshal(b, &tr); err != nil {
			return pipeline.Summary{}, fmt.Errorf("metrics file %s: %w", rec.Outputs[metrics], err)
		}
		cfg, err := config.Load(rec.Config, config.Options{Overrides: rec.CfgOptions})
		if err != nil {
			return pipeline.Summary{}, err
		}
		alg, err := algorithms.FromConfig(cfg)
		if err != nil {
			return pipeline.Summary{}, fmt.Errorf("config %s: %w", rec.Config, err)
		}
		oneShot, err := algorithms.AsOneShot(alg, "counting FLOPs")
		if err != nil {
			return pipeline.Summary{}, fmt.Errorf("config %s: %w", rec.Config, err)
		}
		c, err := oneShot.Complexity(nil, nil)
		if err != nil {
			return pipeline.Summary{}, fmt.Errorf("counting FLOPs of config %s: %w", rec.Config, err)
		}
		tested := &pipeline.TestedModel{Step: rec.Step, Checkpoint: rec.Checkpoint,
			Params: c.Params, FLOPs: c.FLOPs, Scope: c.Scope, Shape: c.Shape, Metrics: tr.Metrics}
		tested.Subnet, _ = cfg.String("algorithm.mutable_cfg", "")
		// A narrower scope than the whole model (DetNAS's backbone) gets
		// the whole model's count beside it, as get_flops --scope model.
		if sc, ok := oneShot.(interface {
			ComplexityIn(algorithms.Scope, mutables.Subnet, []int) (*algorithms.Complexity, error)
		}); ok {
			m, err := sc.ComplexityIn(algorithms.Scope{}, nil, nil)
			if err != nil {
				return pipeline.Summary{}, fmt.Errorf("counting the whole model's FLOPs of config %s: %w", rec.Config, err)
			}
			if m.Scope != c.Scope {
				tested.Model = &pipeline.Cost{Params: m.Params, FLOPs: m.FLOPs, Scope: m.Scope}
			}
		}
		return pipeline.Summary{Tested: tested}, nil
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
