package config

import (
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseValue(t *testing.T) {
	cases := []struct {
		in   string
		want any
	}{
		{"1", 1},
		{"-3", -3},
		{"0.5", 0.5},
		{"1e-5", 1e-5},
		{"300e6", 300e6},
		{"true", true},
		{"False", false},
		{"TRUE", true},
		{"None", nil},
		{"null", nil},
		{"abc", "abc"},
		{"SyncBN", "SyncBN"},
		{"", ""},
		{"[]", []any{}},
		{"()", []any{}},
		{"[1,2,3]", []any{1, 2, 3}},
		{"[1, 2, 3]", []any{1, 2, 3}},
		{"(1,2)", []any{1, 2}},
		{"(1,)", []any{1}},
		{"1,2,3", []any{1, 2, 3}},
		{"a,b", []any{"a", "b"}},
		{"x,", []any{"x"}},
		{"[[1,2],[3,4]]", []any{[]any{1, 2}, []any{3, 4}}},
		{"[(1,2),[3,(4,5)]]", []any{[]any{1, 2}, []any{3, []any{4, 5}}}},
		{"[a,[],b]", []any{"a", []any{}, "b"}},
		{"'quoted'", "quoted"},
		{`"with spaces, commas [and] brackets"`, "with spaces, commas [and] brackets"},
		{"'1'", "1"},
		{"'True'", "True"},
		{"hello world", "hello world"},
		{"  padded  ", "padded"},
		{`['a b', "c,d"]`, []any{"a b", "c,d"}},
		{"[1, 'two', 3.0, None, true]", []any{1, "two", 3.0, nil, true}},
		{"a,,b", []any{"a", "", "b"}},
		{"inf", math.Inf(1)},
		{"1_000", "1_000"},
		{"0x10", "0x10"},
		{"/data/coco/", "/data/coco/"},
		{"work_dirs/a=b", "work_dirs/a=b"},
	}
	for _, tc := range cases {
		got, err := ParseValue(tc.in)
		if err != nil {
			t.Errorf("ParseValue(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseValue(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestParseValueErrors(t *testing.T) {
	cases := map[string]string{
		"[1,2":   "never closed",
		"(1,2]":  "closed by",
		"1,2]":   "unexpected",
		"]":      "unexpected",
		"'abc":   "never closed",
		"a'b'":   "quote the item",
		"[1][2]": "unexpected",
	}
	for in, frag := range cases {
		_, err := ParseValue(in)
		if err == nil {
			t.Errorf("ParseValue(%q) should fail", in)
			continue
		}
		if !strings.Contains(err.Error(), frag) || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseValue(%q) error %q should name the value and say %q", in, err, frag)
		}
	}
}

// FuzzParseValue checks that the parser never panics and that every value it
// accepts survives FormatValue and a second parse. The seed corpus runs in
// every `go test`.
func FuzzParseValue(f *testing.F) {
	for _, s := range []string{
		"1", "0.5", "abc", "[1,2,3]", "(1,[2,(3,)])", "'a b'", `"x,y"`, "a,b,,c", "[]", "None",
		"[[],[[]]]", "true", "1e400", "-0", "nan", "'", "[", ")", "a b c", `['x', "y"]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseValue(s)
		if err != nil {
			return
		}
		text, err := FormatValue(v)
		if err != nil {
			return
		}
		back, err := ParseValue(text)
		if err != nil {
			t.Fatalf("ParseValue(%q) = %#v, formatted %q, which fails to parse: %v", s, v, text, err)
		}
		if !sameValue(back, v) {
			t.Fatalf("ParseValue(%q) = %#v, formatted %q, parsed back as %#v", s, v, text, back)
		}
	})
}

// sameValue is DeepEqual with NaN equal to NaN.
func sameValue(a, b any) bool {
	fa, okA := a.(float64)
	fb, okB := b.(float64)
	if okA && okB && math.IsNaN(fa) && math.IsNaN(fb) {
		return true
	}
	la, okA := a.([]any)
	lb, okB := b.([]any)
	if okA && okB {
		if len(la) != len(lb) {
			return false
		}
		for i := range la {
			if !sameValue(la[i], lb[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// TestOverrideOfADottedKey sets a mapping's literal dotted key (a pipeline
// step's cfg_options: {runner.max_epochs: 4}) through the dotted path that
// spells it, instead of adding a nested key beside it.
func TestOverrideOfADottedKey(t *testing.T) {
	dir := writeFiles(t, map[string]string{"p.yaml": `
steps:
  - name: a
    cfg_options:
      runner.max_epochs: 4
      lr_config.step: [3]
      evaluation: {interval: 4}
`})
	c, err := Load(filepath.Join(dir, "p.yaml"), Options{Strict: true, Overrides: []string{
		"steps.0.cfg_options.runner.max_epochs=2", "steps[0].cfg_options.lr_config.step=[1]", "steps.0.cfg_options.evaluation.interval=2",
	}})
	if err != nil {
		t.Fatal(err)
	}
	var opts map[string]any
	if err := c.Decode("steps.0.cfg_options", &opts); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"runner.max_epochs": 2, "lr_config.step": []any{1}, "evaluation": map[string]any{"interval": 2}}
	if !reflect.DeepEqual(opts, want) {
		t.Errorf("cfg_options %#v, want %#v", opts, want)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %v for keys the file sets", c.Warnings)
	}
	// A path that leaves the tree keeps its own spelling.
	if got := Regroup(c.tree, Path{"steps", "0", "cfg_options", "runner", "seed"}); !reflect.DeepEqual(got, Path{"steps", "0", "cfg_options", "runner", "seed"}) {
		t.Errorf("Regroup of a new key: %v", got)
	}
}
