package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrintConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "base.yaml"), []byte("model: {type: A, depth: 2}\nbatch: 8\n"), 0o644)
	main := filepath.Join(dir, "main.yaml")
	os.WriteFile(main, []byte("_base_: base.yaml\nmodel: {depth: 3}\ntotal: '${ batch * 8 }'\n"), 0o644)

	cases := []struct {
		args    []string
		want    []string
		wantErr string
		stderr  string
	}{
		{args: []string{main}, want: []string{"model:\n  type: A\n  depth: 3\n", "batch: 8\n", "total: 64\n"}},
		{args: []string{main, "--cfg-options", "batch=4", "model.depth=5"}, want: []string{"total: 32", "depth: 5"}},
		{args: []string{main, "--provenance", "--cfg-options", "batch=4"}, want: []string{"batch: 4 # --cfg-options batch=4", "base.yaml:1", "total: 32 # "}},
		{args: []string{main, "--raw"}, want: []string{"total: ${ batch * 8 }"}},
		{args: []string{main, "--cfg-options", "bacth=4"}, want: []string{"bacth: 4"}, stderr: `did you mean "batch"`},
		{args: []string{main, "--strict-overrides", "--cfg-options", "bacth=4"}, wantErr: `did you mean "batch"`},
		{args: []string{}, wantErr: "expected one CONFIG file"},
		{args: []string{filepath.Join(dir, "none.yaml")}, wantErr: "does not exist"},
	}
	for _, tc := range cases {
		var out, errOut strings.Builder
		err := run(tc.args, &out, &errOut)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%q: output lacks %q:\n%s", tc.args, w, out.String())
			}
		}
		if tc.stderr != "" && !strings.Contains(errOut.String(), tc.stderr) {
			t.Errorf("%q: stderr %q lacks %q", tc.args, errOut.String(), tc.stderr)
		}
	}
}
