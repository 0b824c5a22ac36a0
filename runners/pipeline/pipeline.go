// Package pipeline runs a declarative multi-step experiment -- for SPOS:
// train the supernet, search it, retrain the best subnet, test it -- as a
// pipeline config lists its steps, each step a command (a Tool) working in
// <work dir>/<step name>. It plans the steps and checks their references
// to earlier steps' outputs, $(steps.NAME.OUTPUT), before anything runs;
// records each step's start and finish (started.json, done.json) so that a
// finished step is skipped and an interrupted one resumed; and ends with
// the results table, results.md and results.json, filled from what each
// tool says its outputs hold (Tool.Summarize), not from tool names.
//
// It sits in runners beside search because it does a runner's job one
// level up: mmrazor leaves chaining train, search and retrain to the user's
// shell, and this package is that chain with the runner's work dirs,
// records and resumption. It may import config and the runners' packages
// (search, for the report it summarizes), never tools/cli: the commands
// arrive as Tools, and tools/cli, which holds the flags and the built-in
// commands, imports this package.
package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/dist"
)

// Tool is a command that pipeline steps can run, and what the pipeline
// needs to know to place and find its outputs and to fill the results.
type Tool struct {
	// Run runs the command on its arguments, as tools/cli's Train does.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// Checkpoint is whether the command takes CHECKPOINT after CONFIG.
	Checkpoint bool
	// NoConfig marks a command that takes no CONFIG, only its flags (a
	// data maker such as make_mnist_det): its step has no config key and
	// its arguments come from args.
	NoConfig bool
	// Flags are the arguments that put the command's outputs in the step's
	// work dir, and resume an interrupted run from what it left there.
	Flags func(dir string) []string
	// Outputs names what a finished step offers to later steps' references,
	// besides work_dir, which every step has.
	Outputs []string
	// Collect finds the outputs in a finished step's work dir. An output a
	// run may lack (train's best_checkpoint without save_best) is left out.
	Collect func(dir string) (map[string]string, error)
	// Summarize reads a finished step's record and outputs into its rows
	// of the results; nil for a tool that adds none (train). A tool whose
	// outputs are a search's uses SearchSummary.
	Summarize func(rec *Record) (Summary, error)
	// Fingerprint reads the step's CONFIG with its overrides as the
	// command will, and returns a digest of the result (bases and
	// expressions included), or the error the command would stop at. The
	// pipeline calls it on every step before anything runs (references to
	// earlier steps' outputs standing in as written), so that a missing
	// file or a bad override stops the pipeline at once, and records the
	// digest, so that a finished step whose config file was edited since
	// is not skipped silently. nil skips both (a tool whose config is not
	// a razor config).
	Fingerprint func(config string, options []string) (string, error)
	// Launcher marks a command that takes --launcher and runs as one rank
	// of a job (train, search, test): in a pipeline started with
	// --launcher mpi every rank runs it with the same flag. A command
	// without it runs on rank 0 alone while the other ranks wait (a data
	// maker, infer).
	Launcher bool
}

// Summary is one finished step's share of the results: a tested model, a
// searched subnet, both or neither.
type Summary struct {
	Tested   *TestedModel
	Searched *SearchedSubnet
	// Metric is the step's headline number in the steps table; nil takes
	// Tested's main metric or Searched's score.
	Metric *StepMetric
	// Figures are pictures of the step (training curves, a search's
	// plot), linked from results.md.
	Figures []Figure
}

// Figure is a picture a step made, with what it shows.
type Figure struct {
	Step    string `json:"step"`
	Caption string `json:"caption"`
	Path    string `json:"path"`
}

// Runner runs a pipeline config's steps with Tools, each step in
// <WorkDir>/<step name>, printing progress to Stdout and passing both
// writers to the tools.
type Runner struct {
	Tools   map[string]Tool
	WorkDir string
	Stdout  io.Writer
	Stderr  io.Writer
	// Comm is the job the pipeline runs in (nil: one process), and
	// Launcher the --launcher that started it, passed on to the commands
	// that take one. Under a job of several ranks every rank runs every
	// step's command together; rank 0 alone decides which steps run (from
	// the records), keeps the records and writes the results.
	Comm     dist.Comm
	Launcher string
}

func (p *Runner) comm() dist.Comm {
	if p.Comm == nil {
		return dist.Single{}
	}
	return p.Comm
}

// Run checks the pipeline, saves the merged pipeline config in the work
// dir, runs every step that has not finished, in order, and writes the
// results (results.md, also printed, and results.json). In a job of
// several ranks (Comm) only rank 0 writes and returns the results; the
// other ranks return nil Results once the last step is done.
func (p *Runner) Run(ctx context.Context, cfg *config.Config) (*Results, error) {
	steps, err := plan(cfg, p.Tools)
	if err != nil {
		return nil, err
	}
	if err := p.checkConfigs(steps); err != nil {
		return nil, err
	}
	rank0 := p.comm().Rank() == 0
	if rank0 {
		if err := cfg.WriteFile(filepath.Join(p.WorkDir, filepath.Base(strings.TrimSuffix(cfg.File, filepath.Ext(cfg.File)))+".yaml")); err != nil {
			return nil, err
		}
	}
	records, err := p.run(ctx, steps)
	if err != nil || !rank0 {
		return nil, err
	}
	res, err := p.results(records)
	if err != nil {
		return nil, err
	}
	return res, res.write(p.WorkDir, p.Stdout)
}

// DryRun checks the pipeline, then prints each step's state and its
// command line without running anything; references to steps that have
// not finished are left as written.
func (p *Runner) DryRun(cfg *config.Config) error {
	steps, err := plan(cfg, p.Tools)
	if err != nil {
		return err
	}
	if err := p.checkConfigs(steps); err != nil {
		return err
	}
	records := map[string]*Record{}
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
		args := buildArgs(p.Tools[s.Tool], r, st.dir)
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
		fmt.Fprintf(p.Stdout, "== %s [%d/%d] (%s): %s\n   %s %s\n", s.Name, s.index+1, len(steps), st.dir, state, s.Tool, shellJoin(args))
	}
	return nil
}

// checkConfigs reads every step's config with its overrides before any
// step runs, references to earlier steps' outputs left as written (a
// path-like string), so that a missing or broken config stops the
// pipeline before the first step instead of after the steps before it.
func (p *Runner) checkConfigs(steps []*plannedStep) error {
	for _, s := range steps {
		tool := p.Tools[s.Tool]
		if tool.NoConfig || tool.Fingerprint == nil {
			continue
		}
		r, err := s.resolve(func(step, key, where string) (string, error) {
			return fmt.Sprintf("$(steps.%s.%s)", step, key), nil
		})
		if err != nil {
			return err
		}
		if _, err := tool.Fingerprint(r.config, r.options); err != nil {
			return fmt.Errorf("%s: %w", s.where(), err)
		}
	}
	return nil
}
