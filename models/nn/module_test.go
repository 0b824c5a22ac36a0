package nn

import (
	"fmt"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// box is a bare module for building trees in tests.
type box struct{ Base }

func TestNamesFollowThePath(t *testing.T) {
	// Built bottom-up, as constructors do: names are fixed up on each AddChild.
	conv := &box{}
	w := conv.AddParam("weight", KindWeight, 2, 2)
	bn := &box{}
	bnW := bn.AddParam("weight", KindNorm, 2)
	rm := bn.AddBuffer("running_mean", tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{0, 0})))
	block := &box{}
	block.AddChild("conv", conv)
	block.AddChild("bn", bn)
	if w.Name() != "conv.weight" || rm.Name() != "bn.running_mean" {
		t.Fatalf("names inside block: %q, %q", w.Name(), rm.Name())
	}
	layers := &box{}
	layers.AddChild("0", block)
	root := &box{}
	backbone := &box{}
	root.AddChild("backbone", backbone)
	backbone.AddChild("layers", layers)
	for _, tc := range []struct{ got, want string }{
		{w.Name(), "backbone.layers.0.conv.weight"},
		{w.LocalName(), "weight"},
		{bnW.Name(), "backbone.layers.0.bn.weight"},
		{rm.Name(), "backbone.layers.0.bn.running_mean"},
		{rm.LocalName(), "running_mean"},
		{block.Path(), "backbone.layers.0"},
		{root.Path(), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("name %q, want %q", tc.got, tc.want)
		}
	}
	// A parameter added after registration is named from the start.
	late := conv.AddParam("bias", KindBias, 2)
	if late.Name() != "backbone.layers.0.conv.bias" {
		t.Errorf("late param named %q", late.Name())
	}

	var names []string
	for _, p := range root.NamedParameters() {
		names = append(names, p.Name())
	}
	if got := strings.Join(names, " "); got != "backbone.layers.0.conv.weight backbone.layers.0.conv.bias backbone.layers.0.bn.weight" {
		t.Errorf("NamedParameters order: %s", got)
	}
	if bs := root.NamedBuffers(); len(bs) != 1 || bs[0] != rm {
		t.Errorf("NamedBuffers = %v", bs)
	}
	// StateDict names are relative to the module it is called on.
	sub := backbone.StateDict()
	if _, ok := sub["layers.0.bn.running_mean"]; !ok || len(sub) != 4 {
		t.Errorf("backbone.StateDict keys = %v", sortedKeys(sub))
	}
	if sd := root.StateDict(); sd["backbone.layers.0.conv.weight"] != w.Value() {
		t.Errorf("root StateDict does not alias the parameter tensor")
	}
}

func TestReplaceAndRemoveChild(t *testing.T) {
	root := &box{}
	choices := &box{}
	root.AddChild("choices", choices)
	for _, n := range []string{"a", "b", "c"} {
		op := &box{}
		op.AddParam("weight", KindWeight, 1)
		choices.AddChild(n, op)
	}
	repl := &box{}
	p := repl.AddParam("weight", KindWeight, 3)
	if err := choices.ReplaceChild("b", repl); err != nil {
		t.Fatal(err)
	}
	if p.Name() != "choices.b.weight" || choices.Child("b") != repl {
		t.Errorf("replacement named %q", p.Name())
	}
	if err := choices.RemoveChild("a"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(choices.ChildNames(), ","); got != "b,c" {
		t.Errorf("children after removal: %s", got)
	}
	if sd := root.StateDict(); len(sd) != 2 || sd["choices.b.weight"] == nil || sd["choices.c.weight"] == nil {
		t.Errorf("state dict after surgery: %v", sortedKeys(sd))
	}
	for _, err := range []error{choices.ReplaceChild("x", repl), choices.RemoveChild("x")} {
		if err == nil || !strings.Contains(err.Error(), `no child "x" (children: b, c)`) {
			t.Errorf("error = %v", err)
		}
	}
	if choices.Child("x") != nil {
		t.Errorf("Child of an unknown name is not nil")
	}
}

func TestAddRefusesBadNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		add  func(b *box)
	}{
		{"empty", func(b *box) { b.AddParam("", KindWeight, 1) }},
		{"dot", func(b *box) { b.AddChild("a.b", &box{}) }},
		{"slash", func(b *box) { b.AddBuffer("a/b", tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{0}))) }},
		{"param twice", func(b *box) { b.AddParam("w", KindWeight, 1); b.AddParam("w", KindWeight, 1) }},
		{"child over param", func(b *box) { b.AddParam("w", KindWeight, 1); b.AddChild("w", &box{}) }},
		{"buffer over child", func(b *box) {
			b.AddChild("w", &box{})
			b.AddBuffer("w", tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{0})))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			tc.add(&box{})
		})
	}
	if CheckName("ok_name") != nil || CheckName("x.y") == nil {
		t.Errorf("CheckName accepts or refuses the wrong names")
	}
}

func TestTrainingMode(t *testing.T) {
	root, mid, leaf := &box{}, &box{}, &box{}
	root.AddChild("mid", mid)
	mid.AddChild("leaf", leaf)
	if !leaf.Training() {
		t.Fatalf("modules do not start in training mode")
	}
	root.SetTraining(false)
	if root.Training() || mid.Training() || leaf.Training() {
		t.Errorf("SetTraining(false) did not reach the whole tree")
	}
	mid.SetTraining(true)
	if root.Training() || !mid.Training() || !leaf.Training() {
		t.Errorf("SetTraining(true) on a subtree: root %v mid %v leaf %v", root.Training(), mid.Training(), leaf.Training())
	}
}

func f32(shape []int, v ...float32) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

func newLoadTarget() (*box, *Param, *Buffer) {
	root, bn := &box{}, &box{}
	root.AddChild("bn", bn)
	w := bn.AddParam("weight", KindNorm, 2)
	n := bn.AddBuffer("num_batches_tracked", tensor.New(tensor.WithShape(), tensor.WithBacking([]int64{0})))
	return root, w, n
}

func TestLoadStateDict(t *testing.T) {
	good := map[string]*tensor.Dense{
		"bn.weight":              f32([]int{2}, 3, 4),
		"bn.num_batches_tracked": tensor.New(tensor.WithShape(), tensor.WithBacking([]int64{7})),
	}
	root, w, n := newLoadTarget()
	rep, err := root.LoadStateDict(good, true)
	if err != nil || !rep.Clean() || rep.String() != "all keys matched" {
		t.Fatalf("strict load of a matching dict: %v, %v", rep, err)
	}
	if w.Data()[0] != 3 || w.Data()[1] != 4 || n.Value().Int64s()[0] != 7 {
		t.Errorf("values not copied: %v %v", w.Data(), n.Value().Int64s())
	}
	good["bn.weight"].Float32s()[0] = 99
	if w.Data()[0] != 3 {
		t.Errorf("the module aliases the loaded tensor instead of copying it")
	}

	// A one-element tensor loads into a 0-d buffer (old checkpoints).
	root, _, n = newLoadTarget()
	if _, err := root.LoadStateDict(map[string]*tensor.Dense{
		"bn.weight":              f32([]int{2}, 1, 1),
		"bn.num_batches_tracked": tensor.New(tensor.WithShape(1), tensor.WithBacking([]int64{5})),
	}, true); err != nil || n.Value().Int64s()[0] != 5 {
		t.Errorf("1-element into 0-d: %v, value %v", err, n.Value().Int64s())
	}

	bad := map[string]*tensor.Dense{
		"bn.weight":              f32([]int{3}, 1, 2, 3),
		"bn.num_batches_tracked": f32([]int{}, 1),
		"head.fc.weight":         f32([]int{1}, 1),
	}
	root, w, n = newLoadTarget()
	rep, err = root.LoadStateDict(bad, true)
	if err == nil {
		t.Fatalf("strict load of a mismatching dict succeeded")
	}
	for _, want := range []string{"1 tensors of the state dict that the model lacks: head.fc.weight", "2 tensors of another shape or dtype, in bn.num_batches_tracked, bn.weight, such as bn.num_batches_tracked: dtype float32 in the state dict, int64 in the model"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("strict error %q lacks %q", err, want)
		}
	}
	if w.Data()[0] != 0 {
		t.Errorf("strict load copied values despite failing")
	}

	root, w, _ = newLoadTarget()
	rep, err = root.LoadStateDict(map[string]*tensor.Dense{"bn.weight": f32([]int{2}, 5, 6), "extra": f32([]int{1}, 1)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if w.Data()[1] != 6 {
		t.Errorf("non-strict load skipped a matching key")
	}
	if len(rep.Missing) != 1 || rep.Missing[0] != "bn.num_batches_tracked" || len(rep.Unexpected) != 1 || rep.Unexpected[0] != "extra" || rep.Clean() {
		t.Errorf("report = %+v", rep)
	}
}

// TestStrictLoadErrorIsShort: a strict load of a checkpoint of another
// width says so in one line of bounded length (it listed every tensor,
// 231 KB for a supernet).
func TestStrictLoadErrorIsShort(t *testing.T) {
	var rep LoadReport
	for i := range 2000 {
		rep.Mismatched = append(rep.Mismatched, fmt.Sprintf("backbone.layers.%d.%d.conv.weight: shape [64 32 1 1] in the state dict, [32 16 1 1] in the model", i/100, i%100))
		rep.Missing = append(rep.Missing, fmt.Sprintf("neck%d.convs.weight", i))
	}
	msg := rep.brief()
	if len(msg) > 600 || strings.Contains(msg, "\n") {
		t.Errorf("%d-byte message: %s", len(msg), msg)
	}
	for _, want := range []string{"2000 tensors of another shape or dtype", "such as backbone.layers.0.0.conv.weight: shape [64 32 1 1] in the state dict", "2000 of the model's tensors missing", "neck5.convs.weight and 1994 more"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}

func TestLoadReportSummary(t *testing.T) {
	rep := LoadReport{
		Unexpected: []string{"architecture.model.backbone.layers.4.conv.weight", "architecture.model.backbone.layers.4.bn.weight",
			"architecture.model.head.fc.weight", "architecture.model.head.fc.bias"},
		Missing: []string{"architecture.model.neck.lateral_convs.0.conv.weight", "architecture.model.neck.fpn_convs.0.conv.weight",
			"architecture.model.rpn_head.rpn_conv.weight", "architecture.model.roi_head.bbox_head.fc_cls.weight",
			"architecture.model.roi_head.bbox_head.fc_reg.weight"},
	}
	got := rep.Summary("architecture.model.", 1)
	want := "skipped 4 checkpoint tensors the model lacks: backbone.layers.4.* (2), head.fc.* (2); " +
		"lacked 5 of the model's tensors, which keep their initial values: neck.* (2), rpn_head.rpn_conv.weight, roi_head.bbox_head.* (2)"
	if got != want {
		t.Fatalf("Summary =\n%s\nwant\n%s", got, want)
	}
	if got := (LoadReport{}).Summary("", 1); got != "all keys matched" {
		t.Fatalf("clean Summary = %q", got)
	}
}

func TestGroupKeys(t *testing.T) {
	for _, tc := range []struct {
		keys  []string
		depth int
		want  string
	}{
		{nil, 1, ""},
		{[]string{"p.a.w", "p.a.b", "p.c.w"}, 1, "a.* (2), c.w"},
		{[]string{"p.a.x.w", "p.a.y.w", "p.b"}, 1, "a.* (2), b"},
		{[]string{"p.a.x.w", "p.a.y.w"}, 2, "a.x.w, a.y.w"},
		// A key that is itself a group's module path.
		{[]string{"p.a", "p.a.w"}, 1, "a.* (2)"},
	} {
		if got := GroupKeys(tc.keys, "p.", tc.depth); got != tc.want {
			t.Errorf("GroupKeys(%q, %d) = %q, want %q", tc.keys, tc.depth, got, tc.want)
		}
	}
}
