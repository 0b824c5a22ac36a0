package registry

import (
	"fmt"
	"strings"
	"testing"
)

// shape and layer are a tiny two-level component family for the tests: a
// layer holds a shape built by the shape registry.
type shape interface{ Area() float64 }

type square struct{ side float64 }

func (s square) Area() float64 { return s.side * s.side }

type rect struct{ w, h float64 }

func (r rect) Area() float64 { return r.w * r.h }

type layer interface{ Total() float64 }

type stack struct{ shapes []shape }

func (s stack) Total() float64 {
	t := 0.0
	for _, sh := range s.shapes {
		t += sh.Area()
	}
	return t
}

type squareOpts struct {
	Side float64 `cfg:"side"`
}

func (o *squareOpts) Defaults() { o.Side = 1 }

type rectOpts struct {
	W float64 `cfg:"w,required"`
	H float64 `cfg:"h,required"`
}

type stackOpts struct {
	Shapes []shape `cfg:"shapes"`
	Main   shape   `cfg:"main"`
	Name   string  `cfg:"name"`
}

var (
	shapes = New[shape]("shape")
	layers = New[layer]("layer")
)

func init() {
	MustRegister(shapes, "Square", func(o squareOpts) (shape, error) {
		if o.Side < 0 {
			return nil, fmt.Errorf("side must be >= 0, got %g", o.Side)
		}
		return square{o.Side}, nil
	}, Alias("Sq"))
	MustRegister(shapes, "Rectangle", func(o rectOpts) (shape, error) { return rect{o.W, o.H}, nil })
	MustRegister(layers, "Stack", func(o stackOpts) (layer, error) {
		all := o.Shapes
		if o.Main != nil {
			all = append(all, o.Main)
		}
		return stack{all}, nil
	})
}

func TestBuild(t *testing.T) {
	cases := []struct {
		node     map[string]any
		defaults map[string]any
		want     float64
	}{
		{map[string]any{"type": "Square", "side": 3}, nil, 9},
		{map[string]any{"type": "Square"}, nil, 1},                                       // Defaults()
		{map[string]any{"type": "Sq", "side": 2}, nil, 4},                                // alias
		{map[string]any{"type": "mmcls.Square", "side": 2}, nil, 4},                      // scope
		{map[string]any{"type": "mmrazor.Rectangle", "w": 2, "h": 5}, nil, 10},           // scope
		{map[string]any{"type": "Rectangle", "w": 2}, map[string]any{"h": 3}, 6},         // default fills a gap
		{map[string]any{"type": "Rectangle", "w": 2, "h": 4}, map[string]any{"h": 3}, 8}, // but never overrides
		{map[string]any{"w": 1, "h": 7}, map[string]any{"type": "Rectangle"}, 7},         // default type
	}
	for _, tc := range cases {
		s, err := shapes.Build(tc.node, "model.shape", tc.defaults)
		if err != nil {
			t.Errorf("Build(%v): %v", tc.node, err)
			continue
		}
		if s.Area() != tc.want {
			t.Errorf("Build(%v).Area() = %v, want %v", tc.node, s.Area(), tc.want)
		}
	}
}

func TestNestedBuild(t *testing.T) {
	node := map[string]any{
		"type": "Stack",
		"shapes": []any{
			map[string]any{"type": "Square", "side": 2},
			map[string]any{"type": "Rectangle", "w": 1, "h": 3},
		},
		"main": map[string]any{"type": "Sq", "side": 10},
	}
	l, err := layers.Build(node, "model", nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Total() != 107 {
		t.Fatalf("Total = %v, want 107", l.Total())
	}
	node["main"] = nil
	l, err = layers.Build(node, "model", nil)
	if err != nil || l.Total() != 7 {
		t.Fatalf("null optional component: %v %v", l, err)
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		reg  func() error
		frag []string
	}{
		{func() error { _, err := shapes.Build(map[string]any{"type": "Squar"}, "model.shape", nil); return err },
			[]string{"model.shape.type", `unknown shape type "Squar"`, `did you mean "Square"`, "registered: Rectangle, Sq, Square"}},
		{func() error { _, err := shapes.Build(map[string]any{"type": "square"}, "m", nil); return err },
			[]string{`did you mean "Square"`}},
		{func() error { _, err := shapes.Build(map[string]any{"type": "mmfoo.Square"}, "m", nil); return err },
			[]string{`unknown scope "mmfoo"`, "mmcls"}},
		{func() error { _, err := shapes.Build(map[string]any{"side": 1}, "model.shape", nil); return err },
			[]string{"model.shape has no `type` key", "Rectangle, Square"}},
		{func() error { _, err := shapes.Build(map[string]any{"type": 3}, "m", nil); return err },
			[]string{"m.type must be a string"}},
		{func() error { _, err := shapes.Build("Square", "m", nil); return err },
			[]string{"m must be a mapping with a `type` key"}},
		{func() error {
			_, err := shapes.Build(map[string]any{"type": "Square", "sidee": 1}, "model.shape", nil)
			return err
		}, []string{`model.shape: unknown key "sidee"`, `did you mean "side"`, "accepted keys: side"}},
		{func() error {
			_, err := shapes.Build(map[string]any{"type": "Square", "side": -1}, "model.shape", nil)
			return err
		},
			[]string{"model.shape (shape Square): side must be >= 0, got -1"}},
		{func() error {
			_, err := layers.Build(map[string]any{"type": "Stack", "shapes": []any{map[string]any{"type": "Rectangle", "w": 1}}}, "model", nil)
			return err
		}, []string{`model.shapes.0: missing required key "h"`}},
		{func() error {
			_, err := layers.Build(map[string]any{"type": "Stack", "main": map[string]any{"type": "Circle"}}, "model", nil)
			return err
		}, []string{"model.main.type", `unknown shape type "Circle"`}},
		{func() error {
			return Register(shapes, "Square", func(o squareOpts) (shape, error) { return square{}, nil })
		}, []string{`shape registry: "Square" is already registered`, "Force"}},
		{func() error {
			return Register(shapes, "Other", func(o squareOpts) (shape, error) { return square{}, nil }, Alias("Sq"))
		}, []string{`"Sq" is already an alias of "Square"`}},
		{func() error {
			return Register(shapes, "mm.Bad", func(o squareOpts) (shape, error) { return square{}, nil })
		}, []string{`invalid type name "mm.Bad"`}},
	}
	for i, tc := range cases {
		err := tc.reg()
		if err == nil {
			t.Errorf("case %d: expected an error", i)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("case %d: multi-line error %q", i, err)
		}
		for _, f := range tc.frag {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("case %d: error %q lacks %q", i, err, f)
			}
		}
	}
}

func TestForceReplaces(t *testing.T) {
	r := New[fmt.Stringer]("stringer")
	MustRegister(r, "A", func(o struct{}) (fmt.Stringer, error) { return named("first"), nil })
	if err := Register(r, "A", func(o struct{}) (fmt.Stringer, error) { return named("second"), nil }, Force()); err != nil {
		t.Fatal(err)
	}
	v, err := r.Build(map[string]any{"type": "A"}, "x", nil)
	if err != nil || v.String() != "second" {
		t.Fatalf("forced registration not used: %v %v", v, err)
	}
	if names := r.Names(); len(names) != 1 || names[0] != "A" {
		t.Fatalf("Names = %v", names)
	}
	keys, err := shapes.Accepts("mmcls.Rectangle")
	if err != nil || strings.Join(keys, ",") != "w,h" {
		t.Fatalf("Accepts = %v %v", keys, err)
	}
}

type named string

func (n named) String() string { return string(n) }

func TestOneRegistryPerType(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a second registry for the same type must panic")
		}
	}()
	New[shape]("again")
}
