package mutables

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// scaleOpOptions configure scaleOp, a candidate op for these tests.
type scaleOpOptions struct {
	Factor      float64 `cfg:"factor,required"`
	InChannels  int     `cfg:"in_channels,required"`
	OutChannels int     `cfg:"out_channels,required"`
}

// scaleOp multiplies its input by factor through a 1x1 convolution, so it
// has weights and a visible effect.
type scaleOp struct {
	nn.Base
	conv *nn.Conv2d
}

func newScaleOp(o scaleOpOptions) (models.Op, error) {
	conv, err := nn.NewConv2d(nn.Conv2dConfig{In: o.InChannels, Out: o.OutChannels, Kernel: 1})
	if err != nil {
		return nil, err
	}
	w := conv.Weight.Data()
	for i := 0; i < o.OutChannels; i++ {
		w[i*o.InChannels+i] = float32(o.Factor)
	}
	op := &scaleOp{conv: conv}
	op.AddChild("conv", conv)
	return op, nil
}

func (s *scaleOp) Forward(b *nn.Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	return s.conv.Forward(b, x)
}

func init() {
	registry.MustRegister(models.Ops, "TestScaleOp", newScaleOp)
}

// placeholderNet is a model with two searchable blocks under "layers".
func placeholderNet(group string) *nn.Sequential {
	args := map[string]any{"in_channels": 2, "out_channels": 2}
	net := nn.NewSequential()
	layers := nn.NewSequential(nn.NewPlaceholder(group, "b0", args), nn.NewPlaceholder(group, "b1", args))
	net.Append(layers)
	return net
}

func scaleMapping(extra map[string]any) map[string]map[string]any {
	choice := func(f float64) map[string]any {
		m := map[string]any{"type": "TestScaleOp", "factor": f}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	return map[string]map[string]any{"g": {
		"type":    "OneShotOP",
		"choices": map[string]any{"triple": choice(3), "double": choice(2)},
	}}
}

func prepared(t *testing.T) (*OneShotMutator, *nn.Sequential, *Space) {
	t.Helper()
	m, err := NewOneShotMutator(OneShotMutatorOptions{PlaceholderMapping: scaleMapping(nil)})
	if err != nil {
		t.Fatal(err)
	}
	net := placeholderNet("g")
	sp, err := m.Prepare(net)
	if err != nil {
		t.Fatal(err)
	}
	return m, net, sp
}

// run feeds ones through net and returns the first output value.
func run(t *testing.T, net *nn.Sequential) float32 {
	t.Helper()
	b := nn.NewBinding()
	x := tensor.New(tensor.WithShape(1, 2, 1, 1), tensor.WithBacking([]float32{1, 1}))
	y, err := net.Forward(b, b.Input("x", x))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
	return y.Value().(*tensor.Dense).Float32s()[0]
}

func stateKeys(m nn.Module) []string {
	var keys []string
	for k := range m.StateDict() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestPrepareBuildsSpaceAndNames(t *testing.T) {
	_, net, sp := prepared(t)
	want := []Block{
		{ID: "b0", Path: "0.0", Choices: []string{"double", "triple"}},
		{ID: "b1", Path: "0.1", Choices: []string{"double", "triple"}},
	}
	if len(sp.Blocks) != len(want) {
		t.Fatalf("blocks %+v", sp.Blocks)
	}
	for i, b := range sp.Blocks {
		if b.ID != want[i].ID || b.Path != want[i].Path || !slices.Equal(b.Choices, want[i].Choices) {
			t.Errorf("block %d = %+v, want %+v", i, b, want[i])
		}
	}
	wantKeys := []string{"0.0.choices.double.conv.weight", "0.0.choices.triple.conv.weight", "0.1.choices.double.conv.weight", "0.1.choices.triple.conv.weight"}
	if got := stateKeys(net); !slices.Equal(got, wantKeys) {
		t.Fatalf("keys %v, want %v", got, wantKeys)
	}
}

// TestSelectionDecidesForward checks that a fresh supernet sums every op
// of a block, that a subnet runs exactly its ops, and that nil restores
// the sums.
func TestSelectionDecidesForward(t *testing.T) {
	m, net, _ := prepared(t)
	if got := run(t, net); got != 25 {
		t.Fatalf("whole supernet: %g, want (2+3)*(2+3) = 25", got)
	}
	if err := m.SetSubnet(Subnet{"b0": "double", "b1": "triple"}); err != nil {
		t.Fatal(err)
	}
	if got := run(t, net); got != 6 {
		t.Fatalf("subnet: %g, want 2*3 = 6", got)
	}
	if got := m.Subnet(); got["b0"] != "double" || got["b1"] != "triple" {
		t.Fatalf("Subnet() = %v", got)
	}
	if err := m.SetSubnet(nil); err != nil {
		t.Fatal(err)
	}
	if got := run(t, net); got != 25 || m.Subnet() != nil {
		t.Fatalf("after SetSubnet(nil): %g, subnet %v", got, m.Subnet())
	}
}

func TestFixDropsUnchosenOps(t *testing.T) {
	m, net, _ := prepared(t)
	sub := Subnet{"b0": "triple", "b1": "double"}
	if err := m.Fix(sub); err != nil {
		t.Fatal(err)
	}
	want := []string{"0.0.choices.triple.conv.weight", "0.1.choices.double.conv.weight"}
	if got := stateKeys(net); !slices.Equal(got, want) {
		t.Fatalf("keys after Fix %v, want %v", got, want)
	}
	if got := run(t, net); got != 6 {
		t.Fatalf("fixed subnet: %g, want 6", got)
	}
	if err := m.SetSubnet(sub.Clone()); err != nil {
		t.Fatalf("setting the fixed subnet again: %v", err)
	}
	for _, other := range []Subnet{{"b0": "double", "b1": "double"}, nil} {
		if err := m.SetSubnet(other); err == nil || !strings.Contains(err.Error(), "fixed to one subnet") {
			t.Errorf("SetSubnet(%v) on a fixed model: %v", other, err)
		}
	}
}

func TestSampleSubnetIsSeeded(t *testing.T) {
	m, _, sp := prepared(t)
	draw := func(seed uint64) []string {
		rng := rand.New(rand.NewPCG(seed, 0))
		var keys []string
		for range 20 {
			sub, err := m.SampleSubnet(rng)
			if err != nil {
				t.Fatal(err)
			}
			if sp.Key(m.Subnet()) != sp.Key(sub) {
				t.Fatal("the drawn subnet is not the selected one")
			}
			keys = append(keys, sp.Key(sub))
		}
		return keys
	}
	a, b, c := draw(1), draw(1), draw(2)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed drew different subnets")
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds drew the same 20 subnets")
	}
}

func TestChoiceArgsOverrideChoiceConfig(t *testing.T) {
	m, err := NewOneShotMutator(OneShotMutatorOptions{PlaceholderMapping: scaleMapping(map[string]any{"in_channels": 7})})
	if err != nil {
		t.Fatal(err)
	}
	net := placeholderNet("g")
	if _, err := m.Prepare(net); err != nil {
		t.Fatal(err)
	}
	if s := net.StateDict()["0.0.choices.double.conv.weight"].Shape(); s[1] != 2 {
		t.Fatalf("weight shape %v: the block's in_channels (2) must win over the choice's (7)", s)
	}
}

func TestMutatorErrors(t *testing.T) {
	cases := []struct {
		name    string
		mapping map[string]map[string]any
		net     nn.Module
		want    string
	}{
		{"group missing", scaleMapping(nil), placeholderNet("other"), `block b0 belongs to placeholder group "other", which placeholder_mapping lacks; it maps g`},
		{"no placeholders", scaleMapping(nil), nn.NewSequential(nn.NewSequential()), "the model has no placeholders"},
		{"unknown mutable", map[string]map[string]any{"g": {"type": "ManyShotOP", "choices": map[string]any{}}}, placeholderNet("g"), `unknown mutable type "ManyShotOP"`},
		{"unknown op", map[string]map[string]any{"g": {"type": "OneShotMutableOP", "choices": map[string]any{"a": map[string]any{"type": "NoSuchOp"}}}}, placeholderNet("g"), `block b0: placeholder_mapping.g (mutable OneShotMutableOP): choices.a.type: unknown op type "NoSuchOp"`},
		{"bad op key", scaleMapping(map[string]any{"factr": 1}), placeholderNet("g"), `unknown key "factr"`},
		{"empty choices", map[string]map[string]any{"g": {"type": "OneShotOP", "choices": map[string]any{}}}, placeholderNet("g"), "choices is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewOneShotMutator(OneShotMutatorOptions{PlaceholderMapping: c.mapping})
			if err == nil {
				_, err = m.Prepare(c.net)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
	if _, err := NewOneShotMutator(OneShotMutatorOptions{PlaceholderMapping: map[string]map[string]any{"g": {"choices": map[string]any{}}}}); err == nil || !strings.Contains(err.Error(), "placeholder_mapping.g has no `type`") {
		t.Fatalf("a mapping without type: %v", err)
	}
	m, _, _ := prepared(t)
	if _, err := m.Prepare(placeholderNet("g")); err == nil {
		t.Fatal("Prepare ran twice")
	}
	for _, sub := range []Subnet{{"b0": "double"}, {"b0": "double", "b1": "quadruple"}} {
		if err := m.SetSubnet(sub); err == nil {
			t.Errorf("SetSubnet(%v) passed", sub)
		}
	}
}

func TestMutableBuildsFromRegistryWithBothNames(t *testing.T) {
	for _, name := range []string{"OneShotOP", "mmrazor.OneShotMutableOP"} {
		node := map[string]any{"type": name, "space_id": "s", "choice_args": map[string]any{"in_channels": 2, "out_channels": 2},
			"choices": map[string]any{"x": map[string]any{"type": "TestScaleOp", "factor": 1.0}}}
		mut, err := Mutables.Build(node, "m", nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if mut.SpaceID() != "s" || fmt.Sprint(mut.Choices()) != "[x]" || fmt.Sprint(mut.Chosen()) != "[x]" {
			t.Fatalf("%s: space id %q, choices %v, chosen %v", name, mut.SpaceID(), mut.Choices(), mut.Chosen())
		}
	}
}
