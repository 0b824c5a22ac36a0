package runners

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/runners/logplot"
	"github.com/razorgo/razor/runners/optim"
)

// twoPath is a toy supernet: two linear "ops", one drawn per iteration from
// the iteration's rng, trained to regress a fixed linear map on synthetic
// batches that depend only on the batch's position in the data.
type twoPath struct {
	nn.Base
	ops    [2]*nn.Linear
	pos    int // batches consumed
	perEp  int
	nanAt  int // iteration whose loss is NaN (-1 for none)
	losses map[int]float64
}

func newTwoPath(t *testing.T) *twoPath {
	m := &twoPath{perEp: 4, nanAt: -1, losses: map[int]float64{}}
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range m.ops {
		l, err := nn.NewLinear(3, 2, true)
		if err != nil {
			t.Fatal(err)
		}
		nn.InitNormal(l.Weight, 0, 0.5, rng)
		m.ops[i] = l
		m.AddChild([]string{"a", "b"}[i], l)
	}
	return m
}

func (m *twoPath) Module() nn.Module         { return m }
func (m *twoPath) DataTime() time.Duration   { return time.Millisecond }
func (m *twoPath) Epoch() int                { return m.pos / m.perEp }
func (m *twoPath) BatchesPerEpoch() int      { return m.perEp }
func (m *twoPath) Seek(done, _, _ int) error { m.pos = done; return nil }

func (m *twoPath) TrainStep(_ context.Context, iter int, rng *rand.Rand) (StepResult, error) {
	data := rand.New(rand.NewPCG(uint64(m.pos), 99))
	m.pos++
	x := make([]float32, 8*3)
	y := make([]float32, 8*2)
	for i := range x {
		x[i] = float32(data.NormFloat64())
	}
	for i := 0; i < 8; i++ {
		y[2*i] = x[3*i] - 2*x[3*i+1]
		y[2*i+1] = 0.5*x[3*i+2] + 1
	}
	op := m.ops[rng.IntN(2)]
	b := nn.NewBinding()
	xn := b.Input("x", tensor.New(tensor.WithShape(8, 3), tensor.WithBacking(x)))
	yn := b.Input("y", tensor.New(tensor.WithShape(8, 2), tensor.WithBacking(y)))
	pred, err := op.Forward(b, xn)
	if err != nil {
		return StepResult{}, err
	}
	loss, err := ops.L1Loss(pred, yn, nil)
	if err != nil {
		return StepResult{}, err
	}
	if err := b.Backward(loss); err != nil {
		return StepResult{}, err
	}
	if err := b.Run(); err != nil {
		return StepResult{}, err
	}
	v := float64(float32(*loss.Value().(*gorgonia.F32)))
	if iter == m.nanAt {
		v = math.NaN()
	}
	m.losses[iter] = v
	return StepResult{Values: []NamedValue{{Name: "loss", Value: v}}, NumSamples: 8}, nil
}

// stopAt simulates a kill: it fails the run after a given iteration.
type stopAt struct{ iter int }

var errKilled = errors.New("killed")

func (s *stopAt) Priority() int { return PriorityVeryLow + 1 }
func (s *stopAt) AfterTrainIter(r *Runner) error {
	if r.Iter+1 == s.iter {
		return errKilled
	}
	return nil
}

func newRunner(t *testing.T, task *twoPath, dir string, maxIters int) *Runner {
	t.Helper()
	opt, err := optim.NewSGD(task.NamedParameters(), optim.SGDConfig{LR: 0.1, Momentum: 0.9, WeightDecay: 1e-4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	log, err := NewLogger(dir, time.Unix(int64(len(dir)), 0), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	sched, err := NewLrSchedule(LrConfig{Policy: "poly", Power: 1, ByEpoch: false})
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Task: task, Optimizer: opt, WorkDir: dir, Seed: 42, MaxIters: maxIters, Log: log}
	r.Register(&LoggerHook{Interval: 3})
	r.Register(&CheckpointHook{Interval: 5, ByEpoch: false, SaveLast: true, SaveOptimizer: true, MaxKeepCkpts: 2})
	r.Register(&OptimizerHook{ZeroToNone: true})
	r.Register(&LrUpdaterHook{Schedule: sched})
	return r
}

func TestHookOrder(t *testing.T) {
	r := newRunner(t, newTwoPath(t), t.TempDir(), 1)
	var got []int
	for _, h := range r.Hooks() {
		got = append(got, h.Priority())
	}
	want := []int{PriorityVeryHigh, PriorityAboveNormal, PriorityNormal, PriorityVeryLow}
	if len(got) != len(want) {
		t.Fatalf("priorities %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("hooks run in priority order %v, want %v", got, want)
		}
	}
}

// TestKillAndResumeMatchesUninterrupted is the resume contract: a run
// killed after iteration 8, resumed from its last checkpoint (iteration 5),
// produces exactly the losses of an uninterrupted run from there on.
func TestKillAndResumeMatchesUninterrupted(t *testing.T) {
	const total = 20
	full := newTwoPath(t)
	if err := newRunner(t, full, t.TempDir(), total).Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	first := newTwoPath(t)
	r := newRunner(t, first, dir, total)
	r.Register(&stopAt{8})
	if err := r.Run(context.Background()); !errors.Is(err, errKilled) {
		t.Fatalf("expected the simulated kill, got %v", err)
	}
	latest := FindLatest(dir)
	if !strings.HasSuffix(latest, "iter_5.json") {
		t.Fatalf("latest checkpoint %q, want iter_5", latest)
	}
	if link, err := os.Readlink(filepath.Join(dir, "latest.json")); err != nil || link != "iter_5.json" {
		t.Fatalf("latest.json -> %q (%v)", link, err)
	}

	second := newTwoPath(t) // fresh weights: everything must come from the checkpoint
	r2 := newRunner(t, second, dir, total)
	if err := r2.Resume(latest); err != nil {
		t.Fatal(err)
	}
	if r2.Iter != 5 {
		t.Fatalf("resumed at iteration %d, want 5", r2.Iter)
	}
	if err := r2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for it := 5; it < total; it++ {
		if second.losses[it] != full.losses[it] {
			t.Fatalf("iteration %d: resumed loss %v, uninterrupted %v", it+1, second.losses[it], full.losses[it])
		}
	}
	for it := 0; it < 5; it++ {
		if _, ran := second.losses[it]; ran {
			t.Fatalf("iteration %d ran again after resume", it+1)
		}
	}
	if full.losses[total-1] >= full.losses[0] {
		t.Fatalf("training did not reduce the loss: %v -> %v", full.losses[0], full.losses[total-1])
	}
	// max_keep_ckpts 2: iter_15 and iter_20 remain.
	entries, _ := filepath.Glob(filepath.Join(dir, "iter_*.json"))
	if len(entries) != 2 {
		t.Fatalf("kept checkpoints %v, want 2", entries)
	}
}

func TestNonFiniteLossStops(t *testing.T) {
	dir := t.TempDir()
	task := newTwoPath(t)
	task.nanAt = 6
	r := newRunner(t, task, dir, 20)
	err := r.Run(context.Background())
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "iteration 7: loss term loss is NaN") {
		t.Fatalf("error %v", err)
	}
	if latest := FindLatest(dir); !strings.HasSuffix(latest, "iter_5.json") {
		t.Fatalf("last good checkpoint %q, want iter_5", latest)
	}
}

func TestLogFiles(t *testing.T) {
	dir := t.TempDir()
	task := newTwoPath(t)
	r := newRunner(t, task, dir, 7)
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Log.Close()
	f, err := os.Open(r.Log.JSONPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var iters []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"mode", "epoch", "iter", "lr", "memory", "data_time", "loss", "time"} {
			if _, ok := rec[k]; !ok {
				t.Fatalf("record %v lacks %q", rec, k)
			}
		}
		iters = append(iters, rec["iter"].(float64))
	}
	// Interval 3 over 7 iterations: lines at 3 and 6, and the rest at the end.
	if len(iters) != 3 || iters[0] != 3 || iters[1] != 6 || iters[2] != 7 {
		t.Fatalf("logged iterations %v", iters)
	}
	text, _ := os.ReadFile(r.Log.TextPath)
	if !strings.Contains(string(text), "Iter [3/7]\tlr: 7.143e-02, eta: ") {
		t.Fatalf("text log:\n%s", text)
	}
}

func TestFormatETA(t *testing.T) {
	cases := map[float64]string{0: "0:00:00", 59.9: "0:00:59", 3725: "1:02:05", 86400 + 7384: "1 day, 2:03:04", 3 * 86400: "3 days, 0:00:00"}
	for in, want := range cases {
		if got := formatETA(in); got != want {
			t.Errorf("formatETA(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestEpochBasedResume: an epoch-based run checkpoints every epoch; killed
// inside epoch 3 and resumed from epoch_2, it repeats exactly the losses of
// an uninterrupted run, and logs per-epoch iteration numbers.
func TestEpochBasedResume(t *testing.T) {
	epochRunner := func(task *twoPath, dir string) *Runner {
		r := newRunner(t, task, dir, 0)
		r.ByEpoch, r.MaxEpochs = true, 4
		r.hooks = nil
		r.Register(&LoggerHook{Interval: 2})
		r.Register(&CheckpointHook{Interval: 1, ByEpoch: true, SaveLast: true, SaveOptimizer: true})
		r.Register(&OptimizerHook{ZeroToNone: true})
		return r
	}
	full := newTwoPath(t)
	if err := epochRunner(full, t.TempDir()).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(full.losses) != 16 {
		t.Fatalf("%d iterations, want 4 epochs x 4", len(full.losses))
	}
	dir := t.TempDir()
	first := newTwoPath(t)
	r := epochRunner(first, dir)
	r.Register(&stopAt{10})
	if err := r.Run(context.Background()); !errors.Is(err, errKilled) {
		t.Fatalf("expected the simulated kill, got %v", err)
	}
	latest := FindLatest(dir)
	if !strings.HasSuffix(latest, "epoch_2.json") {
		t.Fatalf("latest %q, want epoch_2", latest)
	}
	second := newTwoPath(t)
	r2 := epochRunner(second, dir)
	if err := r2.Resume(latest); err != nil {
		t.Fatal(err)
	}
	if r2.Epoch != 2 || r2.Iter != 8 || r2.InnerIter != 0 {
		t.Fatalf("resumed at epoch %d iter %d inner %d", r2.Epoch, r2.Iter, r2.InnerIter)
	}
	if err := r2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for it := 8; it < 16; it++ {
		if second.losses[it] != full.losses[it] {
			t.Fatalf("iteration %d: %v resumed, %v uninterrupted", it+1, second.losses[it], full.losses[it])
		}
	}
	r2.Log.Close()
	text, _ := os.ReadFile(r2.Log.TextPath)
	if !strings.Contains(string(text), "Epoch [4][4/4]") {
		t.Fatalf("text log lacks the epoch form:\n%s", text)
	}
}

// killAfterCheckpoint ends a run after iteration iter's checkpoint is
// saved and before the logger writes (LOW: between NORMAL and VERY_LOW).
type killAfterCheckpoint struct{ iter int }

func (k *killAfterCheckpoint) Priority() int { return PriorityLow }
func (k *killAfterCheckpoint) AfterTrainIter(r *Runner) error {
	if r.Iter+1 == k.iter {
		return errKilled
	}
	return nil
}

// TestResumedLogMatchesUninterrupted: the logged lines of a killed and
// resumed run are those of an uninterrupted run: killed after iteration 8
// (resumed from iter_5, in the middle of a 3-iteration log interval, so
// the line at 6 averages iterations 4 to 6 only with the checkpoint's
// unlogged values), and killed between iteration 15's checkpoint and its
// log line (which the resumed run writes).
func TestResumedLogMatchesUninterrupted(t *testing.T) {
	const total = 20
	lines := func(dir string) []string {
		t.Helper()
		l, err := logplot.ReadRun(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range l.Entries {
			out = append(out, fmt.Sprintf("%s %d %d loss %.6g lr %.6g", e.Mode, e.Epoch, e.Iter, e.Values["loss"], e.Values["lr"]))
		}
		return out
	}
	fullDir := t.TempDir()
	if err := newRunner(t, newTwoPath(t), fullDir, total).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := lines(fullDir)
	for _, kill := range []Hook{&stopAt{8}, &killAfterCheckpoint{15}} {
		dir := t.TempDir()
		r := newRunner(t, newTwoPath(t), dir, total)
		r.Register(kill)
		if err := r.Run(context.Background()); !errors.Is(err, errKilled) {
			t.Fatalf("expected the simulated kill, got %v", err)
		}
		r.Log.Close()
		r2 := newRunner(t, newTwoPath(t), dir, total)
		// A later start time: the resumed run's log is a file of its own.
		log, err := NewLogger(dir, time.Unix(int64(len(dir))+1, 0), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		r2.Log = log
		if err := r2.Resume(FindLatest(dir)); err != nil {
			t.Fatal(err)
		}
		if err := r2.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		log.Close()
		if got := lines(dir); !slices.Equal(got, want) {
			t.Errorf("killed by %T: logged\n%s\nuninterrupted:\n%s", kill, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
