package search

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/runners"
)

// toySpace is n blocks of three ops each (3^n subnets).
func toySpace(t *testing.T, n int) *mutables.Space {
	t.Helper()
	var blocks []mutables.Block
	for i := range n {
		blocks = append(blocks, mutables.Block{ID: fmt.Sprintf("block_%d", i), Choices: []string{"a", "b", "c"}})
	}
	s, err := mutables.NewSpace(blocks)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// toyCost: op a costs 100 FLOPs, b 200, c 300 (params 1, 2, 3 per block).
func toyCost(sub mutables.Subnet) (Cost, error) {
	var c Cost
	for _, op := range sub {
		k := int64(op[0]-'a') + 1
		c.FLOPs += 100 * k
		c.Params += k
	}
	return c, nil
}

// toyScorer scores a subnet by a coarse function of its ops, so many
// subnets tie; it fails at call failAt (1-based) to stand for a kill, and
// records every subnet it scored.
type toyScorer struct {
	space  *mutables.Space
	calls  int
	failAt int
	scored []string
}

var errKilled = errors.New("killed")

func (s *toyScorer) Score(_ context.Context, sub mutables.Subnet) ([]runners.NamedValue, error) {
	s.calls++
	if s.calls == s.failAt {
		return nil, errKilled
	}
	s.scored = append(s.scored, s.space.Key(sub))
	score := 0.0
	for i, b := range s.space.Blocks {
		if sub[b.ID] == "b" {
			score += float64(1 + i%2)
		}
	}
	return []runners.NamedValue{{Name: "accuracy_top-1", Value: score}, {Name: "accuracy_top-5", Value: 100}}, nil
}

// toyOptions is a small search: 3 epochs of 8, top 3, constrained.
func toyOptions() EvolutionOptions {
	var o EvolutionOptions
	o.Defaults()
	o.CandidatePoolSize, o.CandidateTopK, o.MaxEpoch = 8, 3, 3
	o.NumMutation, o.NumCrossover, o.MutateProb = 3, 3, 0.3
	o.Constraints = "flops <= 1300"
	o.RandomBaseline = 5
	return o
}

func toyEnv(t *testing.T, space *mutables.Space, dir string, sc Scorer) *Env {
	t.Helper()
	return &Env{Space: space, Measure: toyCost, Scorer: sc, WorkDir: dir, Seed: 11,
		Now: func() time.Time { return time.Date(2026, 11, 27, 8, 5, 0, 0, time.UTC) }}
}

func mustEvolution(t *testing.T, o EvolutionOptions) *Evolution {
	t.Helper()
	e, err := NewEvolution(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// summary is what two searches must agree on: every candidate's identity,
// origin, epoch and score in order, and the top-k of every epoch.
func summary(st *State) string {
	var sb strings.Builder
	for _, c := range st.Candidates {
		fmt.Fprintf(&sb, "%d %s %s %d %g %d %d\n", c.Index, c.Key, c.Origin, c.Epoch, c.Score, c.FLOPs, c.Params)
	}
	fmt.Fprintf(&sb, "top-k %v baseline %d done %v", st.TopK, len(st.Baseline), st.Done)
	return sb.String()
}

func readState(t *testing.T, dir string) *State {
	t.Helper()
	st, err := LoadState(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestEvolutionSearch(t *testing.T) {
	space := toySpace(t, 6)
	dir := t.TempDir()
	sc := &toyScorer{space: space}
	e := mustEvolution(t, toyOptions())
	res, err := e.Search(context.Background(), toyEnv(t, space, dir, sc))
	if err != nil {
		t.Fatal(err)
	}
	st := readState(t, dir)
	if !st.Done || st.Epoch != 3 || len(st.TopK) != 3 {
		t.Fatalf("state: done %v, epoch %d, %d top-k lists; want done after 3 epochs", st.Done, st.Epoch, len(st.TopK))
	}

	// No subnet scored twice, every candidate allowed, 8 per epoch.
	seen := map[string]bool{}
	perEpoch := map[int]int{}
	for _, k := range sc.scored {
		if seen[k] {
			t.Errorf("subnet %s was scored twice", k)
		}
		seen[k] = true
	}
	for i, c := range st.Candidates {
		if c.Index != i {
			t.Errorf("candidate %d has index %d", i, c.Index)
		}
		if want, _ := toyCost(c.Subnet); c.Cost != want || c.FLOPs > 1300 {
			t.Errorf("candidate %s costs %+v, want %+v within flops <= 1300", c.Key, c.Cost, want)
		}
		if space.Key(c.Subnet) != c.Key {
			t.Errorf("candidate key %s does not match its subnet", c.Key)
		}
		perEpoch[c.Epoch]++
	}
	if want := map[int]int{1: 8, 2: 8, 3: 8, 0: len(sc.scored) - 24}; !reflect.DeepEqual(perEpoch, want) {
		t.Errorf("candidates per epoch %v, want %v", perEpoch, want)
	}
	if len(sc.scored) != len(st.Candidates) {
		t.Errorf("scored %d subnets but the state holds %d", len(sc.scored), len(st.Candidates))
	}
	origins := map[string]int{}
	for _, c := range st.Candidates[8:24] {
		origins[c.Origin]++
	}
	if origins[OriginMutation] == 0 || origins[OriginCrossover] == 0 {
		t.Errorf("epochs 2 and 3 bred no children: %v", origins)
	}

	// Top-k after each epoch: the best 3 of everything evaluated by then,
	// ties in evaluation order, ties kept.
	for ep, keys := range st.TopK {
		var upTo []Candidate
		for _, c := range st.Candidates {
			if c.Epoch >= 1 && c.Epoch <= ep+1 {
				upTo = append(upTo, c)
			}
		}
		sort.SliceStable(upTo, func(i, j int) bool { return upTo[i].Score > upTo[j].Score })
		var want []string
		for _, c := range upTo[:3] {
			want = append(want, c.Key)
		}
		if !reflect.DeepEqual(keys, want) {
			t.Errorf("top-k after epoch %d = %v, want %v", ep+1, keys, want)
		}
	}
	best := st.Candidates[0]
	for _, c := range st.Candidates {
		if c.Origin != OriginBaseline && c.Score > best.Score {
			best = c
		}
	}
	if res.Best.Key != best.Key {
		t.Errorf("best %s (score %g), want the first of the highest scores, %s (%g)", res.Best.Key, res.Best.Score, best.Key, best.Score)
	}

	// Outputs.
	for _, p := range []string{res.BestSubnetFile, filepath.Join(dir, "final_subnet_20261127_0805.yaml")} {
		sub, err := mutables.ReadSubnetFile(p, space)
		if err != nil {
			t.Fatal(err)
		}
		if space.Key(sub) != best.Key {
			t.Errorf("%s holds %s, want %s", p, space.Key(sub), best.Key)
		}
	}
	checkCandidateLog(t, dir, st)
	checkReport(t, dir, st, best)
	f, err := os.Open(filepath.Join(dir, PlotFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", PlotFile, err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
		t.Errorf("plot is %v, too small", b)
	}
}

// checkCandidateLog compares the JSON lines with the state's candidates.
func checkCandidateLog(t *testing.T, dir string, st *State) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, CandidatesFile))
	if err != nil {
		t.Fatal(err)
	}
	var got []Candidate
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var c Candidate
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("candidate log line %q: %v", sc.Text(), err)
		}
		got = append(got, c)
	}
	if len(got) != len(st.Candidates) {
		t.Fatalf("candidate log has %d lines, the state %d candidates", len(got), len(st.Candidates))
	}
	for i := range got {
		g, w := got[i], st.Candidates[i]
		if g.Key != w.Key || g.Score != w.Score || g.Epoch != w.Epoch || g.Origin != w.Origin || g.Cost != w.Cost || !reflect.DeepEqual(g.Subnet, w.Subnet) {
			t.Errorf("candidate log line %d = %+v, want %+v", i, g, w)
		}
	}
}

// checkReport recomputes the report's numbers from the state.
func checkReport(t *testing.T, dir string, st *State, best Candidate) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Best.Key != best.Key || rep.Best.Score != best.Score || rep.Best.FLOPs != best.FLOPs || rep.Best.Params != best.Params {
		t.Errorf("report best %+v, want %+v", rep.Best, best)
	}
	if rep.Constraints != "flops <= 1300" || rep.ScoreKey != "accuracy_top-1" || rep.Evaluated != len(st.Candidates) || len(rep.TopK) != 3 {
		t.Errorf("report header %q %q %d evaluated %d top-k", rep.Constraints, rep.ScoreKey, rep.Evaluated, len(rep.TopK))
	}
	b := rep.RandomBaseline
	if b == nil || b.Num != 5 || len(b.Scores) != 5 {
		t.Fatalf("report baseline %+v, want 5 scores", b)
	}
	keys := map[string]bool{}
	var scores []float64
	for _, c := range st.Baseline {
		if c.FLOPs > 1300 {
			t.Errorf("baseline subnet %s breaks the constraint (flops %d)", c.Key, c.FLOPs)
		}
		if keys[c.Key] {
			t.Errorf("baseline subnet %s drawn twice", c.Key)
		}
		keys[c.Key] = true
		for _, d := range st.Candidates {
			if d.Key == c.Key {
				scores = append(scores, d.Score)
			}
		}
	}
	if !reflect.DeepEqual(scores, b.Scores) {
		t.Fatalf("baseline scores %v, want %v", b.Scores, scores)
	}
	mean, sq, hi, better := 0.0, 0.0, math.Inf(-1), 0
	for _, s := range scores {
		mean += s / 5
		hi = math.Max(hi, s)
		if s > best.Score {
			better++
		}
	}
	for _, s := range scores {
		sq += (s - mean) * (s - mean)
	}
	if math.Abs(b.Mean-mean) > 1e-12 || math.Abs(b.Std-math.Sqrt(sq/4)) > 1e-12 || b.Max != hi || b.BetterThanBest != better {
		t.Errorf("baseline mean %g std %g max %g better %d, want %g %g %g %d", b.Mean, b.Std, b.Max, b.BetterThanBest, mean, math.Sqrt(sq/4), hi, better)
	}
}

// TestEvolutionResumeAfterKill stops the search at every evaluation in
// turn, resumes it from the saved state, and expects exactly the
// uninterrupted search's candidates, top-k and best subnet, with no
// finished candidate scored again.
func TestEvolutionResumeAfterKill(t *testing.T) {
	space := toySpace(t, 6)
	o := toyOptions()
	refDir := t.TempDir()
	ref := &toyScorer{space: space}
	refRes, err := mustEvolution(t, o).Search(context.Background(), toyEnv(t, space, refDir, ref))
	if err != nil {
		t.Fatal(err)
	}
	want := summary(readState(t, refDir))
	for kill := 1; kill <= ref.calls; kill++ {
		dir := t.TempDir()
		first := &toyScorer{space: space, failAt: kill}
		if _, err := mustEvolution(t, o).Search(context.Background(), toyEnv(t, space, dir, first)); !errors.Is(err, errKilled) {
			t.Fatalf("kill at %d: search returned %v", kill, err)
		}
		st := readState(t, dir)
		if len(st.Candidates) != kill-1 {
			t.Fatalf("kill at %d: the state holds %d candidates, want %d", kill, len(st.Candidates), kill-1)
		}
		if kill%2 == 0 {
			// A kill between a state save and its log line.
			truncateLastLine(t, filepath.Join(dir, CandidatesFile))
		}
		second := &toyScorer{space: space}
		env := toyEnv(t, space, dir, second)
		env.Seed = 999 // a resumed search keeps the state's seed
		env.Resume = st
		res, err := mustEvolution(t, o).Search(context.Background(), env)
		if err != nil {
			t.Fatalf("kill at %d: resume: %v", kill, err)
		}
		for _, k := range second.scored {
			for _, done := range first.scored {
				if k == done {
					t.Errorf("kill at %d: the resumed search scored %s again", kill, k)
				}
			}
		}
		final := readState(t, dir)
		if got := summary(final); got != want {
			t.Fatalf("kill at %d: resumed search differs from the uninterrupted one:\n%s\nwant\n%s", kill, got, want)
		}
		if res.Best.Key != refRes.Best.Key {
			t.Errorf("kill at %d: best %s, want %s", kill, res.Best.Key, refRes.Best.Key)
		}
		checkCandidateLog(t, dir, final)
	}
}

// TestEvolutionResumeFinished: resuming a finished search evaluates
// nothing and rewrites the same outputs, final subnet file included.
func TestEvolutionResumeFinished(t *testing.T) {
	space := toySpace(t, 6)
	dir := t.TempDir()
	first, err := mustEvolution(t, toyOptions()).Search(context.Background(), toyEnv(t, space, dir, &toyScorer{space: space}))
	if err != nil {
		t.Fatal(err)
	}
	want := summary(readState(t, dir))
	env := toyEnv(t, space, dir, &toyScorer{space: space, failAt: 1})
	env.Now = func() time.Time { return time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) }
	env.Resume = readState(t, dir)
	again, err := mustEvolution(t, toyOptions()).Search(context.Background(), env)
	if err != nil {
		t.Fatalf("resuming a finished search scored a subnet: %v", err)
	}
	if again.FinalSubnetFile != first.FinalSubnetFile || again.Best.Key != first.Best.Key || summary(readState(t, dir)) != want {
		t.Errorf("resumed finished search: %s best %s, want %s best %s and the same state", again.FinalSubnetFile, again.Best.Key, first.FinalSubnetFile, first.Best.Key)
	}
	if finals, _ := filepath.Glob(filepath.Join(dir, "final_subnet_*.yaml")); len(finals) != 1 {
		t.Errorf("final subnet files %v, want one", finals)
	}
}

func truncateLastLine(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) >= 2 {
		data = []byte(strings.Join(lines[:len(lines)-2], ""))
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEvolutionResumeRefusesOtherSettings(t *testing.T) {
	space := toySpace(t, 6)
	dir := t.TempDir()
	o := toyOptions()
	if _, err := mustEvolution(t, o).Search(context.Background(), toyEnv(t, space, dir, &toyScorer{space: space, failAt: 3})); !errors.Is(err, errKilled) {
		t.Fatal(err)
	}
	o.Constraints = map[string]any{"flops": 1400}
	env := toyEnv(t, space, dir, &toyScorer{space: space})
	env.Resume = readState(t, dir)
	_, err := mustEvolution(t, o).Search(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), `searcher.constraints = "flops <= 1300", but the config now says "flops < 1400"`) {
		t.Fatalf("resume with another constraint: %v", err)
	}
	env.Space = toySpace(t, 7)
	_, err = mustEvolution(t, toyOptions()).Search(context.Background(), env)
	if err == nil || !strings.Contains(err.Error(), "another search space") {
		t.Fatalf("resume over another space: %v", err)
	}
}

func TestEvolutionSpaceTooSmall(t *testing.T) {
	space := toySpace(t, 2) // 9 subnets
	o := toyOptions()
	o.Constraints = nil
	o.CandidatePoolSize, o.NumMutation, o.NumCrossover, o.CandidateTopK = 4, 1, 1, 2
	_, err := mustEvolution(t, o).Search(context.Background(), toyEnv(t, space, t.TempDir(), &toyScorer{space: space}))
	if err == nil || !strings.Contains(err.Error(), "epoch 3: found only 1 of the") || !strings.Contains(err.Error(), "(9 in all)") {
		t.Fatalf("a space of 9 subnets for 3 pools of 4: %v", err)
	}
}

// TestEvolutionKeepsTies: with every subnet scoring the same, the top-k
// still holds k subnets (mmrazor's dict keyed by score kept one).
func TestEvolutionKeepsTies(t *testing.T) {
	space := toySpace(t, 4)
	o := toyOptions()
	o.RandomBaseline, o.MaxEpoch, o.Constraints = 0, 1, nil
	dir := t.TempDir()
	if _, err := mustEvolution(t, o).Search(context.Background(), toyEnv(t, space, dir, constScorer{})); err != nil {
		t.Fatal(err)
	}
	st := readState(t, dir)
	want := []string{st.Candidates[0].Key, st.Candidates[1].Key, st.Candidates[2].Key}
	if !reflect.DeepEqual(st.TopK[0], want) {
		t.Errorf("top-k of equal scores %v, want the first three evaluated %v", st.TopK[0], want)
	}
	if _, err := os.Stat(filepath.Join(dir, ReportFile)); err != nil {
		t.Fatal(err)
	}
}

type constScorer struct{}

func (constScorer) Score(context.Context, mutables.Subnet) ([]runners.NamedValue, error) {
	return []runners.NamedValue{{Name: "accuracy_top-1", Value: 50}}, nil
}

func TestEvolutionScoreKeyMissing(t *testing.T) {
	space := toySpace(t, 4)
	o := toyOptions()
	o.ScoreKey = "bbox_mAP"
	_, err := mustEvolution(t, o).Search(context.Background(), toyEnv(t, space, t.TempDir(), constScorer{}))
	if err == nil || !strings.Contains(err.Error(), `score_key "bbox_mAP" is not among the metrics of the evaluation (accuracy_top-1)`) {
		t.Fatalf("missing score key: %v", err)
	}
}

func TestEvolutionOptionsFromConfig(t *testing.T) {
	cases := []struct {
		node map[string]any
		err  string
	}{
		{map[string]any{"candidate_pool_size": 10, "num_mutation": 6, "num_crossover": 5}, "num_mutation (6) plus num_crossover (5) exceeds candidate_pool_size (10)"},
		{map[string]any{"candidate_top_k": 0}, "candidate_top_k must be at least 1"},
		{map[string]any{"max_epoch": 0}, "max_epoch must be at least 1"},
		{map[string]any{"mutate_prob": 1.5}, "mutate_prob must be in [0, 1]"},
		{map[string]any{"constraints": "flops <"}, `searcher (searcher EvolutionSearcher): constraints: "flops <" is not a valid condition (unexpected token EOF (1:7))`},
		{map[string]any{"constraints": "flops <"}, `"flops <" is not a valid condition`},
		{map[string]any{"constraints": map[string]any{"latency": 3}}, "constraints.latency: unknown quantity; an upper bound can be set on flops, params"},
		{map[string]any{"bn_mode": "recalibrate"}, "bn_mode recalibrate needs recalibrate_batches"},
		{map[string]any{"bn_mode": "frozen"}, `bn_mode "frozen" is unknown`},
		{map[string]any{"recalibrate_batches": 5}, "recalibrate_batches is set but bn_mode is \"\""},
		{map[string]any{"random_baseline": -1}, "random_baseline must not be negative"},
		{map[string]any{"candidate_pool": 5}, `searcher: unknown key "candidate_pool"`},
		{map[string]any{"metric_options": map[string]any{"topk": 1}}, "metric_options: razor's metrics take no options"},
		{map[string]any{"bn_mode": "recalibrate", "recalibrate_batches": 4, "constraints": []any{"flops < 3e8", "params < 4e6"}, "eval_split": map[string]any{"from": "train", "num": 100}}, ""},
	}
	for _, tc := range cases {
		node := map[string]any{"type": "mmrazor.EvolutionSearcher"}
		for k, v := range tc.node {
			node[k] = v
		}
		s, err := Searchers.Build(node, "searcher", nil)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.node, err)
				continue
			}
			o := s.(*Evolution).Options()
			if o.CandidatePoolSize != 50 || o.MaxEpoch != 20 || o.NumMutation != 25 || o.MutateProb != 0.1 || o.RecalibrateBatches != 4 {
				t.Errorf("%v: options %+v lost a default or a key", tc.node, o)
			}
			if got := s.(*Evolution).Constraint().String(); got != "(flops < 3e8) && (params < 4e6)" {
				t.Errorf("constraint %q", got)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%v: error %v, want one containing %q", tc.node, err, tc.err)
		}
	}
}

// TestShippedSearchConfigsBuild builds the searcher of every search config.
func TestShippedSearchConfigsBuild(t *testing.T) {
	files, err := filepath.Glob("../../configs/nas/*/*evolution_search*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("search configs: %v %v", files, err)
	}
	for _, f := range files {
		cfg, err := config.Load(f, config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		node, _ := cfg.Get("searcher")
		if _, err := Searchers.Build(node, "searcher", nil); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// Reference subnets are scored after the baseline with the same scorer
// (one the search evaluated keeps its score and is not scored again),
// reported by name with whether they meet the constraint, never ranked,
// and a search killed while scoring them resumes to the same state.
func TestEvolutionReferenceSubnets(t *testing.T) {
	space := toySpace(t, 6)
	dir := t.TempDir()
	allOf := func(op string) mutables.Subnet {
		sub := mutables.Subnet{}
		for _, b := range space.Blocks {
			sub[b.ID] = op
		}
		return sub
	}
	// all b scores 9, the most, and the toy search finds it by crossover;
	// all c costs 1800 FLOPs, over the bound of 1300, and scores 0.
	files := map[string]string{}
	for name, op := range map[string]string{"published": "b", "heavy": "c"} {
		files[name] = filepath.Join(dir, name+".yaml")
		if err := mutables.WriteSubnetFile(files[name], allOf(op)); err != nil {
			t.Fatal(err)
		}
	}
	o := toyOptions()
	o.ReferenceSubnets = files
	refDir := t.TempDir()
	sc := &toyScorer{space: space}
	res, err := mustEvolution(t, o).Search(context.Background(), toyEnv(t, space, refDir, sc))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(refDir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, r := range rep.References {
		got += fmt.Sprintf("%s %s allowed=%v score=%g flops=%d; ", r.Name, r.Origin, r.Allowed, r.Score, r.FLOPs)
	}
	if want := "heavy reference allowed=false score=0 flops=1800; published crossover allowed=true score=9 flops=1200; "; got != want {
		t.Fatalf("references %s\nwant %s", got, want)
	}
	if n := strings.Count(strings.Join(sc.scored, " ")+" ", space.Key(allOf("b"))+" "); n != 1 {
		t.Fatalf("the published subnet was scored %d times, want once (by the search)", n)
	}
	if res.Best.Key != space.Key(allOf("b")) {
		t.Fatalf("best %s, want the all-b subnet the search found", res.Best.Key)
	}
	// A reference that outscores every candidate still does not rank.
	top := rank([]Candidate{{Key: "x", Score: 1, Origin: OriginRandom}, {Key: "r", Score: 5, Origin: OriginReference}}, 2)
	if len(top) != 1 || top[0].Key != "x" {
		t.Fatalf("rank kept a reference: %v", top)
	}
	if info, err := os.Stat(filepath.Join(refDir, PlotFile)); err != nil || info.Size() == 0 {
		t.Fatalf("plot: %v", err)
	}
	want := summary(readState(t, refDir))
	// Kill at each of the two reference evaluations, then resume.
	for kill := sc.calls - 1; kill <= sc.calls; kill++ {
		dir := t.TempDir()
		if _, err := mustEvolution(t, o).Search(context.Background(), toyEnv(t, space, dir, &toyScorer{space: space, failAt: kill})); !errors.Is(err, errKilled) {
			t.Fatalf("kill at %d: search returned %v", kill, err)
		}
		env := toyEnv(t, space, dir, &toyScorer{space: space})
		env.Resume = readState(t, dir)
		if _, err := mustEvolution(t, o).Search(context.Background(), env); err != nil {
			t.Fatalf("kill at %d: resume: %v", kill, err)
		}
		if got := summary(readState(t, dir)); got != want {
			t.Fatalf("kill at %d: resumed search differs:\n%s\nwant\n%s", kill, got, want)
		}
	}
	// References added to a finished search: resuming it scores just them.
	plain := toyOptions()
	plainDir := t.TempDir()
	if _, err := mustEvolution(t, plain).Search(context.Background(), toyEnv(t, space, plainDir, &toyScorer{space: space})); err != nil {
		t.Fatal(err)
	}
	later := &toyScorer{space: space}
	env := toyEnv(t, space, plainDir, later)
	env.Resume = readState(t, plainDir)
	if _, err := mustEvolution(t, o).Search(context.Background(), env); err != nil {
		t.Fatalf("resuming a finished search with references added: %v", err)
	}
	if len(later.scored) != 1 || later.scored[0] != space.Key(allOf("c")) {
		t.Fatalf("the resumed search scored %v, want only the reference the search had not evaluated", later.scored)
	}
	o.ReferenceSubnets = map[string]string{"missing": filepath.Join(dir, "nope.yaml")}
	if _, err := mustEvolution(t, o).Search(context.Background(), toyEnv(t, space, t.TempDir(), &toyScorer{space: space})); err == nil || !strings.Contains(err.Error(), "searcher.reference_subnets.missing: subnet file") {
		t.Fatalf("a missing reference file: %v", err)
	}
}
