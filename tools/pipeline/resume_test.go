package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/razorgo/razor/models/ops/blas"
	"github.com/razorgo/razor/runners/logplot"
	"github.com/razorgo/razor/runners/pipeline"
	"github.com/razorgo/razor/tools/cli"
)

const detnasPipeline = "../../configs/nas/detnas/detnas_pipeline_mnist.yaml"

// childArgs is the environment variable that makes the test binary run
// the pipeline command with the JSON argument list it holds, so a test can
// kill a real pipeline process.
const childArgs = "RAZOR_TEST_PIPELINE_ARGS"

func TestMain(m *testing.M) {
	if js := os.Getenv(childArgs); js != "" {
		var args []string
		if err := json.Unmarshal([]byte(js), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := cli.Pipeline(context.Background(), args, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "pipeline:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// detnasToyArgs shrink the shipped DetNAS pipeline to seconds, every step
// kept: a 12-image detection set at 64x64 (6 validation and 6 held-out
// search images), 64 training and 40 test digits, 4 iterations per
// classifier, 2 epochs per detector, and a 2-epoch search over 3
// candidates with 2 random subnets beside it.
func detnasToyArgs(work, det, digits string) []string {
	args := []string{detnasPipeline, "--work-dir", work, "--cfg-options",
		fmt.Sprintf("steps.0.args=[--out,%s,--train,12,--val,6,--search,6,--size,64]", det)}
	step := func(i int, kvs ...string) {
		for _, kv := range kvs {
			args = append(args, fmt.Sprintf("steps.%d.cfg_options.%s", i, kv))
		}
	}
	for _, i := range []int{1, 4} { // the classifiers
		step(i, "data.train.data_prefix="+digits, "data.val.data_prefix="+digits, "data.test.data_prefix="+digits, "data.samples_per_gpu=8",
			"runner.max_iters=4", "evaluation.interval=4", "evaluation.recalibrate_batches=2", "checkpoint_config.interval=2", "log_config.interval=1")
	}
	step(1, "evaluation.num_subnets=2")
	for _, i := range []int{2, 3, 5, 6, 7} { // the detection steps
		step(i, "data_root="+det+"/", "img_scale=[64,64]")
	}
	for _, i := range []int{2, 5} { // the detectors
		step(i, "runner.max_epochs=2", "lr_config.step=[1]", "lr_config.warmup_iters=2", "evaluation.interval=2", "evaluation.recalibrate_batches=2",
			"checkpoint_config.interval=1", "log_config.interval=1")
	}
	step(2, "evaluation.num_subnets=2")
	step(3, "searcher.candidate_pool_size=3", "searcher.candidate_top_k=2", "searcher.max_epoch=2", "searcher.num_mutation=1",
		"searcher.num_crossover=1", "searcher.recalibrate_batches=2", "searcher.random_baseline=2")
	return append(args, fmt.Sprintf("steps.7.args=[%s/val/000001.png]", det))
}

// runChild starts the pipeline command in a process of its own, its
// output to log.
func runChild(t *testing.T, args []string, log io.Writer) *exec.Cmd {
	t.Helper()
	js, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childArgs+"="+string(js))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// timeCells are the steps table's time cells, which differ between runs.
var timeCells = regexp.MustCompile(`\| \d+:\d\d \|`)

// pipelineOutcome is what a finished pipeline must give whatever its
// interruptions: results.json without the step times, results.md without
// the time column, each training step's logged numbers at every iteration
// (times and memory left out), and the search's report.
type pipelineOutcome struct {
	results  pipeline.Results
	md       string
	trainLog map[string][]logplot.Entry
	report   string
	// seconds is how long each step took (not compared).
	seconds []float64
}

func readOutcome(t *testing.T, work string) pipelineOutcome {
	t.Helper()
	var o pipelineOutcome
	js, err := os.ReadFile(filepath.Join(work, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &o.results); err != nil {
		t.Fatal(err)
	}
	for i := range o.results.Steps {
		o.seconds = append(o.seconds, o.results.Steps[i].Seconds)
		o.results.Steps[i].Seconds = 0
	}
	md, err := os.ReadFile(filepath.Join(work, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	o.md = timeCells.ReplaceAllString(string(md), "| - |")
	o.trainLog = map[string][]logplot.Entry{}
	for _, s := range []string{"supernet_cls", "supernet_det", "subnet_cls", "subnet_det"} {
		l, err := logplot.ReadRun(filepath.Join(work, s))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l.Entries {
			for _, k := range []string{"time", "data_time", "memory", "eta"} {
				delete(e.Values, k)
			}
		}
		o.trainLog[s] = l.Entries
	}
	rep, err := os.ReadFile(filepath.Join(work, "search", "search_report.json"))
	if err != nil {
		t.Fatal(err)
	}
	// How long each candidate took differs from run to run.
	var tree any
	if err := json.Unmarshal(rep, &tree); err != nil {
		t.Fatal(err)
	}
	dropKey(tree, "seconds")
	out, err := json.MarshalIndent(tree, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	o.report = string(out)
	return o
}

// TestDetNASPipelineKilledAnywhere runs the shipped DetNAS pipeline at toy
// scale once without a break, then again in a fresh work dir killed with
// SIGKILL at random moments and started again each time, as a user would:
// the interrupted run must end with the same results, the same logged
// losses at every iteration of every training step and the same search.
func TestDetNASPipelineKilledAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the DetNAS pipeline about three times over")
	}
	if blas.Default().Name() == "openblas" {
		// One pass is enough: CI runs this test in the default build, the
		// one the README's main command uses.
		t.Skip("runs in the default build")
	}
	digits := tinyMNIST(t, 64, 40)
	root := t.TempDir()

	var log bytes.Buffer
	refWork := filepath.Join(root, "ref")
	start := time.Now()
	if err := runChild(t, detnasToyArgs(refWork, filepath.Join(root, "ref_det"), digits), &log).Wait(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, log.String())
	}
	whole := time.Since(start)
	ref := readOutcome(t, refWork)
	if len(ref.results.Steps) != 8 || len(ref.results.Tested) != 1 || len(ref.results.Searched) != 1 {
		t.Fatalf("the uninterrupted run's results: %+v", ref.results)
	}

	work := filepath.Join(root, "killed")
	args := detnasToyArgs(work, filepath.Join(root, "killed_det"), digits)
	// Each kill lands at a random moment inside a step, drawn from the
	// uninterrupted run's time for that step, after the step's command
	// line appears: three different steps, in order, so every kill lands
	// and the run moves on between them however fast or loaded the
	// machine is (a kill timed from the run's start missed on a CI
	// machine that sped up once the other packages' tests were done).
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var long []int // steps the kills may fall in; never the last, so work is left
	for i, sec := range ref.seconds[:len(ref.seconds)-1] {
		if sec >= 0.3 {
			long = append(long, i)
		}
	}
	if len(long) < 3 {
		t.Fatalf("fewer than 3 steps of the uninterrupted run took 0.3s or more: %v", ref.seconds)
	}
	rng.Shuffle(len(long), func(i, j int) { long[i], long[j] = long[j], long[i] })
	plan := long[:3]
	slices.Sort(plan)
	var kills []string
	for _, step := range plan {
		out := &stepWatch{step: fmt.Sprintf("[%d/%d]: ", step+1, len(ref.seconds)), started: make(chan struct{})}
		cmd := runChild(t, args, out)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		after := time.Duration(ref.seconds[step] * (0.1 + 0.6*rng.Float64()) * float64(time.Second))
		select {
		case err := <-done:
			t.Fatalf("run ended before step %d started (%v)\n%s", step+1, err, out.String())
		case <-out.started:
		}
		select {
		case err := <-done:
			// The step and all after it took less than the kill's delay.
			if err != nil {
				t.Fatalf("run ended before its kill: %v\n%s", err, out.String())
			}
			kills = append(kills, fmt.Sprintf("none: the run finished %.1fs into step %d", after.Seconds(), step+1))
			continue
		case <-time.After(after):
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-done
		kills = append(kills, fmt.Sprintf("%.1fs into step %d: %s", after.Seconds(), step+1, lastStepLine(out.String())))
	}
	log.Reset()
	if err := runChild(t, args, &log).Wait(); err != nil {
		t.Fatalf("run after the kills (%s): %v\n%s", strings.Join(kills, "; "), err, log.String())
	}
	t.Logf("uninterrupted run %.1fs; kills: %s", whole.Seconds(), strings.Join(kills, "; "))
	if landed := len(kills) - strings.Count(strings.Join(kills, "\n"), "none:"); landed < 2 {
		t.Errorf("only %d of the kills landed before the run finished", landed)
	}

	got := readOutcome(t, work)
	// The two runs' paths differ only in the work dir's and data's names.
	got.md = strings.ReplaceAll(got.md, "killed", "ref")
	if got.md != ref.md {
		t.Errorf("results.md after the kills differs from the uninterrupted run's: %s", firstDiff(got.md, ref.md))
	}
	for s, entries := range ref.trainLog {
		if !reflect.DeepEqual(got.trainLog[s], entries) {
			t.Errorf("step %s logged other numbers after the kills:\n%v\nuninterrupted:\n%v", s, got.trainLog[s], entries)
		}
	}
	if r := strings.ReplaceAll(got.report, "killed", "ref"); r != ref.report {
		t.Errorf("the search report after the kills differs from the uninterrupted run's: %s", firstDiff(r, ref.report))
	}
	gotJS, _ := json.MarshalIndent(got.results, "", " ")
	refJS, _ := json.MarshalIndent(ref.results, "", " ")
	if r := strings.ReplaceAll(string(gotJS), "killed", "ref"); r != string(refJS) {
		t.Errorf("results.json after the kills differs from the uninterrupted run's: %s", firstDiff(r, string(refJS)))
	}
}

// dropKey removes key from every object of a decoded JSON tree.
func dropKey(v any, key string) {
	switch t := v.(type) {
	case map[string]any:
		delete(t, key)
		for _, e := range t {
			dropKey(e, key)
		}
	case []any:
		for _, e := range t {
			dropKey(e, key)
		}
	}
}

// firstDiff shows the first line where two texts differ, with the line
// before it.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			prev := ""
			if i > 0 && i-1 < len(w) {
				prev = w[i-1]
			}
			return fmt.Sprintf("line %d, after %q: got %q, want %q", i+1, prev, gl, wl)
		}
	}
	return "no line differs"
}

// stepWatch collects a pipeline's output and closes started when the line
// that starts the watched step's command appears (not the line of a step
// skipped as finished, nor the resume notice before the command).
type stepWatch struct {
	step    string // "[i/n]: "
	started chan struct{}

	mu   sync.Mutex
	buf  bytes.Buffer
	line []byte
	seen bool
}

func (w *stepWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for _, c := range p {
		if c != '\n' {
			w.line = append(w.line, c)
			continue
		}
		l := string(w.line)
		w.line = w.line[:0]
		if i := strings.Index(l, w.step); !w.seen && strings.HasPrefix(l, "== ") && i >= 0 {
			rest := l[i+len(w.step):]
			if !strings.HasPrefix(rest, "finished") && !strings.HasPrefix(rest, "resuming") {
				w.seen = true
				close(w.started)
			}
		}
	}
	return len(p), nil
}

func (w *stepWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// lastStepLine is the last "== step" line of a pipeline's output: where a
// kill landed.
func lastStepLine(out string) string {
	last := "before the first step"
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "== ") {
			last = strings.TrimPrefix(l, "== ")
			if i := strings.Index(last, "]"); i >= 0 {
				last = last[:i+1]
			}
		}
	}
	return last
}
