package config

import (
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets of the config readers (FuzzParseValue, of --cfg-options
// values, is in override_test.go): a config file and a ${ } expression end with a value or one error, never a
// panic, a hang or unbounded memory. Their seeds run with the ordinary
// tests; fuzz one with
// go test -run '^$' -fuzz '^FuzzLoad$' -fuzztime 5m ./config

func FuzzLoad(f *testing.F) {
	for _, p := range []string{
		"../configs/nas/detnas/detnas_supernet_frcnn_shufflenetv2_fpn_mnistdet.yaml",
		"../configs/nas/spos/spos_pipeline_mnist.yaml",
		"../configs/nas/detnas/detnas_evolution_search_frcnn_shufflenetv2_fpn_mnistdet.yaml",
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\nc: {<<: {k: 1}, d: '${ b }'}\n"))
	f.Add([]byte(`{"json": [1, 2.5, null, true], "e": "${ json[0] + 1 }"}`))
	dir := f.TempDir()
	// A base the fuzzed file may name.
	if err := os.WriteFile(filepath.Join(dir, "base.yaml"), []byte("model: {depth: 2, widths: [8, 16]}\nlr: 0.1\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("_base_: base.yaml\nlr: 0.2\nmodel: {depth: '${ lr * 10 }'}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "x.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p, Options{})
		if err != nil {
			return
		}
		// A loaded config dumps, and the dump loads again.
		y, err := c.YAML(false)
		if err != nil {
			t.Fatalf("loaded but does not dump: %v", err)
		}
		if len(y) == 0 {
			t.Fatal("empty dump")
		}
	})
}

func FuzzExpression(f *testing.F) {
	for _, s := range []string{"a + 1", "l[1] * 2", "s + 'x'", "m.k", "len(l) > 1 ? 'y' : 'n'", "1..3", "nosuch", "l[9]", "(", "map(l, # * 2)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		tree := map[string]any{"a": 1, "s": "str", "l": []any{1, 2, 3}, "m": map[string]any{"k": 0.5}, "e": "${ " + code + " }"}
		_, _ = FromMap(tree)
	})
}
