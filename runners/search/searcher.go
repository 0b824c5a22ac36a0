// Package search is razor's architecture search over a trained supernet:
// the evolution searcher of mmrazor (EvolutionSearcher), the scorer that
// evaluates one subnet at a time on a data split, and Run, which wires both
// from a config the way tools/search does.
//
// Configuration (the config's `searcher:` mapping; mmrazor's keys first):
//
//	searcher:
//	  type: EvolutionSearcher
//	  candidate_pool_size: 50     # subnets evaluated per epoch
//	  candidate_top_k: 10         # parents of the next epoch's children
//	  max_epoch: 20
//	  num_mutation: 25            # children by mutation per epoch
//	  num_crossover: 25           # children by crossover per epoch
//	  mutate_prob: 0.1            # per block
//	  constraints: {flops: 330e6} # or "flops <= 330e6 && params < 4e6", or a list
//	  metrics: accuracy
//	  score_key: accuracy_top-1
//	  # razor's own keys:
//	  bn_mode: train              # train | recalibrate | eval (default: algorithm.bn_training_mode)
//	  recalibrate_batches: 20     # training batches per candidate, for bn_mode recalibrate
//	  eval_split: val             # a data.<name> split, hold_out (data.hold_out's samples),
//	                              # or {from: train, num: 5000, seed: 0}
//	  random_baseline: 20         # random subnets scored after the search (0: none)
//
// Every candidate meets the constraint, and no subnet is evaluated twice in
// a search: children that repeat a seen subnet or break the constraint are
// redrawn, up to 10 tries per wanted child as mmrazor; the pool is topped up
// with random subnets, and a space that cannot fill it is an error. The
// top-k is a ranked list over every candidate evaluated so far, ties in
// score kept in evaluation order. All randomness comes from one PCG source
// seeded by the run's seed (the random baseline has a second one).
//
// Files written in the work dir:
//
//   - search_state.json: the searcher's state (seed, epoch, pool, every
//     evaluated candidate with its score, the top-k of every epoch, the
//     random source), rewritten atomically after every candidate and every
//     epoch; --resume-from it (or --auto-resume) continues a killed search
//     without evaluating a finished candidate again, and ends where an
//     uninterrupted search would;
//   - search_candidates.jsonl: one JSON object per evaluated candidate, in
//     evaluation order: index, key, subnet, flops, params, score, metrics,
//     epoch (1-based; 0 for the random baseline), origin (random,
//     mutation, crossover or baseline) and seconds (evaluation time);
//   - final_subnet_<YYYYmmdd_HHMM>.yaml (mmrazor's name) and best_subnet.yaml
//     (a stable name): the best subnet in mmrazor 0.x's mutable_cfg format;
//   - search_report.json: the best subnet with its score, flops and params,
//     the final top-k, and the random baseline's scores with their mean,
//     std, min and max (see Report);
//   - search_scores.png: score against FLOPs for every candidate, each
//     epoch's top-k marked, the random baseline and the best subnet;
//   - the merged config and the text log (<time>.log), as training writes.
//
// It sits above the runners and the algorithms it scores through: it
// imports runners, algorithms, mutables, datasets, registry and config;
// nothing but the tools and package all (which registers its searchers)
// imports it.
package search

import (
	"context"
	"fmt"
	"time"

	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/registry"
	"github.com/razorgo/razor/runners"
)

// Searcher searches an algorithm's space for the best subnet.
type Searcher interface {
	// Evaluation says how candidates are to be scored, for the caller that
	// builds the Scorer.
	Evaluation() EvalOptions
	// Search runs (or continues) the search and writes its outputs to
	// env.WorkDir.
	Search(ctx context.Context, env *Env) (*Result, error)
}

// Searchers builds a Searcher from a config's `searcher:` mapping.
var Searchers = registry.New[Searcher]("searcher")

// Scorer evaluates one subnet of the supernet.
type Scorer interface {
	// Score selects sub and returns its metrics (accuracy_top-1 ...).
	Score(ctx context.Context, sub mutables.Subnet) ([]runners.NamedValue, error)
}

// Logger receives the search's progress lines.
type Logger interface {
	Printf(format string, args ...any)
}

// Env is what a search runs against.
type Env struct {
	// Space is the search space.
	Space *mutables.Space
	// Measure counts a subnet's cost (the algorithm's Complexity).
	Measure func(mutables.Subnet) (Cost, error)
	// Scorer evaluates candidates.
	Scorer Scorer
	// WorkDir receives the state and every output file.
	WorkDir string
	// Seed seeds a fresh search; a resumed one keeps its state's seed.
	Seed uint64
	// Resume is a saved state to continue from, nil to start afresh.
	Resume *State
	// Log receives progress lines.
	Log Logger
	// Now stamps final_subnet_<time>.yaml; nil means time.Now.
	Now func() time.Time
	// Comm spreads the candidates' evaluation over its ranks (nil: this
	// process alone). Every rank runs the same search from the same state
	// and seed; each scores its share of a group of candidates, the scores
	// are gathered, and rank 0 alone writes the state and the outputs.
	Comm dist.Comm
}

// Result is where a finished search left its answer.
type Result struct {
	// Best is the best candidate the search found.
	Best Candidate
	// BestSubnetFile and FinalSubnetFile are best_subnet.yaml and
	// final_subnet_<time>.yaml in the work dir.
	BestSubnetFile, FinalSubnetFile string
	// ReportFile is search_report.json.
	ReportFile string
	// Evaluated counts the subnets evaluated, over every run of the search.
	Evaluated int
}

// Candidate is one subnet the search evaluated.
type Candidate struct {
	// Index is the candidate's place in evaluation order, from 0.
	Index int `json:"index"`
	// Key identifies the subnet (mutables.Space.Key).
	Key    string          `json:"key"`
	Subnet mutables.Subnet `json:"subnet"`
	Cost
	// Score is the metric named by score_key; Metrics holds every metric.
	Score   float64            `json:"score"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Epoch is the search epoch (from 1) that evaluated it; 0 for the
	// random baseline.
	Epoch int `json:"epoch"`
	// Origin says how it was made: random, mutation, crossover, baseline.
	Origin string `json:"origin"`
	// Seconds is how long its evaluation took.
	Seconds float64 `json:"seconds"`
}

// Candidate origins.
const (
	OriginRandom    = "random"
	OriginMutation  = "mutation"
	OriginCrossover = "crossover"
	OriginBaseline  = "baseline"
	// OriginReference marks a subnet of reference_subnets.
	OriginReference = "reference"
)

// BN modes of the evaluation (see runners.BNPolicy).
const (
	// BNTrain normalizes with each evaluation batch's own statistics, as
	// mmrazor's bn_training_mode; the supernet's running statistics are
	// left as they are.
	BNTrain = runners.BNTrain
	// BNRecalibrate re-estimates every batch norm of the candidate's path
	// on recalibrate_batches training batches (the same batches for every
	// candidate) and then evaluates with them, as the SPOS paper and the
	// official DetNAS code do.
	BNRecalibrate = runners.BNRecalibrate
	// BNEval evaluates with the supernet's running statistics.
	BNEval = runners.BNEval
)

// EvalOptions are the searcher keys that say how a candidate is scored.
type EvalOptions struct {
	// Metrics names the metric to compute: accuracy (a name or a list of
	// one, as mmrazor writes it); unset, the config's evaluation.metric.
	Metrics any `cfg:"metrics"`
	// MetricOptions exists in mmrazor's searcher; razor's accuracy takes
	// no options, so it must be null.
	MetricOptions any `cfg:"metric_options"`
	// ScoreKey names the metric that ranks candidates.
	ScoreKey string `cfg:"score_key"`
	// BNMode is train, recalibrate or eval; unset, train when
	// algorithm.bn_training_mode is true and eval otherwise.
	BNMode string `cfg:"bn_mode"`
	// RecalibrateBatches is how many training batches re-estimate batch
	// norm before each evaluation (bn_mode recalibrate).
	RecalibrateBatches int `cfg:"recalibrate_batches"`
	// EvalSplit is the data candidates are scored on: the name of a data
	// split (val, test), or {from: train, num: N, seed: S} for N samples of
	// data.<from> drawn with seed S, read through the evaluation pipeline
	// (data.val's, else data.test's) in batches of data.val_dataloader
	// (else data.samples_per_gpu); hold_out is that form for the training
	// samples data.hold_out {num: N, seed: S} leaves out of training, so
	// the supernet never saw what it is scored on. Unset: val.
	EvalSplit any `cfg:"eval_split"`
}

// Check validates the options that need no config to check.
func (o EvalOptions) Check() error {
	if o.MetricOptions != nil {
		return fmt.Errorf("metric_options: razor's metrics take no options; set it to null")
	}
	if o.ScoreKey == "" {
		return fmt.Errorf("score_key is empty; name the metric that ranks candidates, such as accuracy_top-1")
	}
	switch o.BNMode {
	case "", BNTrain, BNEval:
		if o.RecalibrateBatches != 0 {
			return fmt.Errorf("recalibrate_batches is set but bn_mode is %q; set bn_mode: recalibrate to use it, or drop it", o.BNMode)
		}
	case BNRecalibrate:
		if o.RecalibrateBatches <= 0 {
			return fmt.Errorf("bn_mode recalibrate needs recalibrate_batches, the number of training batches (a positive number, such as 20), got %d", o.RecalibrateBatches)
		}
	default:
		return fmt.Errorf("bn_mode %q is unknown; use train (batch statistics, as mmrazor's bn_training_mode), recalibrate (re-estimate on training batches) or eval (running statistics)", o.BNMode)
	}
	return nil
}
