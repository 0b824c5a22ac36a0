package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestWorkDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"set.v1.yaml":   "work_dir: runs/set\n",
		"unset.v1.yaml": "a: 1\n",
		"bad.yaml":      "work_dir: 3\n",
	})
	load := func(name string) *Config {
		c, err := Load(filepath.Join(dir, name), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct{ file, flag, want string }{
		{"set.v1.yaml", "", "runs/set"},
		{"set.v1.yaml", "flag/dir", "flag/dir"},
		// Only the last extension goes: mmcv names work_dirs/set.v1 too.
		{"unset.v1.yaml", "", filepath.Join("work_dirs", "unset.v1")},
		{"unset.v1.yaml", "flag/dir", "flag/dir"},
	} {
		got, err := load(tc.file).WorkDir(tc.flag)
		if err != nil || got != tc.want {
			t.Errorf("%s with %q: %q, %v; want %q", tc.file, tc.flag, got, err, tc.want)
		}
	}
	if _, err := load("bad.yaml").WorkDir(""); err == nil || !strings.Contains(err.Error(), "work_dir must be a string") {
		t.Errorf("work_dir 3: %v, want a type error", err)
	}
}
