package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestExpandArgs(t *testing.T) {
	cases := []struct{ in, want []string }{
		{[]string{"cfg.yaml", "--cfg-options", "a=1", "b.c=[1,2]", "--seed", "3"},
			[]string{"cfg.yaml", "--cfg-options=a=1", "--cfg-options=b.c=[1,2]", "--seed", "3"}},
		{[]string{"--cfg-options=a=1", "b=2", "ckpt.pth"},
			[]string{"--cfg-options=a=1", "--cfg-options=b=2", "ckpt.pth"}},
		{[]string{"--cfg-options", "a=1", "--cfg-options", "b=x y"},
			[]string{"--cfg-options=a=1", "--cfg-options=b=x y"}},
		{[]string{"--", "--cfg-options", "a=1"}, []string{"--", "--cfg-options", "a=1"}},
		{[]string{"--cfg-options"}, []string{"--cfg-options"}},
	}
	for _, tc := range cases {
		if got := ExpandArgs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ExpandArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func parse(t *testing.T, args ...string) (*RunFlags, *pflag.FlagSet) {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	var r RunFlags
	r.Register(fs)
	if err := fs.Parse(ExpandArgs(args)); err != nil {
		t.Fatal(err)
	}
	return &r, fs
}

func TestRunFlagsAndWorkDir(t *testing.T) {
	dir := t.TempDir()
	withDir := filepath.Join(dir, "with_dir.yaml")
	without := filepath.Join(dir, "spos_supernet.yaml")
	os.WriteFile(withDir, []byte("work_dir: from_config\nlr: 0.1\n"), 0o644)
	os.WriteFile(without, []byte("lr: 0.1\n"), 0o644)

	r, fs := parse(t, without, "--cfg-options", "lr=0.5", "extra=1", "--seed", "7", "--deterministic")
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if !r.Seeded || r.Seed != 7 || !r.Deterministic || r.Launcher != "none" {
		t.Fatalf("flags: %+v", r)
	}
	var warn strings.Builder
	cfg, err := r.Load(fs.Arg(0), &warn)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := cfg.Float("lr", 0); v != 0.5 {
		t.Errorf("lr = %v", v)
	}
	if !strings.Contains(warn.String(), "extra") {
		t.Errorf("missing warning for a new key: %q", warn.String())
	}
	wd, err := r.ResolveWorkDir(cfg)
	if err != nil || wd != filepath.Join("work_dirs", "spos_supernet") {
		t.Errorf("default work dir = %q %v", wd, err)
	}
	if s, _ := cfg.String("work_dir", ""); s != wd {
		t.Errorf("work_dir not stored: %q", s)
	}

	r, fs = parse(t, withDir)
	cfg, _ = r.Load(fs.Arg(0), &warn)
	if wd, _ := r.ResolveWorkDir(cfg); wd != "from_config" {
		t.Errorf("config work dir = %q", wd)
	}
	r, fs = parse(t, withDir, "--work-dir", "from_flag")
	cfg, _ = r.Load(fs.Arg(0), &warn)
	if wd, _ := r.ResolveWorkDir(cfg); wd != "from_flag" {
		t.Errorf("flag work dir = %q", wd)
	}
	if r.Seeded {
		t.Error("seed reported as given")
	}
}

func TestRunFlagErrors(t *testing.T) {
	r, _ := parse(t, "--launcher", "pytorch")
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), `--launcher "pytorch"`) {
		t.Errorf("launcher: %v", err)
	}
	r, _ = parse(t, "--resume-from", "/no/such/ckpt.pth")
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "--resume-from /no/such/ckpt.pth: no such file") {
		t.Errorf("resume-from: %v", err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	os.WriteFile(p, []byte("optimizer: {lr: 0.1}\n"), 0o644)
	r, fs := parse(t, p, "--strict-overrides", "--cfg-options", "optimizer.lrr=1")
	if _, err := r.Load(fs.Arg(0), os.Stderr); err == nil || !strings.Contains(err.Error(), `did you mean "optimizer.lr"`) {
		t.Errorf("strict: %v", err)
	}
}

// TestHelpExitsZero: -h prints the usage and exits 0 for every command
// (it used to exit 1 with "pflag: help requested").
func TestHelpExitsZero(t *testing.T) {
	for name, run := range map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"train": Train, "test": Test, "search": Search, "infer": Infer, "pipeline": Pipeline,
		"analyze_logs": AnalyzeLogs, "make_mnist_det": MakeMNISTDet,
	} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"-h"}, &out, &out)
		if code := ExitCode(name, err, &out); code != 0 {
			t.Errorf("%s -h: exit status %d, %v", name, code, err)
		}
		if !strings.Contains(out.String(), "usage") && !strings.Contains(out.String(), "Usage") {
			t.Errorf("%s -h printed no usage:\n%s", name, out.String())
		}
	}
	var out bytes.Buffer
	if code := ExitCode("train", errors.New("config x.yaml: no such file"), &out); code != 1 || out.String() != "train: config x.yaml: no such file\n" {
		t.Errorf("an error: exit status %d, printed %q", code, out.String())
	}
}
