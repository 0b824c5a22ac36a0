package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/runners/search"
)

// Results are what a pipeline ends with, as mmrazor's README tables:
// every tested model with its size and metrics, and every search's answer
// against random subnets under the same constraint. The tools' Summarize
// functions fill them, so a tool of any name can add rows.
type Results struct {
	// Steps are every step's time, in step order.
	Steps    []StepTime       `json:"steps"`
	Tested   []TestedModel    `json:"tested"`
	Searched []SearchedSubnet `json:"searched"`
	// Figures are the steps' pictures, in step order.
	Figures []Figure `json:"figures"`
}

// StepTime is how long a step's run took (the run that finished it; a
// resumed step counts its last run only).
type StepTime struct {
	Step    string  `json:"step"`
	Tool    string  `json:"tool"`
	Seconds float64 `json:"seconds"`
	// Metric is the step's headline number, when its tool gives one.
	Metric *StepMetric `json:"metric,omitempty"`
}

// StepMetric is the number a step is judged by: a training run's last
// evaluation, a search's best score, a test's main metric.
type StepMetric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	// Std is the spread over the subnets a supernet was evaluated on; nil
	// for one model.
	Std *float64 `json:"std,omitempty"`
	// Note says what the value is when its name does not (the best of a
	// search's subnets).
	Note string `json:"note,omitempty"`
}

// String writes the metric as the steps table shows it.
func (m *StepMetric) String() string {
	s := m.Name + " " + num(m.Value, m.Name)
	if m.Std != nil {
		s += " ± " + num(*m.Std, m.Name)
	}
	if m.Note != "" {
		s += " (" + m.Note + ")"
	}
	return s
}

// SearchedSubnet is a search step's best subnet, scored on the trained
// supernet, with the scores of the random subnets the search drew under
// the same constraint: whether the search beat chance.
type SearchedSubnet struct {
	Step string `json:"step"`
	// Subnet is best_subnet.yaml.
	Subnet string `json:"subnet"`
	// ScoreKey names Score, the best subnet's supernet score.
	ScoreKey    string  `json:"score_key"`
	Score       float64 `json:"score"`
	Params      int64   `json:"params"`
	FLOPs       int64   `json:"flops"`
	Constraints string  `json:"constraints"`
	// Evaluated counts the distinct subnets the search scored.
	Evaluated int `json:"evaluated"`
	// Random is the search report's random baseline without its
	// candidates, which the report keeps; nil when the search drew no
	// random subnets.
	Random *search.Baseline `json:"random,omitempty"`
	// References are the search's reference subnets (such as a published
	// subnet) scored in the same supernet.
	References []SearchReference `json:"references,omitempty"`
}

// SearchReference is a reference subnet's supernet score.
type SearchReference struct {
	Name    string  `json:"name"`
	Score   float64 `json:"score"`
	Params  int64   `json:"params"`
	FLOPs   int64   `json:"flops"`
	Allowed bool    `json:"allowed"`
}

// TestedModel is one tested model: a row of the results table.
type TestedModel struct {
	Step string `json:"step"`
	// Subnet is the subnet file the model was built with
	// (algorithm.mutable_cfg); empty for a supernet.
	Subnet     string `json:"subnet"`
	Checkpoint string `json:"checkpoint"`
	// Params and FLOPs are counted over the algorithm's scope, as get_flops
	// counts them, at Shape (C, H, W); Scope says what that scope holds.
	Params int64  `json:"params"`
	FLOPs  int64  `json:"flops"`
	Scope  string `json:"scope,omitempty"`
	Shape  []int  `json:"shape,omitempty"`
	// Model is the count over the whole model (get_flops --scope model)
	// when the algorithm's scope is narrower (DetNAS counts the backbone
	// without BN); nil when the two are the same.
	Model   *Cost              `json:"model,omitempty"`
	Metrics map[string]float64 `json:"metrics"`
}

// Cost is a model's params and FLOPs over a scope.
type Cost struct {
	Params int64  `json:"params"`
	FLOPs  int64  `json:"flops"`
	Scope  string `json:"scope"`
}

// results gathers what the finished steps' tools summarize, in step order.
func (p *Runner) results(records []*Record) (*Results, error) {
	res := &Results{Steps: []StepTime{}, Tested: []TestedModel{}, Searched: []SearchedSubnet{}, Figures: []Figure{}}
	for _, rec := range records {
		st := StepTime{Step: rec.Step, Tool: rec.Tool, Seconds: rec.Seconds}
		summarize := p.Tools[rec.Tool].Summarize
		if summarize == nil {
			res.Steps = append(res.Steps, st)
			continue
		}
		sum, err := summarize(rec)
		if err != nil {
			return nil, fmt.Errorf("results of step %s: %w", rec.Step, err)
		}
		st.Metric = sum.Metric
		if st.Metric == nil && sum.Tested != nil {
			st.Metric = MainMetric(sum.Tested.Metrics)
		}
		if st.Metric == nil && sum.Searched != nil {
			st.Metric = &StepMetric{Name: sum.Searched.ScoreKey, Value: sum.Searched.Score,
				Note: fmt.Sprintf("best of %d subnets", sum.Searched.Evaluated)}
		}
		res.Steps = append(res.Steps, st)
		if sum.Tested != nil {
			res.Tested = append(res.Tested, *sum.Tested)
		}
		if sum.Searched != nil {
			res.Searched = append(res.Searched, *sum.Searched)
		}
		res.Figures = append(res.Figures, sum.Figures...)
	}
	return res, nil
}

// MainMetrics are the metrics a model is judged by, first found first:
// COCO bbox mAP for a detector, top-1 accuracy for a classifier.
var MainMetrics = []string{"bbox_mAP", "accuracy_top-1"}

// MainMetric picks the headline of metrics: the first of MainMetrics it
// holds (with its "_std" spread when a supernet was averaged over
// subnets), else the first by name; nil for no metrics.
func MainMetric(metrics map[string]float64) *StepMetric {
	if len(metrics) == 0 {
		return nil
	}
	name := ""
	for _, k := range MainMetrics {
		if _, ok := metrics[k]; ok {
			name = k
			break
		}
	}
	if name == "" {
		keys := slices.Sorted(maps.Keys(metrics))
		name = keys[0]
	}
	m := &StepMetric{Name: name, Value: metrics[name]}
	if std, ok := metrics[name+"_std"]; ok {
		m.Std = &std
	}
	return m
}

// SearchSummary is the Summarize of a tool whose outputs named subnet and
// report are a search's best_subnet.yaml and search_report.json, as
// runners/search writes them: it makes the step a row of the searched
// subnets.
func SearchSummary(subnet, report string) func(rec *Record) (Summary, error) {
	return func(rec *Record) (Summary, error) {
		var rep search.Report
		b, err := os.ReadFile(rec.Outputs[report])
		if err != nil {
			return Summary{}, err
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			return Summary{}, fmt.Errorf("search report %s: %w", rec.Outputs[report], err)
		}
		out := &SearchedSubnet{Step: rec.Step, Subnet: rec.Outputs[subnet], ScoreKey: rep.ScoreKey, Score: rep.Best.Score,
			Params: rep.Best.Params, FLOPs: rep.Best.FLOPs, Constraints: rep.Constraints, Evaluated: rep.Evaluated}
		if b := rep.RandomBaseline; b != nil {
			random := *b
			random.Candidates = nil
			out.Random = &random
		}
		for _, r := range rep.References {
			out.References = append(out.References, SearchReference{Name: r.Name, Score: r.Score, Params: r.Params, FLOPs: r.FLOPs, Allowed: r.Allowed})
		}
		sum := Summary{Searched: out}
		if plot := filepath.Join(filepath.Dir(rec.Outputs[report]), search.PlotFile); isFile(plot) {
			sum.Figures = []Figure{{Step: rec.Step, Caption: "search scores against FLOPs", Path: plot}}
		}
		return sum, nil
	}
}

// markdown renders the results as Markdown tables, paths shown relative to
// the pipeline's work dir.
func (r *Results) markdown(workDir string) string {
	var b strings.Builder
	r.stepsTable(&b)
	b.WriteString("\n## Tested models\n\n")
	r.testedTable(&b, workDir)
	if len(r.Searched) > 0 {
		b.WriteString("\n## Searched subnets against random subnets\n\n")
		r.searchedTable(&b, workDir)
	}
	if len(r.Figures) > 0 {
		b.WriteString("\n## Pictures\n\n")
		for _, f := range r.Figures {
			fmt.Fprintf(&b, "%s, %s ([%s](%s)):\n\n![%s](%s)\n\n", f.Step, f.Caption, relTo(workDir, f.Path), relTo(workDir, f.Path), f.Caption, relTo(workDir, f.Path))
		}
	}
	return b.String()
}

func (r *Results) stepsTable(b *strings.Builder) {
	b.WriteString("## Steps\n\n| Step | Tool | Time (min:s) | Metric |\n|---|---|---:|---|\n")
	var total float64
	for _, s := range r.Steps {
		metric := "-"
		if s.Metric != nil {
			metric = s.Metric.String()
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", s.Step, s.Tool, minSec(s.Seconds), metric)
		total += s.Seconds
	}
	fmt.Fprintf(b, "| all | | %s | |\n", minSec(total))
}

// minSec writes seconds as m:ss.
func minSec(s float64) string {
	t := int(math.Round(s))
	return fmt.Sprintf("%d:%02d", t/60, t%60)
}

// num writes a metric or score named key: mmdet's detection metrics
// (bbox_*) are fractions and get four decimals (0.3869), razor's
// accuracies are percentages and get two (97.28).
func num(v float64, key string) string {
	if strings.HasPrefix(key, "bbox_") {
		return fmt.Sprintf("%.4f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func (r *Results) testedTable(b *strings.Builder, workDir string) {
	if len(r.Tested) == 0 {
		b.WriteString("No test step ran.\n")
		return
	}
	var metrics []string
	for _, t := range r.Tested {
		for m := range t.Metrics {
			// A detector's recalls stay in results.json; the table keeps
			// the APs, as mmdet's model-zoo tables do.
			if strings.HasPrefix(m, "bbox_AR") {
				continue
			}
			if !slices.Contains(metrics, m) {
				metrics = append(metrics, m)
			}
		}
	}
	slices.Sort(metrics)
	model := slices.ContainsFunc(r.Tested, func(t TestedModel) bool { return t.Model != nil })
	b.WriteString("| Step | Subnet | Params (M) | FLOPs (M) |")
	if model {
		b.WriteString(" Model params (M) | Model FLOPs (G) |")
	}
	for _, m := range metrics {
		b.WriteString(" " + m + " |")
	}
	b.WriteString(" Checkpoint |\n|---|---|---:|---:|")
	if model {
		b.WriteString("---:|---:|")
	}
	b.WriteString(strings.Repeat("---:|", len(metrics)) + "---|\n")
	var scopes []string
	for _, t := range r.Tested {
		subnet := "supernet"
		if t.Subnet != "" {
			subnet = relTo(workDir, t.Subnet)
		}
		fmt.Fprintf(b, "| %s | %s | %.3f | %.3f |", t.Step, subnet, float64(t.Params)/1e6, float64(t.FLOPs)/1e6)
		if model {
			if t.Model != nil {
				fmt.Fprintf(b, " %.3f | %.3f |", float64(t.Model.Params)/1e6, float64(t.Model.FLOPs)/1e9)
			} else {
				b.WriteString(" - | - |")
			}
		}
		for _, m := range metrics {
			if v, ok := t.Metrics[m]; ok {
				fmt.Fprintf(b, " %s |", num(v, m))
			} else {
				b.WriteString(" - |")
			}
		}
		fmt.Fprintf(b, " %s |\n", relTo(workDir, t.Checkpoint))
		if t.Scope != "" {
			s := fmt.Sprintf("%s: params and FLOPs over %s, at input %s", t.Step, t.Scope, shapeString(t.Shape))
			if t.Model != nil {
				s += fmt.Sprintf("; model params and FLOPs over %s", t.Model.Scope)
			}
			scopes = append(scopes, s+".")
		}
	}
	if len(scopes) > 0 {
		b.WriteString("\n")
		for _, s := range scopes {
			b.WriteString(s + "\n")
		}
	}
}

// shapeString writes a (C, H, W) shape as 3x256x256.
func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, "x")
}

// searchedTable compares each search's best subnet with its random ones:
// the supernet scores of both, under the same constraint.
func (r *Results) searchedTable(b *strings.Builder, workDir string) {
	b.WriteString("| Step | Best subnet | Params (M) | FLOPs (M) | Constraint | Supernet score | Random subnets | Random mean ± std | Random min / max | Random above best |\n")
	b.WriteString("|---|---|---:|---:|---|---:|---:|---:|---:|---:|\n")
	var refs bool
	for _, s := range r.Searched {
		refs = refs || len(s.References) > 0
		fmt.Fprintf(b, "| %s | %s | %.3f | %.3f | %s | %s (%s) |", s.Step, relTo(workDir, s.Subnet),
			float64(s.Params)/1e6, float64(s.FLOPs)/1e6, s.Constraints, num(s.Score, s.ScoreKey), s.ScoreKey)
		if s.Random == nil {
			b.WriteString(" 0 | - | - | - |\n")
			continue
		}
		fmt.Fprintf(b, " %d | %s ± %s | %s / %s | %d of %d |\n", s.Random.Num, num(s.Random.Mean, s.ScoreKey), num(s.Random.Std, s.ScoreKey),
			num(s.Random.Min, s.ScoreKey), num(s.Random.Max, s.ScoreKey), s.Random.BetterThanBest, s.Random.Num)
	}
	if !refs {
		return
	}
	b.WriteString("\nReference subnets scored in the same supernet, the same way:\n\n")
	b.WriteString("| Step | Reference | Params (M) | FLOPs (M) | Meets the constraint | Supernet score |\n|---|---|---:|---:|---|---:|\n")
	for _, s := range r.Searched {
		for _, ref := range s.References {
			meets := "no"
			if ref.Allowed {
				meets = "yes"
			}
			fmt.Fprintf(b, "| %s | %s | %.3f | %.3f | %s | %s |\n", s.Step, ref.Name, float64(ref.Params)/1e6, float64(ref.FLOPs)/1e6, meets, num(ref.Score, s.ScoreKey))
		}
	}
}

// write saves results.md and results.json in the work dir and prints the
// Markdown to out.
func (r *Results) write(workDir string, out io.Writer) error {
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

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
