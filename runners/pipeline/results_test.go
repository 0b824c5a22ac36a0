package pipeline

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/razorgo/razor/runners/search"
)

// TestResultsComeFromToolsOfAnyName runs tools named neither search nor
// test whose outputs are a search's and a test's: their Summarize, not
// their names, puts them in results.md and results.json.
func TestResultsComeFromToolsOfAnyName(t *testing.T) {
	rep := search.Report{ScoreKey: "accuracy_top-1", Constraints: "flops < 1e6", Evaluated: 7,
		Best: search.Candidate{Cost: search.Cost{Params: 1_500_000, FLOPs: 250_000}, Score: 50},
		RandomBaseline: &search.Baseline{Num: 2, Scores: []float64{40, 62}, Mean: 51, Std: 15.556, Min: 40, Max: 62, BetterThanBest: 1,
			Candidates: []search.Candidate{{Key: "a", Score: 40}, {Key: "b", Score: 62}}},
		References: []search.Reference{{Name: "published", Allowed: false, Candidate: search.Candidate{Key: "p", Score: 0.3869, Cost: search.Cost{Params: 2_000_000, FLOPs: 1_100_000}}}}}
	repJSON, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakes()
	f.pick.content = map[string]string{"report": string(repJSON)}
	f.pick.summarize = SearchSummary("best_subnet", "report")
	f.score.content = map[string]string{"metrics": `{"top1": 71.25}`}
	f.score.summarize = func(rec *Record) (Summary, error) {
		var m map[string]float64
		b, err := os.ReadFile(rec.Outputs["metrics"])
		if err != nil {
			return Summary{}, err
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return Summary{}, err
		}
		return Summary{Tested: &TestedModel{Step: rec.Step, Subnet: rec.CfgOptions[0][len("mutable_cfg="):], Checkpoint: rec.Checkpoint,
			Params: 1_250_000, FLOPs: 3_500_000, Scope: "the backbone", Shape: []int{3, 64, 48},
			Model: &Cost{Params: 4_000_000, FLOPs: 2_500_000_000, Scope: "the whole model"}, Metrics: m}}, nil
	}
	cfgPath := writePipeline(t, `
steps:
  - {name: supernet, tool: fit, config: s.yaml}
  - {name: hunt, tool: pick, config: h.yaml, checkpoint: $(steps.supernet.checkpoint)}
  - name: judge
    tool: score
    config: j.yaml
    checkpoint: $(steps.supernet.checkpoint)
    cfg_options: {mutable_cfg: $(steps.hunt.best_subnet)}
`)
	work := t.TempDir()
	out, err := runFake(f, cfgPath, work)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	subnet := filepath.Join(work, "hunt", "best_subnet.out")
	want := Results{
		Steps: []StepTime{{Step: "supernet", Tool: "fit"},
			{Step: "hunt", Tool: "pick", Metric: &StepMetric{Name: "accuracy_top-1", Value: 50, Note: "best of 7 subnets"}},
			{Step: "judge", Tool: "score", Metric: &StepMetric{Name: "top1", Value: 71.25}}},
		Tested: []TestedModel{{Step: "judge", Subnet: subnet, Checkpoint: filepath.Join(work, "supernet", "checkpoint.out"),
			Params: 1_250_000, FLOPs: 3_500_000, Scope: "the backbone", Shape: []int{3, 64, 48},
			Model: &Cost{Params: 4_000_000, FLOPs: 2_500_000_000, Scope: "the whole model"}, Metrics: map[string]float64{"top1": 71.25}}},
		Searched: []SearchedSubnet{{Step: "hunt", Subnet: subnet, ScoreKey: "accuracy_top-1", Score: 50, Params: 1_500_000, FLOPs: 250_000,
			Constraints: "flops < 1e6", Evaluated: 7,
			Random:     &search.Baseline{Num: 2, Scores: []float64{40, 62}, Mean: 51, Std: 15.556, Min: 40, Max: 62, BetterThanBest: 1},
			References: []SearchReference{{Name: "published", Score: 0.3869, Params: 2_000_000, FLOPs: 1_100_000}}}},
		Figures: []Figure{},
	}
	js, err := os.ReadFile(filepath.Join(work, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got Results
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	for i := range got.Steps {
		if got.Steps[i].Seconds < 0 {
			t.Errorf("step %s took %g s", got.Steps[i].Step, got.Steps[i].Seconds)
		}
		got.Steps[i].Seconds = 0 // how long the fakes took varies
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("results.json holds\n%+v\nwant\n%+v", got, want)
	}
	// The report keeps the random subnets; the results only their scores.
	if strings.Contains(string(js), "candidates") {
		t.Errorf("results.json repeats the random candidates:\n%s", js)
	}

	md, err := os.ReadFile(filepath.Join(work, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		"| judge | hunt/best_subnet.out | 1.250 | 3.500 | 4.000 | 2.500 | 71.25 | supernet/checkpoint.out |",
		"judge: params and FLOPs over the backbone, at input 3x64x48; model params and FLOPs over the whole model.",
		"| hunt | hunt/best_subnet.out | 1.500 | 0.250 | flops < 1e6 | 50.00 (accuracy_top-1) | 2 | 51.00 ± 15.56 | 40.00 / 62.00 | 1 of 2 |",
		"| hunt | published | 2.000 | 1.100 | no | 0.39 |",
		"| supernet | fit | 0:00 | - |",
		"| hunt | pick | 0:00 | accuracy_top-1 50.00 (best of 7 subnets) |",
		"| judge | score | 0:00 | top1 71.25 |",
		"| all | | 0:00 | |",
	} {
		if !strings.Contains(string(md), row) || !strings.Contains(out, row) {
			t.Errorf("results.md and the output lack the row %q:\n%s", row, md)
		}
	}
	// fit summarizes nothing: one tested row, one searched row, one
	// reference row; the steps table has a row a step and the total.
	if n := strings.Count(string(md), "\n| "); n != 11 {
		t.Errorf("results.md has %d table lines, want 4 headers, 4 step rows, one tested, one searched and one reference row:\n%s", n, md)
	}
}

// TestMainMetric picks the metric a model is judged by, with a supernet's
// spread over subnets.
func TestMainMetric(t *testing.T) {
	std := 0.015
	for _, c := range []struct {
		metrics map[string]float64
		want    *StepMetric
	}{
		{map[string]float64{"bbox_AP50": 0.8, "bbox_mAP": 0.3261, "bbox_mAP_std": std, "num_subnets": 3}, &StepMetric{Name: "bbox_mAP", Value: 0.3261, Std: &std}},
		{map[string]float64{"accuracy_top-5": 99, "accuracy_top-1": 95.06}, &StepMetric{Name: "accuracy_top-1", Value: 95.06}},
		{map[string]float64{"b": 2, "a": 1}, &StepMetric{Name: "a", Value: 1}},
		{map[string]float64{}, nil},
	} {
		if got := MainMetric(c.metrics); !reflect.DeepEqual(got, c.want) {
			t.Errorf("MainMetric(%v) = %+v, want %+v", c.metrics, got, c.want)
		}
	}
	m := MainMetric(map[string]float64{"bbox_mAP": 0.32614, "bbox_mAP_std": std})
	if got, want := m.String(), "bbox_mAP 0.3261 ± 0.0150"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
