package search

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"

	"github.com/razorgo/razor/config"
)

// The files a search writes in its work dir (see the package comment).
const (
	CandidatesFile = "search_candidates.jsonl"
	BestSubnetFile = "best_subnet.yaml"
	ReportFile     = "search_report.json"
	PlotFile       = "search_scores.png"
)

// writeCandidateLog rewrites the candidate log with cands, atomically.
func writeCandidateLog(path string, cands []Candidate) error {
	var buf bytes.Buffer
	for _, c := range cands {
		if err := appendCandidate(&buf, c); err != nil {
			return err
		}
	}
	return config.WriteFileAtomic(path, buf.Bytes())
}

// appendCandidate writes c as one JSON line.
func appendCandidate(w io.Writer, c Candidate) error {
	b, err := encodeJSON(c, "")
	if err != nil {
		return fmt.Errorf("encoding candidate %s: %w", c.Key, err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing the candidate log: %w", err)
	}
	return nil
}

// encodeJSON encodes v on one line (indent "") or indented, ending in a
// newline, leaving < and > as they are so conditions stay readable.
func encodeJSON(v any, indent string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Report is search_report.json: the search's answer and what random
// subnets under the same constraint score, for comparison.
type Report struct {
	// ScoreKey names the score; Constraints is the constraint's text.
	ScoreKey    string `json:"score_key"`
	Constraints string `json:"constraints"`
	// Seed seeded the search.
	Seed uint64 `json:"seed"`
	// Epochs is the number of search epochs; Evaluated the number of
	// distinct subnets evaluated (search, baseline and reference subnets).
	Epochs    int `json:"epochs"`
	Evaluated int `json:"evaluated"`
	// Best is the best subnet the search found (its subnet is
	// best_subnet.yaml), with its score, flops and params.
	Best Candidate `json:"best"`
	// TopK is the final top-k, best first.
	TopK []Candidate `json:"top_k"`
	// RandomBaseline is absent when random_baseline is 0.
	RandomBaseline *Baseline `json:"random_baseline,omitempty"`
	// References are reference_subnets' scores, in name order.
	References []Reference `json:"references,omitempty"`
}

// Reference is a scored subnet of reference_subnets.
type Reference struct {
	Name string `json:"name"`
	// Allowed says whether it meets the search's constraint.
	Allowed bool `json:"allowed"`
	Candidate
}

// Baseline summarizes the random subnets' scores.
type Baseline struct {
	// Num is the number of random subnets; Scores are theirs, in draw order.
	Num    int       `json:"num"`
	Scores []float64 `json:"scores"`
	// Mean, Std (sample standard deviation, n-1), Min and Max of Scores.
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	// BetterThanBest counts the random subnets that score above the best
	// searched subnet.
	BetterThanBest int `json:"better_than_best"`
	// Candidates are the random subnets with their costs and scores; a
	// pipeline's results.json leaves them out, as it leaves out the top-k.
	Candidates []Candidate `json:"candidates,omitempty"`
}

// report builds the report from the finished state.
func (r *run) report(top []Candidate) Report {
	rep := Report{ScoreKey: r.e.opts.ScoreKey, Constraints: r.e.constraint.String(), Seed: r.st.Seed,
		Epochs: r.st.Epoch, Evaluated: len(r.st.Candidates), Best: top[0], TopK: top}
	for _, name := range slices.Sorted(maps.Keys(r.refs)) {
		c := r.st.Candidates[r.seen[r.env.Space.Key(r.refs[name])]]
		ok, _ := r.e.constraint.Allows(c.Cost)
		rep.References = append(rep.References, Reference{Name: name, Allowed: ok, Candidate: c})
	}
	if len(r.st.Baseline) == 0 {
		return rep
	}
	b := &Baseline{Num: len(r.st.Baseline), Min: math.Inf(1), Max: math.Inf(-1)}
	for _, c := range r.st.Baseline {
		scored := r.st.Candidates[r.seen[c.Key]]
		b.Candidates = append(b.Candidates, scored)
		b.Scores = append(b.Scores, scored.Score)
		b.Mean += scored.Score
		b.Min = math.Min(b.Min, scored.Score)
		b.Max = math.Max(b.Max, scored.Score)
		if scored.Score > top[0].Score {
			b.BetterThanBest++
		}
	}
	b.Mean /= float64(b.Num)
	if b.Num > 1 {
		for _, s := range b.Scores {
			b.Std += (s - b.Mean) * (s - b.Mean)
		}
		b.Std = math.Sqrt(b.Std / float64(b.Num-1))
	}
	rep.RandomBaseline = b
	return rep
}

// writeReport writes the report atomically.
func writeReport(path string, rep Report) error {
	b, err := encodeJSON(rep, "  ")
	if err != nil {
		return fmt.Errorf("encoding the search report: %w", err)
	}
	return config.WriteFileAtomic(path, b)
}
