package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/razorgo/razor/config"
)

// fakeTool stands in for train/search/test: each run appends a line to
// progress.txt in its work dir (so a resumed run can see what the killed one
// left) and then writes one file per output.
type fakeTool struct {
	name    string
	outputs []string
	calls   [][]string
	// fail makes the run with this number (1-based) stop before writing
	// its outputs, as a killed process would.
	fail int
	// content is what an output's file holds; the tool's name by default.
	content map[string]string
	// summarize becomes the tool's Summarize.
	summarize func(rec *Record) (Summary, error)
}

func (f *fakeTool) tool(checkpoint bool) Tool {
	return Tool{
		Checkpoint: checkpoint,
		Flags:      func(dir string) []string { return []string{"--work-dir", dir, "--auto-resume"} },
		Outputs:    f.outputs,
		Run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			f.calls = append(f.calls, args)
			dir := args[slices.Index(args, "--work-dir")+1]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			prog, err := os.OpenFile(filepath.Join(dir, "progress.txt"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			fmt.Fprintf(prog, "run %d\n", len(f.calls))
			prog.Close()
			if len(f.calls) == f.fail {
				return errors.New("killed")
			}
			for _, o := range f.outputs {
				text, ok := f.content[o]
				if !ok {
					text = f.name
				}
				if err := os.WriteFile(filepath.Join(dir, o+".out"), []byte(text), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
		Collect: func(dir string) (map[string]string, error) {
			out := map[string]string{}
			for _, o := range f.outputs {
				p := filepath.Join(dir, o+".out")
				if !fileExists(p) {
					return nil, fmt.Errorf("no %s", p)
				}
				out[o] = p
			}
			return out, nil
		},
		Summarize: f.summarize,
	}
}

// fakes are three fake tools shaped like train, search and test.
type fakes struct{ fit, pick, score *fakeTool }

func newFakes() *fakes {
	return &fakes{
		fit:   &fakeTool{name: "fit", outputs: []string{"checkpoint"}},
		pick:  &fakeTool{name: "pick", outputs: []string{"best_subnet", "report"}},
		score: &fakeTool{name: "score", outputs: []string{"metrics"}},
	}
}

func (f *fakes) tools() map[string]Tool {
	return map[string]Tool{"fit": f.fit.tool(false), "pick": f.pick.tool(true), "score": f.score.tool(true)}
}

// threeSteps is a supernet -> search -> retrain pipeline over fake tools.
const threeSteps = `
iters: 5
cfg_options:
  data.samples_per_gpu: 4
steps:
  - name: supernet
    tool: fit
    config: '{{fileDirname}}/supernet.yaml'
    cfg_options:
      runner: {max_iters: '${ iters }'}
    args: [--seed, 3]
  - name: search
    tool: pick
    config: '{{fileDirname}}/search.yaml'
    checkpoint: $(steps.supernet.checkpoint)
  - name: retrain
    tool: fit
    config: '{{fileDirname}}/subnet.yaml'
    cfg_options:
      algorithm.mutable_cfg: $(steps.search.best_subnet)
      custom_hooks: [$(steps.search.work_dir)/a b.yaml, 2]
`

func writePipeline(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runPipeline loads the pipeline config with its overrides, as the
// pipeline command does, and runs it (or dry-runs it) over tools in work.
func runPipeline(ctx context.Context, tools map[string]Tool, cfgPath, work string, dry bool, overrides ...string) (string, error) {
	cfg, err := config.Load(cfgPath, config.Options{Overrides: overrides})
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	p := &Runner{Tools: tools, WorkDir: work, Stdout: &out, Stderr: &out}
	if dry {
		err = p.DryRun(cfg)
	} else {
		_, err = p.Run(ctx, cfg)
	}
	return out.String(), err
}

func runFake(f *fakes, cfgPath, work string, overrides ...string) (string, error) {
	return runPipeline(context.Background(), f.tools(), cfgPath, work, false, overrides...)
}

func dryRunFake(f *fakes, cfgPath, work string) (string, error) {
	return runPipeline(context.Background(), f.tools(), cfgPath, work, true)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestPipelineRunsStepsWithResolvedReferences(t *testing.T) {
	cfgPath := writePipeline(t, threeSteps)
	dir := filepath.Dir(cfgPath)
	work := filepath.Join(t.TempDir(), "work")
	f := newFakes()
	out, err := runFake(f, cfgPath, work)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(f.fit.calls) != 2 || len(f.pick.calls) != 1 {
		t.Fatalf("calls: fit %d, pick %d; want 2 and 1", len(f.fit.calls), len(f.pick.calls))
	}
	sup := filepath.Join(work, "supernet")
	wantSupernet := []string{filepath.Join(dir, "supernet.yaml"), "--work-dir", sup, "--auto-resume",
		"--cfg-options=data.samples_per_gpu=4", "--cfg-options=runner.max_iters=5", "--seed", "3"}
	if !slices.Equal(f.fit.calls[0], wantSupernet) {
		t.Errorf("supernet command\n got %q\nwant %q", f.fit.calls[0], wantSupernet)
	}
	search := filepath.Join(work, "search")
	wantSearch := []string{filepath.Join(dir, "search.yaml"), filepath.Join(sup, "checkpoint.out"), "--work-dir", search, "--auto-resume",
		"--cfg-options=data.samples_per_gpu=4"}
	if !slices.Equal(f.pick.calls[0], wantSearch) {
		t.Errorf("search command\n got %q\nwant %q", f.pick.calls[0], wantSearch)
	}
	wantRetrain := []string{filepath.Join(dir, "subnet.yaml"), "--work-dir", filepath.Join(work, "retrain"), "--auto-resume",
		"--cfg-options=data.samples_per_gpu=4",
		"--cfg-options=algorithm.mutable_cfg=" + filepath.Join(search, "best_subnet.out"),
		fmt.Sprintf(`--cfg-options=custom_hooks=[%s/a b.yaml,2]`, search)}
	if !slices.Equal(f.fit.calls[1], wantRetrain) {
		t.Errorf("retrain command\n got %q\nwant %q", f.fit.calls[1], wantRetrain)
	}
	var rec Record
	b, err := os.ReadFile(filepath.Join(work, "retrain", "done.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Outputs["checkpoint"] != filepath.Join(work, "retrain", "checkpoint.out") || rec.Outputs["work_dir"] != filepath.Join(work, "retrain") {
		t.Errorf("retrain outputs %v", rec.Outputs)
	}
	if _, ok := rec.Inputs["search"]; !ok || len(rec.Inputs) != 1 {
		t.Errorf("retrain inputs %v, want search alone", rec.Inputs)
	}
	if !fileExists(filepath.Join(work, "pipeline.yaml")) || !fileExists(filepath.Join(work, "results.md")) {
		t.Error("the merged pipeline config or results.md was not written")
	}
}

func TestPipelineSkipsFinishedSteps(t *testing.T) {
	cfgPath := writePipeline(t, threeSteps)
	work := t.TempDir()
	f := newFakes()
	if out, err := runFake(f, cfgPath, work); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	again := newFakes()
	out, err := runFake(again, cfgPath, work)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(again.fit.calls)+len(again.pick.calls) != 0 {
		t.Errorf("a finished pipeline ran %d steps again", len(again.fit.calls)+len(again.pick.calls))
	}
	if n := strings.Count(out, "skipped"); n != 3 {
		t.Errorf("%d steps said skipped, want 3:\n%s", n, out)
	}
}

func TestPipelineResumesInterruptedStep(t *testing.T) {
	cfgPath := writePipeline(t, threeSteps)
	work := t.TempDir()
	f := newFakes()
	f.pick.fail = 1
	out, err := runFake(f, cfgPath, work)
	if err == nil || !strings.Contains(err.Error(), "step 2 (search): pick failed: killed") {
		t.Fatalf("error %v, want the search step's failure\n%s", err, out)
	}
	if fileExists(filepath.Join(work, "search", "done.json")) || len(f.fit.calls) != 1 {
		t.Fatalf("the failed step was marked done, or the retrain ran (fit calls %d)", len(f.fit.calls))
	}
	again := newFakes()
	out, err = runFake(again, cfgPath, work)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(again.pick.calls) != 1 || !slices.Equal(again.pick.calls[0], f.pick.calls[0]) {
		t.Errorf("the resumed search ran %q, want the interrupted command %q", again.pick.calls, f.pick.calls[0])
	}
	if len(again.fit.calls) != 1 || !strings.Contains(again.fit.calls[0][0], "subnet.yaml") {
		t.Errorf("after the resume, fit ran %q; want the retrain alone (the supernet had finished)", again.fit.calls)
	}
	if !strings.Contains(out, "resuming the interrupted run") {
		t.Errorf("output does not say it resumes:\n%s", out)
	}
	prog, _ := os.ReadFile(filepath.Join(work, "search", "progress.txt"))
	if string(prog) != "run 1\nrun 1\n" {
		t.Errorf("search progress %q: the resumed run should continue in the interrupted run's work dir", prog)
	}
}

func TestPipelineRefusesStaleSteps(t *testing.T) {
	cfgPath := writePipeline(t, threeSteps)
	work := t.TempDir()
	if out, err := runFake(newFakes(), cfgPath, work); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	_, err := runFake(newFakes(), cfgPath, work, "iters=7")
	if err == nil || !strings.Contains(err.Error(), `step 1 (supernet) finished earlier`) ||
		!strings.Contains(err.Error(), `argument 6 was "--cfg-options=runner.max_iters=5" and is now "--cfg-options=runner.max_iters=7"`) ||
		!strings.Contains(err.Error(), "remove "+filepath.Join(work, "supernet")) {
		t.Errorf("changed supernet: %v", err)
	}

	// The supernet runs again: the search that used its old checkpoint is
	// refused rather than silently kept.
	if err := os.RemoveAll(filepath.Join(work, "supernet")); err != nil {
		t.Fatal(err)
	}
	f := newFakes()
	_, err = runFake(f, cfgPath, work)
	if err == nil || !strings.Contains(err.Error(), "step 2 (search) finished earlier") || !strings.Contains(err.Error(), "step supernet, whose outputs it used, has run again since") {
		t.Errorf("rerun supernet: %v", err)
	}
	if len(f.fit.calls) != 1 || len(f.pick.calls) != 0 {
		t.Errorf("fit ran %d times and pick %d; want the supernet alone", len(f.fit.calls), len(f.pick.calls))
	}
}

func TestPipelineRefusesToResumeAChangedStep(t *testing.T) {
	cfgPath := writePipeline(t, threeSteps)
	work := t.TempDir()
	f := newFakes()
	f.fit.fail = 1
	if _, err := runFake(f, cfgPath, work); err == nil {
		t.Fatal("the killed supernet did not fail the pipeline")
	}
	again := newFakes()
	_, err := runFake(again, cfgPath, work, "steps.0.args=[--seed,4]")
	if err == nil || !strings.Contains(err.Error(), "step 1 (supernet) was interrupted") || !strings.Contains(err.Error(), `argument 8 was "3" and is now "4"`) {
		t.Errorf("resume with another seed: %v", err)
	}
	if len(again.fit.calls) != 0 {
		t.Error("the changed step ran")
	}
}

func TestPipelineInterruptedByContext(t *testing.T) {
	cfgPath := writePipeline(t, threeSteps)
	work := t.TempDir()
	f := newFakes()
	ctx, cancel := context.WithCancel(context.Background())
	tools := f.tools()
	fit := tools["fit"]
	fit.Run = func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		cancel()
		return ctx.Err()
	}
	tools["fit"] = fit
	_, err := runPipeline(ctx, tools, cfgPath, work, false)
	if err == nil || !strings.Contains(err.Error(), "step 1 (supernet) was interrupted (context canceled); run the pipeline again to resume it") {
		t.Errorf("error %v", err)
	}
	if !fileExists(filepath.Join(work, "supernet", "started.json")) || fileExists(filepath.Join(work, "supernet", "done.json")) {
		t.Error("an interrupted step needs started.json and no done.json")
	}
}

func TestPipelineDryRun(t *testing.T) {
	cfgPath := writePipeline(t, threeSteps)
	work := t.TempDir()
	f := newFakes()
	f.pick.fail = 1
	runFake(f, cfgPath, work)
	dry := newFakes()
	out, err := dryRunFake(dry, cfgPath, work)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(dry.fit.calls) + len(dry.pick.calls); n != 0 {
		t.Errorf("a dry run ran %d steps", n)
	}
	for _, want := range []string{
		"== supernet [1/3] (" + filepath.Join(work, "supernet") + "): finished, will be skipped",
		"== search [2/3] (" + filepath.Join(work, "search") + "): interrupted, will resume",
		"   pick " + filepath.Join(filepath.Dir(cfgPath), "search.yaml") + " " + filepath.Join(work, "supernet", "checkpoint.out"),
		"== retrain [3/3] (" + filepath.Join(work, "retrain") + "): to run",
		`'--cfg-options=algorithm.mutable_cfg="$(steps.search.best_subnet)"'`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
}

func TestPipelineConfigErrors(t *testing.T) {
	step := func(name, tool, extra string) string {
		return fmt.Sprintf("  - name: %s\n    tool: %s\n    config: c.yaml\n%s", name, tool, extra)
	}
	cases := []struct {
		name, text, frag string
	}{
		{"no steps", "work_dir: x\n", "has no steps"},
		{"unknown tool", "steps:\n" + step("a", "tran", ""), `step 1 (a): unknown tool "tran"; the tools are fit, pick, score`},
		{"unknown step", "steps:\n" + step("a", "fit", "") + step("b", "pick", "    checkpoint: $(steps.supernet.checkpoint)\n"),
			`step 2 (b): checkpoint refers to step "supernet", which is not an earlier step (earlier steps: a)`},
		{"later step", "steps:\n" + step("a", "fit", "    cfg_options: {load_from: $(steps.b.checkpoint)}\n") + step("b", "fit", ""),
			`step 1 (a): cfg_options load_from refers to step "b", but no step comes before this one`},
		{"unknown output", "steps:\n" + step("a", "fit", "") + step("b", "pick", "    checkpoint: $(steps.a.best_subnet)\n"),
			`step 2 (b): checkpoint refers to output "best_subnet" of step "a", which has no such output; its outputs are checkpoint, work_dir`},
		{"bad reference", "steps:\n" + step("a", "fit", "    args: [--work, $(a.checkpoint)]\n"),
			"step 1 (a): args.1: $(a.checkpoint) is not a step reference; write $(steps.NAME.OUTPUT)"},
		{"duplicate name", "steps:\n" + step("a", "fit", "") + step("a", "fit", ""), `step 2 (a): the name "a" is already step 1 (a)'s`},
		{"bad name", "steps:\n" + step("a.b", "fit", ""), `step 1: name "a.b" must start with a letter`},
		{"missing checkpoint", "steps:\n" + step("a", "pick", ""), "step 1 (a): tool pick needs a checkpoint"},
		{"stray checkpoint", "steps:\n" + step("a", "fit", "    checkpoint: x.pth\n"), "step 1 (a): tool fit takes no checkpoint"},
		{"unknown key", "steps:\n" + step("a", "fit", "    cfg-options: {a: 1}\n"), `unknown key "cfg-options"`},
		{"key twice", "steps:\n" + step("a", "fit", "    cfg_options: {runner.max_iters: 1, runner: {max_iters: 2}}\n"),
			"step 1 (a): cfg_options sets runner.max_iters twice"},
		{"mapping in a list", "steps:\n" + step("a", "fit", "    cfg_options: {hooks: [{type: X}]}\n"),
			"step 1 (a): cfg_options hooks: a mapping cannot be written as an override value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfgPath := writePipeline(t, tc.text)
			f := newFakes()
			_, err := dryRunFake(f, cfgPath, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.frag) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.frag)
			}
		})
	}
}

// makeTool is a data maker shaped like make_mnist_det: no config, only
// args, no outputs but work_dir.
func makeTool(calls *[][]string) Tool {
	return Tool{NoConfig: true,
		Run: func(_ context.Context, args []string, _, _ io.Writer) error {
			*calls = append(*calls, args)
			return nil
		},
		Collect: func(string) (map[string]string, error) { return map[string]string{}, nil }}
}

// A tool without a config gets its args and nothing else: not the
// pipeline's shared cfg_options, which are meant for configs.
func TestPipelineStepWithoutConfig(t *testing.T) {
	f := newFakes()
	tools := f.tools()
	var made [][]string
	tools["make"] = makeTool(&made)
	cfgPath := writePipeline(t, `
cfg_options: {data.samples_per_gpu: 4}
steps:
  - name: data
    tool: make
    args: [--out, data/set, --train, 10]
  - name: supernet
    tool: fit
    config: s.yaml
`)
	work := t.TempDir()
	out, err := runPipeline(context.Background(), tools, cfgPath, work, false)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if fmt.Sprint(made) != "[[--out data/set --train 10]]" {
		t.Fatalf("the data step was called with %v", made)
	}
	if len(f.fit.calls) != 1 || !slices.Contains(f.fit.calls[0], "--cfg-options=data.samples_per_gpu=4") {
		t.Fatalf("the training step was called with %v", f.fit.calls)
	}
	if _, err := runPipeline(context.Background(), tools, cfgPath, work, false); err != nil || len(made) != 1 {
		t.Fatalf("a second run: %v, data step called %d times, want it skipped", err, len(made))
	}
	for _, c := range []struct{ text, frag string }{
		{"steps:\n  - {name: d, tool: make, config: c.yaml}\n", "step 1 (d): tool make takes no config; give its flags in args"},
		{"steps:\n  - {name: d, tool: make, cfg_options: {a: 1}}\n", "step 1 (d): tool make takes no config, so no cfg_options"},
		{"steps:\n  - {name: a, tool: fit}\n", "step 1 (a): tool fit needs a config"},
	} {
		_, err := runPipeline(context.Background(), tools, writePipeline(t, c.text), t.TempDir(), true)
		if err == nil || !strings.Contains(err.Error(), c.frag) {
			t.Errorf("error %v\nwant it to contain %q", err, c.frag)
		}
	}
}

// fileFingerprint is a Fingerprint that reads the config file as it is,
// as a tool's config loader would.
func fileFingerprint(path string, options []string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config %s: %w", path, err)
	}
	return fmt.Sprintf("%x|%s", b, strings.Join(options, ",")), nil
}

// withFingerprint gives every fake tool fileFingerprint.
func withFingerprint(f *fakes) map[string]Tool {
	tools := f.tools()
	for n, tool := range tools {
		tool.Fingerprint = fileFingerprint
		tools[n] = tool
	}
	return tools
}

// TestPipelineChecksConfigsFirst: a step's missing config stops the run
// and the dry run before the first step runs, and so does an unterminated
// $( reference.
func TestPipelineChecksConfigsFirst(t *testing.T) {
	cfgPath := writePipeline(t, threeSteps)
	dir := filepath.Dir(cfgPath)
	for _, n := range []string{"supernet.yaml", "search.yaml"} { // no subnet.yaml
		if err := os.WriteFile(filepath.Join(dir, n), []byte("a: 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := newFakes()
	for _, dry := range []bool{true, false} {
		out, err := runPipeline(context.Background(), withFingerprint(f), cfgPath, t.TempDir(), dry)
		want := "step 3 (retrain): config " + filepath.Join(dir, "subnet.yaml")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("dry run %v: error %v, want one starting %q\n%s", dry, err, want, out)
		}
	}
	if len(f.fit.calls)+len(f.pick.calls) != 0 {
		t.Errorf("steps ran before the missing config was found: %v %v", f.fit.calls, f.pick.calls)
	}

	broken := strings.Replace(threeSteps, "checkpoint: $(steps.supernet.checkpoint)", "checkpoint: $(steps.supernet.checkpoint", 1)
	for _, dry := range []bool{true, false} {
		out, err := runPipeline(context.Background(), newFakes().tools(), writePipeline(t, broken), t.TempDir(), dry)
		if err == nil || !strings.Contains(err.Error(), `step 2 (search): checkpoint: "$(steps.supernet.checkpoint" opens a reference with $( that no ) closes`) {
			t.Errorf("dry run %v: error %v\n%s", dry, err, out)
		}
	}
}

// TestPipelineNoticesAnEditedConfig: a finished step whose config file
// changed since is not skipped silently, nor is an interrupted one resumed
// on another config; restoring the file lets the pipeline go on.
func TestPipelineNoticesAnEditedConfig(t *testing.T) {
	cfgPath := writePipeline(t, threeSteps)
	dir := filepath.Dir(cfgPath)
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"supernet.yaml", "search.yaml", "subnet.yaml"} {
		write(n, "a: 1\n")
	}
	work := t.TempDir()
	f := newFakes()
	f.fit.fail = 2 // the retraining is killed
	if _, err := runPipeline(context.Background(), withFingerprint(f), cfgPath, work, false); err == nil {
		t.Fatal("the retraining should have been killed")
	}
	write("supernet.yaml", "a: 2\n")
	write("subnet.yaml", "a: 2\n")
	_, err := runPipeline(context.Background(), withFingerprint(f), cfgPath, work, false)
	want := "step 1 (supernet) finished earlier in " + filepath.Join(work, "supernet") + ", but its config " + filepath.Join(dir, "supernet.yaml") + " (or a file it inherits from) has changed since it ran"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
	write("supernet.yaml", "a: 1\n")
	_, err = runPipeline(context.Background(), withFingerprint(f), cfgPath, work, false)
	if err == nil || !strings.Contains(err.Error(), "step 3 (retrain) was interrupted in "+filepath.Join(work, "retrain")+", but its config") {
		t.Fatalf("error %v, want the interrupted retraining's config noticed", err)
	}
	write("subnet.yaml", "a: 1\n")
	if out, err := runPipeline(context.Background(), withFingerprint(f), cfgPath, work, false); err != nil || !strings.Contains(out, "resuming the interrupted run") {
		t.Fatalf("with the configs restored: %v\n%s", err, out)
	}
}
