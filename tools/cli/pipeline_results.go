package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
)

// PipelineResults are what a pipeline ends with, as mmrazor's README
// tables: every tested model with its size and metrics.
type PipelineResults struct {
	Tested []TestedModel `json:"tested"`
}

// TestedModel is one test step's model: a row of the results table.
type TestedModel struct {
	Step string `json:"step"`
	// Subnet is the subnet file the model was built with
	// (algorithm.mutable_cfg); empty for a supernet.
	Subnet     string `json:"subnet"`
	Checkpoint string `json:"checkpoint"`
	// Params and FLOPs are counted over the algorithm's scope, as get_flops
	// counts them.
	Params  int64              `json:"params"`
	FLOPs   int64              `json:"flops"`
	Metrics map[string]float64 `json:"metrics"`
}

// pipelineResults gathers the results of the finished steps.
func pipelineResults(records []*PipelineRecord, workDir string) (*PipelineResults, error) {
	res := &PipelineResults{Tested: []TestedModel{}}
	for _, rec := range records {
		if rec.Tool != "test" {
			continue
		}
		row, err := testedModel(rec)
		if err != nil {
			return nil, fmt.Errorf("results of step %s: %w", rec.Step, err)
		}
		res.Tested = append(res.Tested, *row)
	}
	return res, nil
}

// testedModel rebuilds a test step's model from its config and overrides to
// count it, and reads its metrics.
func testedModel(rec *PipelineRecord) (*TestedModel, error) {
	var tr TestResult
	b, err := os.ReadFile(rec.Outputs["metrics"])
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &tr); err != nil {
		return nil, fmt.Errorf("metrics file %s: %w", rec.Outputs["metrics"], err)
	}
	cfg, err := config.Load(rec.Config, config.Options{Overrides: rec.CfgOptions})
	if err != nil {
		return nil, err
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", rec.Config, err)
	}
	c, err := alg.Complexity(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("counting FLOPs of config %s: %w", rec.Config, err)
	}
	subnet, _ := cfg.String("algorithm.mutable_cfg", "")
	return &TestedModel{Step: rec.Step, Subnet: subnet, Checkpoint: rec.Checkpoint, Params: c.Params, FLOPs: c.FLOPs, Metrics: tr.Metrics}, nil
}

// markdown renders the results as Markdown tables, paths shown relative to
// the pipeline's work dir.
func (r *PipelineResults) markdown(workDir string) string {
	var b strings.Builder
	b.WriteString("## Tested models\n\n")
	if len(r.Tested) == 0 {
		b.WriteString("No test step ran.\n")
		return b.String()
	}
	var metrics []string
	for _, t := range r.Tested {
		for m := range t.Metrics {
			if !slices.Contains(metrics, m) {
				metrics = append(metrics, m)
			}
		}
	}
	slices.Sort(metrics)
	b.WriteString("| Step | Subnet | Params (M) | FLOPs (M) |")
	for _, m := range metrics {
		b.WriteString(" " + m + " |")
	}
	b.WriteString(" Checkpoint |\n|---|---|---:|---:|" + strings.Repeat("---:|", len(metrics)) + "---|\n")
	for _, t := range r.Tested {
		subnet := "supernet"
		if t.Subnet != "" {
			subnet = relTo(workDir, t.Subnet)
		}
		fmt.Fprintf(&b, "| %s | %s | %.3f | %.3f |", t.Step, subnet, float64(t.Params)/1e6, float64(t.FLOPs)/1e6)
		for _, m := range metrics {
			if v, ok := t.Metrics[m]; ok {
				fmt.Fprintf(&b, " %.2f |", v)
			} else {
				b.WriteString(" - |")
			}
		}
		fmt.Fprintf(&b, " %s |\n", relTo(workDir, t.Checkpoint))
	}
	return b.String()
}

// write saves results.md and results.json in the work dir and prints the
// Markdown to out.
func (r *PipelineResults) write(workDir string, out io.Writer) error {
	md := r.markdown(workDir)
	if err := config.WriteFileAtomic(filepath.Join(workDir, "results.md"), []byte(md)); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := config.WriteFileAtomic(filepath.Join(workDir, "results.json"), append(js, '\n')); err != nil {
		return err
	}
	_, err = fmt.Fprint(out, "\n"+md)
	return err
}

// relTo shows path relative to dir when it lies inside dir.
func relTo(dir, path string) string {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return rel
}
