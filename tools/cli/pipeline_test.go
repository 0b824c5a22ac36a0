package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/runners/pipeline"
)

// TestPipelineWorkDir checks that the pipeline command picks its work dir
// as train and search do: --work-dir, then work_dir, then
// work_dirs/<config name>.
func TestPipelineWorkDir(t *testing.T) {
	dir := t.TempDir()
	tools := map[string]pipeline.Tool{"fit": {Flags: func(dir string) []string { return []string{"--work-dir", dir} }}}
	steps := "steps:\n  - {name: a, tool: fit, config: c.yaml}\n"
	withDir := filepath.Join(dir, "with_dir.yaml")
	without := filepath.Join(dir, "spos.v1.yaml")
	os.WriteFile(withDir, []byte("work_dir: from_config\n"+steps), 0o644)
	os.WriteFile(without, []byte(steps), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{without}, filepath.Join("work_dirs", "spos.v1")},
		{[]string{withDir}, "from_config"},
		{[]string{withDir, "--work-dir", "from_flag"}, "from_flag"},
	} {
		var out bytes.Buffer
		if err := PipelineWith(context.Background(), append(tc.args, "--dry-run"), tools, &out, &out); err != nil {
			t.Fatalf("%q: %v\n%s", tc.args, err, out.String())
		}
		a := filepath.Join(tc.want, "a")
		want := fmt.Sprintf("== a [1/1] (%s): to run\n   fit c.yaml --work-dir %s\n", a, a)
		if out.String() != want {
			t.Errorf("%q printed\n%s\nwant\n%s", tc.args, out.String(), want)
		}
	}
}

// TestTestSummaryOfACustomTool runs a tool named evaluate whose output
// scores is a test's metrics file: TestSummary puts it in the results as a
// tested model, its size counted from the step's config and overrides.
func TestTestSummaryOfACustomTool(t *testing.T) {
	subnetCfg, err := filepath.Abs("../../configs/nas/spos/spos_subnet_shufflenetv2_mnist.yaml")
	if err != nil {
		t.Fatal(err)
	}
	subnet, err := filepath.Abs("../../configs/nas/spos/SPOS_SHUFFLENETV2_330M_IN1k_PAPER.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]pipeline.Tool{"evaluate": {
		Checkpoint: true,
		Flags:      func(dir string) []string { return []string{"--into", dir} },
		Outputs:    []string{"scores"},
		Run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			dir := args[slices.Index(args, "--into")+1]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "scores.json"), []byte(`{"metrics": {"accuracy_top-1": 98.5}}`), 0o644)
		},
		Collect: func(dir string) (map[string]string, error) {
			return map[string]string{"scores": filepath.Join(dir, "scores.json")}, nil
		},
		Summarize: TestSummary("scores"),
	}}
	pipe := filepath.Join(t.TempDir(), "p.yaml")
	text := fmt.Sprintf("steps:\n  - {name: judge, tool: evaluate, config: %s, checkpoint: w.json, cfg_options: {mutable_cfg: %s}}\n", subnetCfg, subnet)
	if err := os.WriteFile(pipe, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	var out bytes.Buffer
	if err := PipelineWith(context.Background(), []string{pipe, "--work-dir", work}, tools, &out, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}

	cfg, err := config.Load(subnetCfg, config.Options{Overrides: []string{"mutable_cfg=" + subnet}})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	size, err := alg.(algorithms.OneShot).Complexity(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var res pipeline.Results
	b, err := os.ReadFile(filepath.Join(work, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Tested) != 1 || len(res.Searched) != 0 {
		t.Fatalf("results hold %d tested and %d searched, want 1 and 0:\n%s", len(res.Tested), len(res.Searched), b)
	}
	got := res.Tested[0]
	if got.Step != "judge" || got.Subnet != subnet || got.Checkpoint != "w.json" || got.Metrics["accuracy_top-1"] != 98.5 ||
		got.Params != size.Params || got.FLOPs != size.FLOPs || size.FLOPs <= 0 {
		t.Errorf("tested %+v, want step judge, subnet %s, checkpoint w.json, top-1 98.5, %d params and %d FLOPs", got, subnet, size.Params, size.FLOPs)
	}
	row := fmt.Sprintf("| judge | %s | %.3f | %.3f | 98.50 | w.json |", subnet, float64(size.Params)/1e6, float64(size.FLOPs)/1e6)
	if md, _ := os.ReadFile(filepath.Join(work, "results.md")); !strings.Contains(string(md), row) {
		t.Errorf("results.md lacks the row %q:\n%s", row, md)
	}
}
