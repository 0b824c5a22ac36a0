package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/dist"
)

// Record is what the pipeline writes in a step's work dir:
// started.json when the step starts, and done.json, with the outputs, once
// it has finished. done.json marks the step finished.
type Record struct {
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
	// ConfigDigest is the tool's Fingerprint of its config and overrides
	// when the step started: a finished step whose config (or a base of
	// it) was edited since is not skipped silently.
	ConfigDigest string    `json:"config_digest,omitempty"`
	Started      time.Time `json:"started"`
	// Finished and Seconds (of the run that finished) are set in done.json.
	Finished time.Time `json:"finished,omitzero"`
	Seconds  float64   `json:"seconds,omitempty"`
}

const (
	startedFile = "started.json"
	doneFile    = "done.json"
)

// stepState is what a step's work dir says about it.
type stepState struct {
	dir           string
	done, started *Record
}

func (p *Runner) state(s *plannedStep) (*stepState, error) {
	st := &stepState{dir: filepath.Join(p.WorkDir, s.Name)}
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
func (p *Runner) command(s *plannedStep, dir string, records map[string]*Record) (*resolvedStep, []string, map[string]time.Time, error) {
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
	return r, buildArgs(p.Tools[s.Tool], r, dir), inputs, nil
}

// buildArgs lays out a tool's command line: CONFIG [CHECKPOINT], the
// tool's work dir flags, one --cfg-options per pair, then the step's args.
func buildArgs(tool Tool, r *resolvedStep, dir string) []string {
	var args []string
	if !tool.NoConfig {
		args = append(args, r.config)
	}
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
// records of all steps, in step order. In a job of several ranks rank 0
// reads and writes the records and tells every rank, step by step,
// whether the step runs and with which arguments; the other ranks return
// no records.
func (p *Runner) run(ctx context.Context, steps []*plannedStep) ([]*Record, error) {
	comm := p.comm()
	rank0 := comm.Rank() == 0
	records := map[string]*Record{}
	var out []*Record
	for _, s := range steps {
		var next stepRun
		if rank0 {
			next = p.prepare(s, len(steps), records)
		}
		if err := shareStep(comm, &next); err != nil {
			return nil, fmt.Errorf("%s: %w", s.where(), err)
		}
		if next.Err != "" {
			if next.err != nil {
				return nil, next.err
			}
			return nil, errors.New(next.Err)
		}
		if next.Skip {
			if rank0 {
				records[s.Name] = next.rec
				out = append(out, next.rec)
			}
			continue
		}
		begin := time.Now()
		if err := p.runTool(ctx, s, next.Args); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s was interrupted (%w); run the pipeline again to resume it", s.where(), err)
			}
			return nil, fmt.Errorf("%s: %s failed: %w", s.where(), s.Tool, err)
		}
		if !rank0 {
			continue
		}
		rec := next.rec
		outputs, err := p.Tools[s.Tool].Collect(next.dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %s finished, but %w", s.where(), s.Tool, err)
		}
		outputs["work_dir"] = next.dir
		end := time.Now()
		rec.Outputs, rec.Finished, rec.Seconds = outputs, end.UTC(), end.Sub(begin).Seconds()
		if err := writeRecord(filepath.Join(next.dir, doneFile), rec); err != nil {
			return nil, err
		}
		fmt.Fprintf(p.Stdout, "%s: finished in %.1fs\n", next.head, rec.Seconds)
		records[s.Name] = rec
		out = append(out, rec)
	}
	return out, nil
}

// stepRun is rank 0's decision about a step, which every rank of a job
// follows: skip it (finished earlier), run its command with Args, or stop
// with Err. The unexported fields stay on rank 0.
type stepRun struct {
	Skip bool     `json:"skip,omitempty"`
	Args []string `json:"args,omitempty"`
	Err  string   `json:"err,omitempty"`

	err  error
	rec  *Record
	dir  string
	head string
}

// shareStep gives every rank rank 0's decision.
func shareStep(c dist.Comm, r *stepRun) error {
	if c.Size() == 1 {
		return nil
	}
	shared := stepRun{Skip: r.Skip, Args: r.Args, Err: r.Err}
	if err := dist.BroadcastJSON(c, &shared); err != nil {
		return err
	}
	r.Skip, r.Args, r.Err = shared.Skip, shared.Args, shared.Err
	return nil
}

// prepare decides on rank 0 whether a step runs: it reads the step's
// records, checks a finished or interrupted run against the command the
// step has now, prints the step's line and records its start.
func (p *Runner) prepare(s *plannedStep, nSteps int, records map[string]*Record) stepRun {
	fail := func(err error) stepRun { return stepRun{Err: err.Error(), err: err} }
	st, err := p.state(s)
	if err != nil {
		return fail(err)
	}
	r, args, inputs, err := p.command(s, st.dir, records)
	if err != nil {
		return fail(err)
	}
	head := fmt.Sprintf("== %s [%d/%d]", s.Name, s.index+1, nSteps)
	digest := ""
	if fp := p.Tools[s.Tool].Fingerprint; fp != nil && !p.Tools[s.Tool].NoConfig {
		if digest, err = fp(r.config, r.options); err != nil {
			return fail(fmt.Errorf("%s: %w", s.where(), err))
		}
	}
	if st.done != nil {
		if err := sameConfig(st.done, digest); err != nil {
			return fail(fmt.Errorf("%s finished earlier in %s, but %w; remove %s to run it again, or restore the config", s.where(), st.dir, err, st.dir))
		}
		if err := sameRun(st.done, args, inputs); err != nil {
			return fail(fmt.Errorf("%s finished earlier in %s, but %w; remove %s to run it again, or restore the pipeline config", s.where(), st.dir, err, st.dir))
		}
		fmt.Fprintf(p.Stdout, "%s: finished earlier (%s), skipped\n", head, filepath.Join(st.dir, doneFile))
		return stepRun{Skip: true, rec: st.done}
	}
	rec := &Record{Step: s.Name, Tool: s.Tool, Config: r.config, Checkpoint: r.checkpoint, CfgOptions: r.options, Command: args, Inputs: inputs,
		ConfigDigest: digest, Started: time.Now().UTC()}
	if st.started != nil {
		if err := sameConfig(st.started, digest); err != nil {
			return fail(fmt.Errorf("%s was interrupted in %s, but %w; remove %s to start it afresh, or restore the config", s.where(), st.dir, err, st.dir))
		}
		if err := sameRun(st.started, args, inputs); err != nil {
			return fail(fmt.Errorf("%s was interrupted in %s, but %w; remove %s to start it afresh, or restore the pipeline config", s.where(), st.dir, err, st.dir))
		}
		rec.Started = st.started.Started
		fmt.Fprintf(p.Stdout, "%s: resuming the interrupted run in %s\n", head, st.dir)
	} else if err := writeRecord(filepath.Join(st.dir, startedFile), rec); err != nil {
		return fail(err)
	}
	fmt.Fprintf(p.Stdout, "%s: %s %s\n", head, s.Tool, shellJoin(args))
	return stepRun{Args: args, rec: rec, dir: st.dir, head: head}
}

// runTool runs a step's command. In a job of several ranks a command that
// takes --launcher runs on every rank with the pipeline's launcher; any
// other runs on rank 0 alone, in a world of one, while the other ranks go
// on to wait for the next step.
func (p *Runner) runTool(ctx context.Context, s *plannedStep, args []string) error {
	tool := p.Tools[s.Tool]
	comm := p.comm()
	if tool.Launcher && p.Launcher != "" && p.Launcher != "none" {
		return tool.Run(ctx, append(slices.Clip(args), "--launcher", p.Launcher), p.Stdout, p.Stderr)
	}
	if comm.Size() == 1 {
		return tool.Run(ctx, args, p.Stdout, p.Stderr)
	}
	if comm.Rank() != 0 {
		return nil
	}
	prev := dist.SetWorld(dist.Single{})
	defer dist.SetWorld(prev)
	return tool.Run(ctx, args, p.Stdout, p.Stderr)
}

// sameConfig checks that a recorded run read the config that the step
// reads now (records without a digest, from before digests, pass).
func sameConfig(rec *Record, digest string) error {
	if rec.ConfigDigest == "" || digest == "" || rec.ConfigDigest == digest {
		return nil
	}
	return fmt.Errorf("its config %s (or a file it inherits from) has changed since it ran", rec.Config)
}

// sameRun checks that a recorded run had this command line and these
// inputs, and says how they differ when not.
func sameRun(rec *Record, args []string, inputs map[string]time.Time) error {
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
func readRecord(path string) (*Record, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pipeline record %s: %w", path, err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("pipeline record %s is not valid JSON (%v); remove it to run the step again", path, err)
	}
	return &rec, nil
}

func writeRecord(path string, rec *Record) error {
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
