package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/runners"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/runners/search"
)

// PipelineTools are the built-in tools a pipeline step can name: train,
// search and test.
//
//   - train runs Train with --work-dir and --auto-resume; its outputs are
//     checkpoint (the newest, the end of training once it has finished) and
//     best_checkpoint (only when evaluation.save_best kept one).
//   - search runs Search on CONFIG CHECKPOINT with --work-dir and
//     --auto-resume; its outputs are best_subnet (best_subnet.yaml) and
//     report (search_report.json).
//   - test runs Test on CONFIG CHECKPOINT with --out; its output is metrics
//     (metrics.json).
func PipelineTools() map[string]PipelineTool {
	resumable := func(dir string) []string { return []string{"--work-dir", dir, "--auto-resume"} }
	return map[string]PipelineTool{
		"train": {Run: Train, Flags: resumable, Outputs: []string{"checkpoint", "best_checkpoint"}, Collect: collectTrain},
		"search": {Run: Search, Checkpoint: true, Flags: resumable, Outputs: []string{"best_subnet", "report"},
			Collect: collectFiles(map[string]string{"best_subnet": search.BestSubnetFile, "report": search.ReportFile})},
		"test": {Run: Test, Checkpoint: true, Outputs: []string{"metrics"},
			Flags:   func(dir string) []string { return []string{"--out", filepath.Join(dir, "metrics.json")} },
			Collect: collectFiles(map[string]string{"metrics": "metrics.json"})},
	}
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
func PipelineWith(ctx context.Context, args []string, tools map[string]PipelineTool, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("pipeline", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf ConfigFlags
	cf.Register(fs)
	workDir := fs.String("work-dir", "", "directory that holds every step's work dir and the results (default: the config's work_dir, else ./work_dirs/<config name>)")
	dryRun := fs.Bool("dry-run", false, "check the pipeline, then print each step's state and command line without running anything")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: pipeline CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--dry-run]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(ExpandArgs(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("expected one CONFIG file, got %d arguments", fs.NArg())
	}
	cfg, err := cf.Load(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	dir := *workDir
	if dir == "" {
		if dir, err = cfg.String("work_dir", ""); err != nil {
			return err
		}
	}
	if dir == "" {
		base := filepath.Base(cfg.File)
		dir = filepath.Join("work_dirs", strings.TrimSuffix(base, filepath.Ext(base)))
	}
	steps, err := planPipeline(cfg, tools)
	if err != nil {
		return err
	}
	p := &pipelineRunner{tools: tools, workDir: dir, stdout: stdout, stderr: stderr, now: time.Now}
	if *dryRun {
		return p.dryRun(steps)
	}
	if err := cfg.WriteFile(filepath.Join(dir, filepath.Base(strings.TrimSuffix(cfg.File, filepath.Ext(cfg.File)))+".yaml")); err != nil {
		return err
	}
	records, err := p.run(ctx, steps)
	if err != nil {
		return err
	}
	res, err := pipelineResults(records, dir)
	if err != nil {
		return err
	}
	return res.write(dir, stdout)
}

// dryRun prints each step's state and its command line, with references
// to steps that have not finished left as written.
func (p *pipelineRunner) dryRun(steps []*plannedStep) error {
	records := map[string]*PipelineRecord{}
	for _, s := range steps {
		st, err := p.state(s)
		if err != nil {
			return err
		}
		r, err := s.resolve(func(step, key, where string) (string, error) {
			if rec, ok := records[step]; ok {
				if v, ok := rec.Outputs[key]; ok {
					return v, nil
				}
			}
			return fmt.Sprintf("$(steps.%s.%s)", step, key), nil
		})
		if err != nil {
			return err
		}
		args := buildArgs(p.tools[s.Tool], r, st.dir)
		state := "to run"
		switch {
		case st.done != nil:
			records[s.Name] = st.done
			state = "finished, will be skipped"
			inputs := map[string]time.Time{}
			for _, d := range s.deps {
				if rec, ok := records[d]; ok {
					inputs[d] = rec.Finished
				} else {
					// A step that runs again invalidates this one.
					inputs[d] = time.Time{}
				}
			}
			if err := sameRun(st.done, args, inputs); err != nil {
				state = fmt.Sprintf("finished, but %v: the run will stop here", err)
			}
		case st.started != nil:
			state = "interrupted, will resume"
		}
		fmt.Fprintf(p.stdout, "== %s [%d/%d] (%s): %s\n   %s %s\n", s.Name, s.index+1, len(steps), st.dir, state, s.Tool, shellJoin(args))
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
