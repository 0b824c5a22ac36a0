package checkpoint

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/runners/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// supernet is a two-block one-shot model: a stem, two blocks that each hold
// two candidate ops under "choices", global pooling and a linear head.
type supernet struct {
	nn.Base
	stem   *nn.ConvModule
	blocks []*nn.ModuleDict
	head   *nn.Linear
}

func newSupernet(t *testing.T, seed uint64) *supernet {
	t.Helper()
	must := func(m *nn.ConvModule, err error) *nn.ConvModule {
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	s := &supernet{stem: must(nn.NewConvModule(nn.ConvModuleConfig{In: 2, Out: 4, Kernel: 3, Padding: 1, Norm: true, ReLU: true}))}
	s.AddChild("stem", s.stem)
	layers := &holder{}
	s.AddChild("layers", layers)
	for i := range 2 {
		block := &holder{}
		choices := nn.NewModuleDict()
		for _, c := range []struct {
			name string
			k    int
		}{{"k3", 3}, {"k1", 1}} {
			if err := choices.Add(c.name, must(nn.NewConvModule(nn.ConvModuleConfig{In: 4, Out: 4, Kernel: c.k, Padding: c.k / 2, Norm: true, ReLU: true}))); err != nil {
				t.Fatal(err)
			}
		}
		block.AddChild("choices", choices)
		layers.AddChild(string(rune('0'+i)), block)
		s.blocks = append(s.blocks, choices)
	}
	head, err := nn.NewLinear(4, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	s.head = head
	s.AddChild("head", head)
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, p := range s.NamedParameters() {
		if p.Kind() == nn.KindWeight {
			nn.InitNormal(p, 0, 0.5, rng)
		}
	}
	return s
}

// step trains the path picks for one iteration on a fixed batch.
func (s *supernet) step(t *testing.T, opt *optim.SGD, picks []string) {
	t.Helper()
	x := make([]float32, 4*2*5*5)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	opt.ZeroGrad(true)
	b := nn.NewBinding()
	y, err := s.stem.Forward(b, b.Input("x", tensor.New(tensor.WithShape(4, 2, 5, 5), tensor.WithBacking(x))))
	if err != nil {
		t.Fatal(err)
	}
	for i, pick := range picks {
		if y, err = s.blocks[i].Get(pick).(nn.Layer).Forward(b, y); err != nil {
			t.Fatal(err)
		}
	}
	y = gorgonia.Must(ops.GlobalAvgPool2d(y))
	logits, err := s.head.Forward(b, y)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := ops.CrossEntropy(logits, []int{0, 1, 2, 1}, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Backward(loss); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	opt.Step()
}

func sample(rng *rand.Rand) []string {
	names := []string{"k3", "k1"}
	return []string{names[rng.IntN(2)], names[rng.IntN(2)]}
}

func newOptimizer(t *testing.T, s *supernet) *optim.SGD {
	t.Helper()
	zero := 0.0
	o, err := optim.NewSGD(s.NamedParameters(), optim.SGDConfig{LR: 0.1, Momentum: 0.9, WeightDecay: 1e-3},
		&optim.Paramwise{NormDecayMult: &zero, BiasDecayMult: &zero})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestSupernetStepTouchesOnlyThePath checks a one-shot training step: only
// the sampled ops' parameters move and get momentum; the others, and their
// BN statistics, stay exactly as they were.
func TestSupernetStepTouchesOnlyThePath(t *testing.T) {
	s := newSupernet(t, 1)
	opt := newOptimizer(t, s)
	before := map[string][]float32{}
	for k, v := range s.StateDict() {
		if v.Dtype() == tensor.Float32 {
			before[k] = append([]float32(nil), v.Float32s()...)
		}
	}
	s.step(t, opt, []string{"k3", "k1"})
	moms, _, err := opt.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range s.StateDict() {
		if v.Dtype() != tensor.Float32 {
			continue
		}
		unused := strings.HasPrefix(k, "layers.0.choices.k1.") || strings.HasPrefix(k, "layers.1.choices.k3.")
		changed := false
		for i, x := range v.Float32s() {
			changed = changed || x != before[k][i]
		}
		_, hasMomentum := moms["momentum_buffer/"+k]
		isParam := !strings.Contains(k, "running_")
		switch {
		case unused && (changed || hasMomentum):
			t.Errorf("%s is off the sampled path but changed (%v) or got momentum (%v)", k, changed, hasMomentum)
		case !unused && isParam && (!changed || !hasMomentum):
			t.Errorf("%s is on the path but changed %v, momentum %v", k, changed, hasMomentum)
		}
	}
	if n := s.StateDict()["layers.0.choices.k1.bn.num_batches_tracked"].Int64s()[0]; n != 0 {
		t.Errorf("an unsampled BN counted %d batches", n)
	}
}

// TestResumeEqualsUninterrupted trains a supernet six steps straight, and
// three steps, a save, a restore into fresh objects and three more steps;
// the weights, BN statistics and momentum buffers must agree bit for bit.
func TestResumeEqualsUninterrupted(t *testing.T) {
	straight := newSupernet(t, 5)
	optA := newOptimizer(t, straight)
	rngA := rand.New(rand.NewPCG(11, 12))
	for range 6 {
		straight.step(t, optA, sample(rngA))
	}

	first := newSupernet(t, 5)
	optB := newOptimizer(t, first)
	pcg := rand.NewPCG(11, 12)
	rngB := rand.New(pcg)
	for range 3 {
		first.step(t, optB, sample(rngB))
	}
	rngState, err := pcg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path, err := SaveTraining(dir, "iter_3", first, optB, Meta{Iteration: 3, RNG: map[string][]byte{"sampler": rngState}})
	if err != nil {
		t.Fatal(err)
	}

	resumed := newSupernet(t, 99)
	optC := newOptimizer(t, resumed)
	meta, err := Resume(path, resumed, optC)
	if err != nil {
		t.Fatal(err)
	}
	pcgC := rand.NewPCG(0, 0)
	if err := pcgC.UnmarshalBinary(meta.RNG["sampler"]); err != nil {
		t.Fatal(err)
	}
	rngC := rand.New(pcgC)
	for range 3 {
		resumed.step(t, optC, sample(rngC))
	}

	want, got := straight.StateDict(), resumed.StateDict()
	for k, w := range want {
		if !sameTensor(w, got[k]) {
			t.Errorf("%s differs after resuming", k)
		}
	}
	ma, sa, _ := optA.StateDict()
	mc, sc, _ := optC.StateDict()
	if len(ma) != len(mc) || string(sa) != string(sc) {
		t.Errorf("optimizer state: %d vs %d buffers, %s vs %s", len(ma), len(mc), sa, sc)
	}
	for k, v := range ma {
		if mc[k] == nil || !sameTensor(v, mc[k]) {
			t.Errorf("momentum %s differs after resuming", k)
		}
	}
	if meta.Iteration != 3 {
		t.Errorf("resumed at iteration %d", meta.Iteration)
	}

	// A checkpoint without optimizer state cannot resume an optimizer.
	bare, err := SaveTraining(dir, "bare", first, nil, Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Resume(bare, resumed, optC); err == nil || !strings.Contains(err.Error(), "no optimizer state") {
		t.Errorf("resume without optimizer state: %v", err)
	}
	if _, err := Resume(bare, newSupernet(t, 1), nil); err != nil {
		t.Errorf("model-only resume: %v", err)
	}
}
