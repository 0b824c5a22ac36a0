package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/razorgo/razor/config"
)

// PipelineTool is a command that pipeline steps can run, and what the
// pipeline needs to know to place and find its outputs.
type PipelineTool struct {
	// Run runs the command on its arguments, as Train does.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// Checkpoint is whether the command takes CHECKPOINT after CONFIG.
	Checkpoint bool
	// Flags are the arguments that put the command's outputs in the step's
	// work dir, and resume an interrupted run from what it left there.
	Flags func(dir string) []string
	// Outputs names what a finished step offers to later steps' references,
	// besides work_dir, which every step has.
	Outputs []string
	// Collect finds the outputs in a finished step's work dir. An output a
	// run may lack (train's best_checkpoint without save_best) is left out.
	Collect func(dir string) (map[string]string, error)
}

// PipelineRecord is what the pipeline writes in a step's work dir:
// started.json when the step starts, and done.json, with the outputs, once
// it has finished. done.json marks the step finished.
type PipelineRecord struct {
	Step string `json:"step"`
	Tool string `json:"tool"`
	// Config, Checkpoint and CfgOptions are the tool's config, checkpoint
	// and overrides, references resolved, so the results table can rebuild
	// the same model.
	Config     string   `json:"config"`
	Checkpoint string   `json:"checkpoint,omitempty"`
	CfgOptions []string `json:"cfg_options,omitempty"`
	// Command is the tool's argument list.
	Command []string `json:"command"`
	// Inputs holds, for every step this one refers to, when that step's
	// run finished: a step that runs again invalidates the steps after it.
	Inputs  map[string]time.Time `json:"inputs,omitempty"`
	Outputs map[string]string    `json:"outputs,omitempty"`
	Started time.Time            `json:"started"`
	// Finished and Seconds (of the run that finished) are set in done.json.
	Finished time.Time `json:"finished,omitzero"`
	Seconds  float64   `json:"seconds,omitempty"`
}

const (
	startedFile = "started.json"
	doneFile    = "done.json"
)

// pipelineRunner runs planned steps in order in workDir.
type pipelineRunner struct {
	tools   map[string]PipelineTool
	workDir string
	stdout  io.Writer
	stderr  io.Writer
	now     func() time.Time
}

// stepState is what a step's work dir says about it.
type stepState struct {
	dir           string
	done, started *PipelineRecord
}

func (p *pipelineRunner) state(s *plannedStep) (*stepState, error) {
	st := &stepState{dir: filepath.Join(p.workDir, s.Name)}
	var err error
	if st.done, err = readRecord(filepath.Join(st.dir, doneFile)); err != nil {
		return nil, err
	}
	if st.started, err = readRecord(filepath.Join(st.dir, startedFile)); err != nil {
		return nil, err
	}
	return st, nil
}

// command resolves a step against the finished steps' records and builds
// its tool's argument list and inputs.
func (p *pipelineRunner) command(s *plannedStep, dir string, records map[string]*PipelineRecord) (*resolvedStep, []string, map[string]time.Time, error) {
	r, err := s.resolve(func(step, key, where string) (string, error) {
		v, ok := records[step].Outputs[key]
		if !ok {
			return "", fmt.Errorf("%s refers to output %q of step %q, which its run did not produce (it produced %s)", where, key, step, strings.Join(slices.Sorted(maps.Keys(records[step].Outputs)), ", "))
		}
		return v, nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	inputs := map[string]time.Time{}
	for _, d := range s.deps {
		inputs[d] = records[d].Finished
	}
	return r, buildArgs(p.tools[s.Tool], r, dir), inputs, nil
}

// buildArgs lays out a tool's command line: CONFIG [CHECKPOINT], the
// tool's work dir flags, one --cfg-options per pair, then the step's args.
func buildArgs(tool PipelineTool, r *resolvedStep, dir string) []string {
	args := []string{r.config}
	if tool.Checkpoint {
		args = append(args, r.checkpoint)
	}
	if tool.Flags != nil {
		args = append(args, tool.Flags(dir)...)
	}
	for _, o := range r.options {
		args = append(args, "--cfg-options="+o)
	}
	return append(args, r.args...)
}

// run runs every step that has not finished, in order, and returns the
// records of all steps.
func (p *pipelineRunner) run(ctx context.Context, steps []*plannedStep) ([]*PipelineRecord, error) {
	records := map[string]*PipelineRecord{}
	var out []*PipelineRecord
	for _, s := range steps {
		st, err := p.state(s)
		if err != nil {
			return nil, err
		}
		r, args, inputs, err := p.command(s, st.dir, records)
		if err != nil {
			return nil, err
		}
		head := fmt.Sprintf("== %s [%d/%d]", s.Name, s.index+1, len(steps))
		if st.done != nil {
			if err := sameRun(st.done, args, inputs); err != nil {
				return nil, fmt.Errorf("%s finished earlier in %s, but %w; remove %s to run it again, or restore the pipeline config", s.where(), st.dir, err, st.dir)
			}
			fmt.Fprintf(p.stdout, "%s: finished earlier (%s), skipped\n", head, filepath.Join(st.dir, doneFile))
			records[s.Name] = st.done
			out = append(out, st.done)
			continue
		}
		rec := &PipelineRecord{Step: s.Name, Tool: s.Tool, Config: r.config, Checkpoint: r.checkpoint, CfgOptions: r.options, Command: args, Inputs: inputs, Started: p.now().UTC()}
		if st.started != nil {
			if err := sameRun(st.started, args, inputs); err != nil {
				return nil, fmt.Errorf("%s was interrupted in %s, but %w; remove %s to start it afresh, or restore the pipeline config", s.where(), st.dir, err, st.dir)
			}
			rec.Started = st.started.Started
			fmt.Fprintf(p.stdout, "%s: resuming the interrupted run in %s\n", head, st.dir)
		} else if err := writeRecord(filepath.Join(st.dir, startedFile), rec); err != nil {
			return nil, err
		}
		fmt.Fprintf(p.stdout, "%s: %s %s\n", head, s.Tool, shellJoin(args))
		begin := p.now()
		if err := p.tools[s.Tool].Run(ctx, args, p.stdout, p.stderr); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s was interrupted (%w); run the pipeline again to resume it", s.where(), err)
			}
			return nil, fmt.Errorf("%s: %s failed: %w", s.where(), s.Tool, err)
		}
		outputs, err := p.tools[s.Tool].Collect(st.dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %s finished, but %w", s.where(), s.Tool, err)
		}
		outputs["work_dir"] = st.dir
		end := p.now()
		rec.Outputs, rec.Finished, rec.Seconds = outputs, end.UTC(), end.Sub(begin).Seconds()
		if err := writeRecord(filepath.Join(st.dir, doneFile), rec); err != nil {
			return nil, err
		}
		fmt.Fprintf(p.stdout, "%s: finished in %.1fs\n", head, rec.Seconds)
		records[s.Name] = rec
		out = append(out, rec)
	}
	return out, nil
}

// sameRun checks that a recorded run had this command line and these
// inputs, and says how they differ when not.
func sameRun(rec *PipelineRecord, args []string, inputs map[string]time.Time) error {
	if !slices.Equal(rec.Command, args) {
		for i := range min(len(rec.Command), len(args)) {
			if rec.Command[i] != args[i] {
				return fmt.Errorf("its argument %d was %q and is now %q", i+1, rec.Command[i], args[i])
			}
		}
		return fmt.Errorf("it had %d arguments and now has %d (%s)", len(rec.Command), len(args), shellJoin(args))
	}
	for _, dep := range slices.Sorted(maps.Keys(inputs)) {
		if was, ok := rec.Inputs[dep]; !ok || !was.Equal(inputs[dep]) {
			return fmt.Errorf("step %s, whose outputs it used, has run again since", dep)
		}
	}
	return nil
}

// readRecord reads a started.json or done.json; a missing file is nil.
func readRecord(path string) (*PipelineRecord, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pipeline record %s: %w", path, err)
	}
	var rec PipelineRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("pipeline record %s is not valid JSON (%v); remove it to run the step again", path, err)
	}
	return &rec, nil
}

func writeRecord(path string, rec *PipelineRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return config.WriteFileAtomic(path, append(b, '\n'))
}

// shellJoin writes args as a shell would need them, to show a command the
// user can copy.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`!*?[](){}<>|&;#~") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
