package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/knadh/koanf/v2"
)

// writeFiles creates files (name -> content) in a temp dir and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustGet(t *testing.T, c *Config, key string) any {
	t.Helper()
	v, ok := c.Get(key)
	if !ok {
		t.Fatalf("key %s missing; tree: %v", key, c.Tree())
	}
	return v
}

func TestLoadRules(t *testing.T) {
	cases := []struct {
		name      string
		files     map[string]string
		overrides []string
		want      map[string]any // key -> expected value
		absent    []string
	}{
		{
			name: "base as a single path, child scalar replaces, mapping merges",
			files: map[string]string{
				"base.yaml": "a: 1\nm: {x: 1, y: 2}\nl: [1, 2, 3]\n",
				"main.yaml": "_base_: base.yaml\na: 2\nm: {y: 3}\nl: [9]\n",
			},
			want: map[string]any{"a": 2, "m.x": 1, "m.y": 3, "l": []any{9}},
		},
		{
			name: "base list merges in order, relative to the naming file, recursively",
			files: map[string]string{
				"_base_/models/m.yaml":  "model: {type: A, depth: 2}\n",
				"_base_/data.yaml":      "data: {batch: 4}\n",
				"_base_/runtime.yaml":   "_base_: ./data.yaml\nlog: {interval: 10}\n",
				"nas/spos/main.yaml":    "_base_: [../../_base_/models/m.yaml, ../../_base_/runtime.yaml]\nmodel: {depth: 3}\n",
				"nas/spos/unused.yaml":  "x: 1\n",
				"nas/spos/other.json":   "{}",
				"_base_/unrelated.yaml": "z: 0\n",
			},
			want: map[string]any{"model.type": "A", "model.depth": 3, "data.batch": 4, "log.interval": 10},
			absent: []string{
				"_base_", "x", "z",
			},
		},
		{
			name: "_delete_ replaces the base mapping and is dropped",
			files: map[string]string{
				"base.yaml": "opt: {type: SGD, lr: 0.1, momentum: 0.9}\n",
				"main.yaml": "_base_: base.yaml\nopt: {_delete_: true, type: Adam, lr: 0.01}\n",
			},
			want:   map[string]any{"opt.type": "Adam", "opt.lr": 0.01},
			absent: []string{"opt.momentum", "opt._delete_"},
		},
		{
			name: "_delete_ on a new key is dropped too",
			files: map[string]string{
				"main.yaml": "new: {_delete_: true, a: {_delete_: false, b: 1}}\n",
			},
			want:   map[string]any{"new.a.b": 1},
			absent: []string{"new._delete_", "new.a._delete_"},
		},
		{
			name: "_delete_ lets a mapping replace a scalar",
			files: map[string]string{
				"base.yaml": "lr: 0.1\n",
				"main.yaml": "_base_: base.yaml\nlr: {_delete_: true, policy: poly}\n",
			},
			want: map[string]any{"lr.policy": "poly"},
		},
		{
			name: "{{_base_.x}} keeps the value's type, inside lists too",
			files: map[string]string{
				"base.yaml": "norm: {type: BN, eps: 1.0e-5}\nmean: [1, 2, 3]\nn: 7\nname: abc\n",
				"main.yaml": "_base_: base.yaml\nm: {norm: {{_base_.norm}}}\nl: [{{_base_.n}}, {{ _base_.mean }}, '{{_base_.mean.1}}']\nmsg: 'run-{{_base_.name}}-{{_base_.n}}'\n",
			},
			want: map[string]any{
				"m.norm.type": "BN", "m.norm.eps": 1e-5,
				"l.0": 7, "l.1": []any{1, 2, 3}, "l.2": 2, "msg": "run-abc-7",
			},
		},
		{
			name: "predefined file variables",
			files: map[string]string{
				"sub/exp.v1.yaml": "work: 'work_dirs/{{fileBasenameNoExtension}}'\nb: '{{ fileBasename }}'\ne: '{{fileExtname}}'\nd: '{{fileDirname}}'\n",
			},
			want: map[string]any{"work": "work_dirs/exp.v1", "b": "exp.v1.yaml", "e": ".yaml"},
		},
		{
			name: "environment variables with defaults",
			files: map[string]string{
				"main.yaml": "root: '{{$RAZOR_TEST_SET:/x}}'\nother: '{{$RAZOR_TEST_UNSET:fallback}}'\nempty: '{{$RAZOR_TEST_UNSET:}}'\n",
			},
			want: map[string]any{"root": "from-env", "other": "fallback", "empty": ""},
		},
		{
			name:  "JSON files",
			files: map[string]string{"base.json": `{"a": {"b": [1, 2]}, "c": true}`, "main.yaml": "_base_: base.json\nc: false\n"},
			want:  map[string]any{"a.b.1": 2, "c": false},
		},
		{
			name: "YAML scalars keep their types",
			files: map[string]string{
				"main.yaml": "f: 1e-5\ng: 300e6\ni: 300000\nb: True\nn: null\ns: '1'\nt: ~\n",
			},
			want: map[string]any{"f": 1e-5, "g": 300e6, "i": 300000, "b": true, "n": nil, "s": "1", "t": nil},
		},
		{
			name: "overrides: dotted, bracket index, create, list values",
			files: map[string]string{
				"main.yaml": "data: {train: {pipeline: [{type: Load}, {type: Flip, ratio: 0.5}]}}\nopt: {lr: 0.1}\n",
			},
			overrides: []string{
				"data.train.pipeline.1.ratio=0.0", "opt.lr=0.02", "data.train.pipeline[0].to_float32=True",
				"opt.steps=[8,11]", "opt.new.deep=x y",
			},
			want: map[string]any{
				"data.train.pipeline.1.ratio": 0.0, "opt.lr": 0.02, "data.train.pipeline.0.to_float32": true,
				"opt.steps": []any{8, 11}, "opt.new.deep": "x y",
			},
		},
		{
			name: "expressions see overrides and each other",
			files: map[string]string{
				"base.yaml": "norm_cfg: {type: BN, requires_grad: true}\nsamples: 128\n",
				"main.yaml": "_base_: base.yaml\nmodel: {backbone: {norm: '${ norm_cfg }'}, neck: {norm: '${norm_cfg}'}}\nlr: '${ total / 1024 * 0.5 }'\ntotal: '${ samples * 8 }'\nconstraints: 'flops < 300e6'\n",
			},
			overrides: []string{"norm_cfg.type=SyncBN", "samples=64"},
			want: map[string]any{
				"model.backbone.norm.type": "SyncBN", "model.neck.norm.type": "SyncBN",
				"total": 512, "lr": 0.25, "constraints": "flops < 300e6",
			},
		},
		{
			name: "an expression may read a sibling under the same mapping",
			files: map[string]string{
				"main.yaml": "a: {b: 2, c: '${ a.b }', d: {e: '${ a.b * a.c }'}}\nf: '${ a?.d.e }'\n",
			},
			want: map[string]any{"a.c": 2, "a.d.e": 4, "f": 4},
		},
	}
	t.Setenv("RAZOR_TEST_SET", "from-env")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			main := "main.yaml"
			for name := range tc.files {
				if strings.HasSuffix(name, "main.yaml") {
					main = name
				}
			}
			if _, ok := tc.files[main]; !ok {
				for name := range tc.files {
					main = name
				}
			}
			c, err := Load(filepath.Join(dir, main), Options{Overrides: tc.overrides})
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range tc.want {
				if got := mustGet(t, c, k); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
			for _, k := range tc.absent {
				if c.Has(k) {
					t.Errorf("%s should be absent, got %#v", k, mustGet(t, c, k))
				}
			}
		})
	}
}

func TestFileDirnameIsAbsoluteDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a/b.yaml": "d: '{{fileDirname}}'\n"})
	c, err := Load(filepath.Join(dir, "a/b.yaml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, c, "d"); got != filepath.Join(dir, "a") {
		t.Fatalf("fileDirname = %v, want %s", got, filepath.Join(dir, "a"))
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name      string
		files     map[string]string
		main      string
		overrides []string
		strict    bool
		wantAll   []string // every fragment must appear in the error
	}{
		{
			name:    "cycle names the chain",
			files:   map[string]string{"a.yaml": "_base_: b.yaml\n", "b.yaml": "_base_: c.yaml\n", "c.yaml": "_base_: a.yaml\n"},
			main:    "a.yaml",
			wantAll: []string{"_base_ cycle", "a.yaml -> ", "b.yaml -> ", "c.yaml -> ", "a.yaml"},
		},
		{
			name:    "self cycle",
			files:   map[string]string{"a.yaml": "_base_: a.yaml\n"},
			main:    "a.yaml",
			wantAll: []string{"_base_ cycle"},
		},
		{
			name:    "duplicate key among bases names both files",
			files:   map[string]string{"x.yaml": "model: 1\n", "y.yaml": "model: 2\n", "m.yaml": "_base_: [x.yaml, y.yaml]\n"},
			main:    "m.yaml",
			wantAll: []string{`duplicate key "model" among bases`, "x.yaml", "y.yaml"},
		},
		{
			name:    "mapping over scalar without _delete_",
			files:   map[string]string{"b.yaml": "lr: 0.1\n", "m.yaml": "_base_: b.yaml\nlr: {policy: step}\n"},
			main:    "m.yaml",
			wantAll: []string{"lr is a mapping", "b.yaml:1", "_delete_: true"},
		},
		{
			name:    "missing base file",
			files:   map[string]string{"m.yaml": "_base_: nothere.yaml\n"},
			main:    "m.yaml",
			wantAll: []string{"nothere.yaml", "does not exist"},
		},
		{
			name:    "bad _base_ type",
			files:   map[string]string{"m.yaml": "_base_: {a: 1}\n"},
			main:    "m.yaml",
			wantAll: []string{"m.yaml", "_base_ must be a file path or a list"},
		},
		{
			name:    "YAML syntax error names the file and line",
			files:   map[string]string{"m.yaml": "a: [1, 2\nb: 3\n"},
			main:    "m.yaml",
			wantAll: []string{"m.yaml", "line"},
		},
		{
			name:    "duplicate key in one mapping",
			files:   map[string]string{"m.yaml": "a: 1\nb: 2\na: 3\n"},
			main:    "m.yaml",
			wantAll: []string{"m.yaml", "line 3", `key "a" is defined twice`},
		},
		{
			name:    "top level not a mapping",
			files:   map[string]string{"m.yaml": "- 1\n- 2\n"},
			main:    "m.yaml",
			wantAll: []string{"m.yaml", "top level must be a mapping"},
		},
		{
			name:    "unsupported extension",
			files:   map[string]string{"m.py": "a = 1\n"},
			main:    "m.py",
			wantAll: []string{"m.py", "unsupported file type", ".yaml"},
		},
		{
			name:    "unknown {{_base_}} key suggests the closest",
			files:   map[string]string{"b.yaml": "norm_cfg: {type: BN}\n", "m.yaml": "_base_: b.yaml\nx: {{_base_.norm_cgf}}\n"},
			main:    "m.yaml",
			wantAll: []string{"m.yaml", "x: {{_base_.norm_cgf}} names no key", `did you mean "norm_cfg"`},
		},
		{
			name:    "unset env var without default",
			files:   map[string]string{"m.yaml": "a: '{{$RAZOR_SURELY_UNSET_VAR}}'\n"},
			main:    "m.yaml",
			wantAll: []string{"m.yaml", "RAZOR_SURELY_UNSET_VAR is not set"},
		},
		{
			name:    "unknown template variable",
			files:   map[string]string{"m.yaml": "a: '{{fileDir}}'\n"},
			main:    "m.yaml",
			wantAll: []string{"m.yaml", "unknown variable {{fileDir}}"},
		},
		{
			name:    "_delete_ must be a bool",
			files:   map[string]string{"b.yaml": "o: {a: 1}\n", "m.yaml": "_base_: b.yaml\no: {_delete_: yes please}\n"},
			main:    "m.yaml",
			wantAll: []string{"o._delete_ must be true or false"},
		},
		{
			name:      "override index past the end names the length",
			files:     map[string]string{"m.yaml": "p: [{a: 1}, {a: 2}]\n"},
			main:      "m.yaml",
			overrides: []string{"p.5.a=1"},
			wantAll:   []string{"p.5.a=1", "index 5 is past the end of p", "2 element(s)"},
		},
		{
			name:      "override through a scalar",
			files:     map[string]string{"m.yaml": "lr: 0.1\n"},
			main:      "m.yaml",
			overrides: []string{"lr.policy=poly"},
			wantAll:   []string{"lr.policy", "lr is a number (0.1)", `no key "policy"`},
		},
		{
			name:      "override a list by name",
			files:     map[string]string{"m.yaml": "p: [1, 2]\n"},
			main:      "m.yaml",
			overrides: []string{"p.first=1"},
			wantAll:   []string{"p is a list", "p.0 or p[0]"},
		},
		{
			name:      "override without =",
			files:     map[string]string{"m.yaml": "a: 1\n"},
			main:      "m.yaml",
			overrides: []string{"a"},
			wantAll:   []string{`"a"`, "expected KEY=VALUE"},
		},
		{
			name:      "override with a bad value",
			files:     map[string]string{"m.yaml": "a: 1\n"},
			main:      "m.yaml",
			overrides: []string{"a=[1,2"},
			wantAll:   []string{"a=[1,2", "never closed"},
		},
		{
			name:      "strict refuses an unknown override key and suggests",
			files:     map[string]string{"m.yaml": "optimizer: {lr: 0.1}\n"},
			main:      "m.yaml",
			overrides: []string{"optimizer.lrr=0.2"},
			strict:    true,
			wantAll:   []string{"optimizer.lrr", `did you mean "optimizer.lr"`, "strict"},
		},
		{
			name:    "expression cycle names the keys",
			files:   map[string]string{"m.yaml": "a: '${ b + 1 }'\nb: '${ c }'\nc: '${ a }'\n"},
			main:    "m.yaml",
			wantAll: []string{"cycle", "a -> b -> c -> a"},
		},
		{
			name:    "expression cycle inside one mapping",
			files:   map[string]string{"m.yaml": "a: {b: '${ a.c }', c: '${ a.b }'}\n"},
			main:    "m.yaml",
			wantAll: []string{"cycle", "a.b -> a.c -> a.b"},
		},
		{
			name:    "expression unknown name",
			files:   map[string]string{"m.yaml": "a: '${ nosuch * 2 }'\n"},
			main:    "m.yaml",
			wantAll: []string{"m.yaml", "a: expression ${ nosuch * 2 }", "nosuch"},
		},
		{
			name:    "expression type error",
			files:   map[string]string{"m.yaml": "s: abc\na: '${ s * 2 }'\n"},
			main:    "m.yaml",
			wantAll: []string{"a: expression ${ s * 2 }"},
		},
		{
			name:    "expression syntax error",
			files:   map[string]string{"m.yaml": "a: '${ 1 + }'\n"},
			main:    "m.yaml",
			wantAll: []string{"a: expression ${ 1 + }"},
		},
		{
			name:    "unterminated expression",
			files:   map[string]string{"m.yaml": "a: 1\nx: ${ a + 2\n"},
			main:    "m.yaml",
			wantAll: []string{"m.yaml", `x: "${ a + 2" opens an expression with ${ that no } closes`},
		},
		{
			name:    "expression inside a longer string",
			files:   map[string]string{"m.yaml": "a: w\nd: {dir: 'dir/${ a }'}\n"},
			main:    "m.yaml",
			wantAll: []string{"m.yaml", `d.dir: "dir/${ a }" has an expression inside a longer string`, "${ 'dir/' + name }"},
		},
		{
			name:      "expression inside a longer override",
			files:     map[string]string{"m.yaml": "a: w\nb: x\n"},
			main:      "m.yaml",
			overrides: []string{"b=pre${ a }"},
			wantAll:   []string{"m.yaml", `b: "pre${ a }" has an expression inside a longer string`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			_, err := Load(filepath.Join(dir, tc.main), Options{Overrides: tc.overrides, Strict: tc.strict})
			if err == nil {
				t.Fatal("expected an error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			for _, frag := range tc.wantAll {
				if !strings.Contains(msg, frag) {
					t.Errorf("error %q lacks %q", msg, frag)
				}
			}
		})
	}
}

func TestOverrideOfMissingKeyWarns(t *testing.T) {
	dir := writeFiles(t, map[string]string{"m.yaml": "model: {backbone: {widen_factor: 1.0}}\n"})
	c, err := Load(filepath.Join(dir, "m.yaml"), Options{Overrides: []string{"model.backbone.widen_facter=1.5"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `did you mean "model.backbone.widen_factor"`) {
		t.Fatalf("warnings = %q", c.Warnings)
	}
	if got := mustGet(t, c, "model.backbone.widen_facter"); got != 1.5 {
		t.Fatalf("created key = %v", got)
	}
	c, err = Load(filepath.Join(dir, "m.yaml"), Options{Overrides: []string{"model.backbone.widen_factor=1.5"}})
	if err != nil || len(c.Warnings) != 0 {
		t.Fatalf("existing key: err %v warnings %q", err, c.Warnings)
	}
}

func TestProvenanceAndDumpRoundTrip(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"base.yaml": "model:\n  type: A\n  depth: 2\nlr: 0.1\nzero: 0.0\nlist: [1, '2', 3.0]\nempty: []\n",
		"main.yaml": "_base_: base.yaml\nmodel:\n  depth: 3\nname: '${ model.type + \"-x\" }'\n",
	})
	c, err := Load(filepath.Join(dir, "main.yaml"), Options{Overrides: []string{"lr=0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	origin := func(key string) string {
		o, ok := c.Origin(key)
		if !ok {
			t.Fatalf("no origin for %s", key)
		}
		return o.String()
	}
	if got := origin("model.type"); !strings.HasSuffix(got, "base.yaml:2") {
		t.Errorf("model.type origin %s", got)
	}
	if got := origin("model.depth"); !strings.HasSuffix(got, "main.yaml:3") {
		t.Errorf("model.depth origin %s", got)
	}
	if got := origin("lr"); got != "--cfg-options lr=0.2" {
		t.Errorf("lr origin %s", got)
	}
	out, err := c.YAML(true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "depth: 3 # ") || !strings.Contains(string(out), "lr: 0.2 # --cfg-options lr=0.2") {
		t.Errorf("provenance dump:\n%s", out)
	}
	plain, err := c.YAML(false)
	if err != nil {
		t.Fatal(err)
	}
	// Keys keep file order: base keys first, then the child's new key.
	if i, j := strings.Index(string(plain), "model:"), strings.Index(string(plain), "name:"); i > j {
		t.Errorf("order lost:\n%s", plain)
	}
	p := filepath.Join(dir, "dump", "merged.yaml")
	if err := c.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	back, err := Load(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Tree(), c.Tree()) {
		t.Fatalf("round trip differs:\n%v\n%v", back.Tree(), c.Tree())
	}
	if v := mustGet(t, back, "zero"); v != 0.0 {
		t.Errorf("float 0.0 came back as %#v", v)
	}
}

func TestAccessors(t *testing.T) {
	c, err := FromMap(map[string]any{
		"runner": map[string]any{"max_iters": 300000, "big": 3e8, "frac": 0.5, "name": "x", "on": true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.Int("runner.max_iters", 0); err != nil || v != 300000 {
		t.Errorf("Int = %v %v", v, err)
	}
	if v, err := c.Int("runner.big", 0); err != nil || v != 300000000 {
		t.Errorf("Int of whole float = %v %v", v, err)
	}
	if _, err := c.Int("runner.frac", 0); err == nil || !strings.Contains(err.Error(), "runner.frac must be a whole number") {
		t.Errorf("Int of 0.5: %v", err)
	}
	if v, err := c.Float("runner.max_iters", 0); err != nil || v != 300000 {
		t.Errorf("Float of int = %v %v", v, err)
	}
	if v, err := c.String("runner.missing", "def"); err != nil || v != "def" {
		t.Errorf("String default = %v %v", v, err)
	}
	if _, err := c.String("runner.on", ""); err == nil {
		t.Error("String of a bool should fail")
	}
	if v, err := c.Bool("runner.on", false); err != nil || !v {
		t.Errorf("Bool = %v %v", v, err)
	}
	if _, err := c.Sub("runnr"); err == nil || !strings.Contains(err.Error(), `did you mean "runner"`) {
		t.Errorf("Sub suggestion: %v", err)
	}
	if err := c.Set("runner.extra.deep", 3); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Int("runner.extra.deep", 0); v != 3 {
		t.Errorf("Set then Int = %v", v)
	}
	k := koanfView(c)
	if k.Int("runner.max_iters") != 300000 || k.String("runner.name") != "x" {
		t.Errorf("koanf view: %v", k.All())
	}
}

func TestParsePath(t *testing.T) {
	cases := map[string]Path{
		"a":                                 {"a"},
		"a.b.1.c":                           {"a", "b", "1", "c"},
		"a.b[1].c":                          {"a", "b", "1", "c"},
		"a[0][2]":                           {"a", "0", "2"},
		"data.train.pipeline[1].flip_ratio": {"data", "train", "pipeline", "1", "flip_ratio"},
	}
	for in, want := range cases {
		got, err := ParsePath(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParsePath(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a..b", "a[x]", "a[1", "a[1]b", "."} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) should fail", bad)
		}
	}
}

func TestWriteFileAtomicIsReadable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "out.yaml")
	if err := WriteFileAtomic(p, []byte("a: 1\n")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", st.Mode().Perm())
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".*tmp*")); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

// koanfView returns the config as a koanf instance, to check that the tree
// reads the same through koanf's accessors. Lists stay whole values there,
// since koanf addresses mappings only.
func koanfView(c *Config) *koanf.Koanf {
	k := koanf.New(".")
	for _, key := range sortedKeys(c.tree) {
		// Set only fails on a key with an empty part, which no tree key has
		// at the top level; a top-level key containing the delimiter is
		// stored under its nested form, as koanf itself does.
		_ = k.Set(key, DeepCopy(c.tree[key]))
	}
	return k
}

// TestBoundedWork: a YAML alias bomb, a file nested too deep and an
// override nested too deep are each one error (they used to run out of
// memory or take minutes).
func TestBoundedWork(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 'b', 'a'; i <= 'i'; i, prev = i+1, i {
		bomb += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	dir := writeFiles(t, map[string]string{"bomb.yaml": bomb, "deep.yaml": "a: " + deep + "\n", "ok.yaml": "a: 1\n"})
	for _, c := range []struct {
		file      string
		overrides []string
		want      string
	}{
		{"bomb.yaml", nil, fmt.Sprintf("bomb.yaml: line %d: the file expands to more than %d values", 0, MaxValues)},
		{"deep.yaml", nil, fmt.Sprintf("mappings and lists nest deeper than %d levels", MaxDepth)},
		{"ok.yaml", []string{"a=" + strings.Repeat("[", 60000) + strings.Repeat("]", 60000)}, fmt.Sprintf("lists nest deeper than %d levels at position %d", MaxDepth, MaxDepth+1)},
	} {
		_, err := Load(filepath.Join(dir, c.file), Options{Overrides: c.overrides})
		if c.file == "bomb.yaml" && err != nil {
			// The line is the alias that crossed the limit.
			c.want = c.want[:strings.Index(c.want, "line ")]
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: error %v, want %q", c.file, len(c.overrides), err, c.want)
		}
	}
}
