package search

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/registry"
)

// The PCG streams of a search's two random sources, beside its seed.
const (
	streamSearch   = 0x5ea4c4
	streamBaseline = 0xba5e11
)

// EvolutionOptions are EvolutionSearcher's keys: mmrazor's, with its
// defaults, and razor's (random_baseline and the EvalOptions).
type EvolutionOptions struct {
	// CandidatePoolSize is the number of subnets evaluated per epoch.
	CandidatePoolSize int `cfg:"candidate_pool_size"`
	// CandidateTopK is how many of the best subnets so far parent the next
	// epoch's children.
	CandidateTopK int `cfg:"candidate_top_k"`
	// MaxEpoch is the number of epochs.
	MaxEpoch int `cfg:"max_epoch"`
	// NumMutation and NumCrossover are the children made per epoch; their
	// sum may not exceed the pool.
	NumMutation  int `cfg:"num_mutation"`
	NumCrossover int `cfg:"num_crossover"`
	// MutateProb is the chance that a mutation redraws a block.
	MutateProb float64 `cfg:"mutate_prob"`
	// Constraints bound a candidate's cost; see ParseConstraints.
	Constraints any `cfg:"constraints"`
	// RandomBaseline is how many random subnets under the same constraint
	// are scored after the search, to compare the best subnet with.
	RandomBaseline int `cfg:"random_baseline"`
	// ReferenceSubnets names subnet files (name: path, either subnet file
	// format) scored after the search as reference points, such as a
	// published subnet: the same evaluation, whatever the constraint says
	// of them; they never enter the ranking.
	ReferenceSubnets map[string]string `cfg:"reference_subnets"`
	EvalOptions
}

// Defaults are mmrazor's EvolutionSearcher defaults.
func (o *EvolutionOptions) Defaults() {
	o.CandidatePoolSize, o.CandidateTopK, o.MaxEpoch = 50, 10, 20
	o.NumMutation, o.NumCrossover, o.MutateProb = 25, 25, 0.1
	o.Constraints = map[string]any{"flops": 330e6}
	o.ScoreKey = "accuracy_top-1"
}

// Evolution is mmrazor's EvolutionSearcher: each epoch fills a pool of
// candidates under the constraint, evaluates it, keeps the top-k of every
// candidate so far and breeds the next pool from them by mutation and
// crossover.
type Evolution struct {
	opts       EvolutionOptions
	constraint *Constraint
}

// NewEvolution checks the options.
func NewEvolution(o EvolutionOptions) (*Evolution, error) {
	switch {
	case o.CandidatePoolSize < 1:
		return nil, fmt.Errorf("candidate_pool_size must be at least 1, got %d", o.CandidatePoolSize)
	case o.CandidateTopK < 1:
		return nil, fmt.Errorf("candidate_top_k must be at least 1, got %d", o.CandidateTopK)
	case o.MaxEpoch < 1:
		return nil, fmt.Errorf("max_epoch must be at least 1, got %d", o.MaxEpoch)
	case o.NumMutation < 0 || o.NumCrossover < 0:
		return nil, fmt.Errorf("num_mutation (%d) and num_crossover (%d) must not be negative", o.NumMutation, o.NumCrossover)
	case o.NumMutation+o.NumCrossover > o.CandidatePoolSize:
		return nil, fmt.Errorf("num_mutation (%d) plus num_crossover (%d) exceeds candidate_pool_size (%d); the children must fit in the pool",
			o.NumMutation, o.NumCrossover, o.CandidatePoolSize)
	case !(o.MutateProb >= 0 && o.MutateProb <= 1):
		return nil, fmt.Errorf("mutate_prob must be in [0, 1], got %g", o.MutateProb)
	case o.RandomBaseline < 0:
		return nil, fmt.Errorf("random_baseline must not be negative, got %d", o.RandomBaseline)
	}
	for _, name := range slices.Sorted(maps.Keys(o.ReferenceSubnets)) {
		if o.ReferenceSubnets[name] == "" {
			return nil, fmt.Errorf("reference_subnets.%s is empty; give the path of a subnet file", name)
		}
	}
	if err := o.EvalOptions.Check(); err != nil {
		return nil, err
	}
	c, err := ParseConstraints(o.Constraints, "constraints")
	if err != nil {
		return nil, err
	}
	return &Evolution{opts: o, constraint: c}, nil
}

// Evaluation is how candidates are scored.
func (e *Evolution) Evaluation() EvalOptions { return e.opts.EvalOptions }

// Options are the searcher's options.
func (e *Evolution) Options() EvolutionOptions { return e.opts }

// Constraint is the parsed constraints.
func (e *Evolution) Constraint() *Constraint { return e.constraint }

// settings are the options a state records: resuming with others would
// mix two different searches. reference_subnets is not one of them: the
// references are scored after the search and shape nothing in it, so a
// finished search can be resumed with references added to score them.
func (e *Evolution) settings() (json.RawMessage, error) {
	o := e.opts
	return json.Marshal(map[string]any{
		"candidate_pool_size": o.CandidatePoolSize, "candidate_top_k": o.CandidateTopK, "max_epoch": o.MaxEpoch,
		"num_mutation": o.NumMutation, "num_crossover": o.NumCrossover, "mutate_prob": o.MutateProb,
		"constraints": e.constraint.String(), "random_baseline": o.RandomBaseline, "metrics": o.Metrics,
		"score_key": o.ScoreKey, "bn_mode": o.BNMode, "recalibrate_batches": o.RecalibrateBatches, "eval_split": o.EvalSplit,
	})
}

// spaceSignature lists every block id with its choices.
func spaceSignature(s *mutables.Space) (json.RawMessage, error) {
	type block struct {
		ID      string   `json:"id"`
		Choices []string `json:"choices"`
	}
	out := make([]block, len(s.Blocks))
	for i, b := range s.Blocks {
		out[i] = block{b.ID, b.Choices}
	}
	return json.Marshal(out)
}

// run is one invocation of a search: the state and what is derived from it.
type run struct {
	e       *Evolution
	env     *Env
	st      *State
	pcg     *rand.PCG
	rng     *rand.Rand
	seen    map[string]int // key -> index in st.Candidates
	pending map[string]bool
	costs   map[string]Cost
	state   string
	log     *os.File
	comm    dist.Comm
	// refs are reference_subnets, read against the space at the start.
	refs map[string]mutables.Subnet
}

// Search runs the search, or continues env.Resume, and writes the outputs.
func (e *Evolution) Search(ctx context.Context, env *Env) (*Result, error) {
	r, err := e.start(env)
	if err != nil {
		return nil, err
	}
	defer r.log.Close()
	for r.st.Epoch < e.opts.MaxEpoch {
		if err := r.epoch(ctx); err != nil {
			return nil, r.stopped(ctx, err)
		}
	}
	if err := r.baseline(ctx); err != nil {
		return nil, r.stopped(ctx, err)
	}
	if err := r.references(ctx); err != nil {
		return nil, r.stopped(ctx, err)
	}
	return r.finish()
}

// stopped says how to continue a search whose context ended.
func (r *run) stopped(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("search stopped with %d candidates evaluated; continue it with --auto-resume or --resume-from %s: %w", len(r.st.Candidates), r.state, ctx.Err())
}

// start builds the run from a fresh or resumed state.
func (e *Evolution) start(env *Env) (*run, error) {
	if env.Space == nil || len(env.Space.Blocks) == 0 {
		return nil, fmt.Errorf("the algorithm has no search space; search a supernet config (with a mutator and no fixed mutable_cfg)")
	}
	settings, err := e.settings()
	if err != nil {
		return nil, err
	}
	space, err := spaceSignature(env.Space)
	if err != nil {
		return nil, err
	}
	r := &run{e: e, env: env, seen: map[string]int{}, pending: map[string]bool{}, costs: map[string]Cost{},
		state: filepath.Join(env.WorkDir, StateFile), comm: env.Comm}
	if r.comm == nil {
		r.comm = dist.Single{}
	}
	if r.refs, err = e.readReferences(env.Space); err != nil {
		return nil, err
	}
	if st := env.Resume; st != nil {
		if err := compareSettings(st.Settings, settings); err != nil {
			return nil, err
		}
		if string(st.Space) != string(space) {
			return nil, fmt.Errorf("resume: the search state was written for another search space; start a new search (another work dir) for this config")
		}
		r.st = st
		r.pcg = &rand.PCG{}
		if err := r.pcg.UnmarshalBinary(st.RNG); err != nil {
			return nil, fmt.Errorf("resume: the search state's random source: %w", err)
		}
		for _, group := range [][]Candidate{st.Candidates, st.Pool, st.Baseline} {
			for _, c := range group {
				if err := env.Space.Validate(c.Subnet); err != nil {
					return nil, fmt.Errorf("resume: candidate %s: %w", c.Key, err)
				}
				if k := env.Space.Key(c.Subnet); k != c.Key {
					return nil, fmt.Errorf("resume: candidate %s has subnet key %s; the state is damaged", c.Key, k)
				}
				r.costs[c.Key] = c.Cost
			}
		}
		for i, c := range st.Candidates {
			r.seen[c.Key] = i
		}
		for _, c := range st.Pool {
			r.pending[c.Key] = true
		}
	} else {
		r.pcg = rand.NewPCG(env.Seed, streamSearch)
		r.st = &State{Format: stateFormat, Seed: env.Seed, Settings: settings, Space: space}
	}
	r.rng = rand.New(r.pcg)
	if err := os.MkdirAll(env.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating work dir %s: %w", env.WorkDir, err)
	}
	// The candidate log is rewritten from the state, so a kill between a
	// state save and its log line leaves no gap and no repeat.
	if r.writes() {
		if err := writeCandidateLog(filepath.Join(env.WorkDir, CandidatesFile), r.st.Candidates); err != nil {
			return nil, err
		}
		if r.log, err = os.OpenFile(filepath.Join(env.WorkDir, CandidatesFile), os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, fmt.Errorf("opening the candidate log: %w", err)
		}
	}
	o := e.opts
	switch {
	case env.Resume != nil && r.st.Done:
		r.printf("the search already finished with %d candidates evaluated; writing its outputs again", len(r.st.Candidates))
	case env.Resume != nil:
		r.printf("resuming the search at epoch %d of %d with %d candidates evaluated", r.st.Epoch+1, o.MaxEpoch, len(r.st.Candidates))
	default:
		r.printf("evolution search: candidate_pool_size %d, candidate_top_k %d, max_epoch %d, num_mutation %d, num_crossover %d, mutate_prob %g, score_key %s, constraints %s, seed %d",
			o.CandidatePoolSize, o.CandidateTopK, o.MaxEpoch, o.NumMutation, o.NumCrossover, o.MutateProb, o.ScoreKey, e.constraint, env.Seed)
	}
	if err := r.save(); err != nil {
		r.log.Close()
		return nil, err
	}
	return r, nil
}

// compareSettings names the first setting that differs.
func compareSettings(saved, now json.RawMessage) error {
	var a, b map[string]any
	if err := json.Unmarshal(saved, &a); err != nil {
		return fmt.Errorf("resume: the search state's settings: %w", err)
	}
	if err := json.Unmarshal(now, &b); err != nil {
		return err
	}
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x, y := jsonText(a[k]), jsonText(b[k])
		if x != y {
			return fmt.Errorf("resume: the search state was written with searcher.%s = %s, but the config now says %s; resume with the same searcher settings, or start a new search in another work dir", k, x, y)
		}
	}
	return nil
}

// jsonText is v as JSON, with < and > as they are.
func jsonText(v any) string {
	b, err := encodeJSON(v, "")
	if err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func (r *run) printf(format string, args ...any) {
	if r.env.Log != nil {
		r.env.Log.Printf(format, args...)
	}
}

// save writes the state with the random source's current position.
func (r *run) save() error {
	if !r.writes() {
		return nil
	}
	b, err := r.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	r.st.RNG = b
	return r.st.save(r.state)
}

// cost measures sub once per key.
func (r *run) cost(key string, sub mutables.Subnet) (Cost, error) {
	if c, ok := r.costs[key]; ok {
		return c, nil
	}
	c, err := r.env.Measure(sub)
	if err != nil {
		return Cost{}, fmt.Errorf("counting the FLOPs of subnet %s: %w", key, err)
	}
	r.costs[key] = c
	return c, nil
}

// admit returns sub as a new candidate when it is unseen and meets the
// constraint.
func (r *run) admit(sub mutables.Subnet, origin string) (Candidate, bool, error) {
	key := r.env.Space.Key(sub)
	if _, ok := r.seen[key]; ok || r.pending[key] {
		return Candidate{}, false, nil
	}
	c, err := r.cost(key, sub)
	if err != nil {
		return Candidate{}, false, err
	}
	ok, err := r.e.constraint.Allows(c)
	if err != nil || !ok {
		return Candidate{}, false, err
	}
	return Candidate{Key: key, Subnet: sub, Cost: c, Origin: origin}, true, nil
}

// queue adds a candidate to the pool.
func (r *run) queue(c Candidate) {
	r.st.Pool = append(r.st.Pool, c)
	r.pending[c.Key] = true
}

// drawLimit bounds the random draws for n new subnets.
func drawLimit(n int) int { return max(1000, 100*n) }

// fill tops the pool up with random subnets.
func (r *run) fill() error {
	want := r.e.opts.CandidatePoolSize - len(r.st.Pool)
	limit := drawLimit(want)
	found := 0
	for draws := 0; found < want; draws++ {
		if draws == limit {
			return fmt.Errorf("epoch %d: found only %d of the %d new subnets the pool needs in %d random draws; the constraint %s leaves too few subnets of the space (%s in all) that were not evaluated yet: loosen constraints, or lower candidate_pool_size or max_epoch",
				r.st.Epoch+1, found, want, limit, r.e.constraint, r.env.Space.Size())
		}
		c, ok, err := r.admit(r.env.Space.Sample(r.rng), OriginRandom)
		if err != nil {
			return err
		}
		if ok {
			r.queue(c)
			found++
		}
	}
	return nil
}

// epoch runs the current epoch from wherever it stopped.
func (r *run) epoch(ctx context.Context) error {
	o := r.e.opts
	n := r.st.Epoch + 1
	if !r.st.PoolReady {
		children := len(r.st.Pool)
		if err := r.fill(); err != nil {
			return err
		}
		r.st.PoolReady = true
		if err := r.save(); err != nil {
			return err
		}
		r.printf("epoch [%d/%d]: pool of %d candidates (%d children, %d random)", n, o.MaxEpoch, len(r.st.Pool), children, len(r.st.Pool)-children)
	}
	for len(r.st.Pool) > 0 {
		group := slices.Clone(r.st.Pool[:min(len(r.st.Pool), r.comm.Size())])
		for i := range group {
			group[i].Epoch = n
		}
		if err := r.evaluateGroup(ctx, group); err != nil {
			return err
		}
		for _, c := range group {
			r.st.Pool = r.st.Pool[1:]
			delete(r.pending, c.Key)
			if err := r.commit(c); err != nil {
				return err
			}
			done := o.CandidatePoolSize - len(r.st.Pool)
			r.printf("epoch [%d/%d] candidate [%d/%d] %s: %s %.4f, flops %.4gM, params %.4gM (%s, %.1fs)",
				n, o.MaxEpoch, done, o.CandidatePoolSize, c.Key, o.ScoreKey, c.Score, float64(c.FLOPs)/1e6, float64(c.Params)/1e6, c.Origin, c.Seconds)
		}
	}
	top := r.topK()
	keys := make([]string, len(top))
	scores := make([]string, len(top))
	for i, c := range top {
		keys[i] = c.Key
		scores[i] = fmt.Sprintf("%.4f", c.Score)
	}
	r.st.TopK = append(r.st.TopK, keys)
	r.printf("epoch [%d/%d]: top-%d scores %s; best %s", n, o.MaxEpoch, len(top), strings.Join(scores, ", "), top[0].Key)
	if n < o.MaxEpoch {
		if err := r.breed(top); err != nil {
			return err
		}
	}
	r.st.PoolReady = false
	r.st.Epoch = n
	return r.save()
}

// evaluate scores c, unless the search was stopped.
func (r *run) evaluate(ctx context.Context, c *Candidate) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := time.Now()
	vals, err := r.env.Scorer.Score(ctx, c.Subnet)
	c.Seconds = math.Round(time.Since(start).Seconds()*1000) / 1000
	if err != nil {
		return fmt.Errorf("evaluating subnet %s: %w", c.Key, err)
	}
	c.Metrics = map[string]float64{}
	var names []string
	for _, v := range vals {
		c.Metrics[v.Name] = v.Value
		names = append(names, v.Name)
	}
	s, ok := c.Metrics[r.e.opts.ScoreKey]
	if !ok {
		return fmt.Errorf("score_key %q is not among the metrics of the evaluation (%s)", r.e.opts.ScoreKey, strings.Join(names, ", "))
	}
	if math.IsNaN(s) {
		return fmt.Errorf("subnet %s scored NaN (%s)", c.Key, r.e.opts.ScoreKey)
	}
	c.Score = s
	return nil
}

// evaluateGroup scores the candidates of cs, at most one per rank: rank i
// scores cs[i], and every rank receives every score, so all ranks go on
// with the same state. The first error of any rank is every rank's.
func (r *run) evaluateGroup(ctx context.Context, cs []Candidate) error {
	if r.comm.Size() == 1 {
		for i := range cs {
			if err := r.evaluate(ctx, &cs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	type scored struct {
		Candidate *Candidate `json:"candidate,omitempty"`
		Err       string     `json:"error,omitempty"`
	}
	var mine scored
	if rk := r.comm.Rank(); rk < len(cs) {
		c := cs[rk]
		if err := r.evaluate(ctx, &c); err != nil {
			mine.Err = err.Error()
		} else {
			mine.Candidate = &c
		}
	}
	b, err := json.Marshal(mine)
	if err != nil {
		return err
	}
	all, err := r.comm.AllGather(b)
	if err != nil {
		return fmt.Errorf("gathering the scores: %w", err)
	}
	for i := range cs {
		var got scored
		if err := json.Unmarshal(all[i], &got); err != nil {
			return fmt.Errorf("the score of rank %d: %w", i, err)
		}
		if got.Err != "" {
			return fmt.Errorf("rank %d: %s", i, got.Err)
		}
		if got.Candidate == nil || got.Candidate.Key != cs[i].Key {
			return fmt.Errorf("rank %d scored another candidate than %s; the ranks' searches diverged", i, cs[i].Key)
		}
		cs[i] = *got.Candidate
	}
	return nil
}

// writes reports whether this process writes the search's files.
func (r *run) writes() bool { return r.comm.Rank() == 0 }

// commit records an evaluated candidate: state first, then its log line.
func (r *run) commit(c Candidate) error {
	c.Index = len(r.st.Candidates)
	r.st.Candidates = append(r.st.Candidates, c)
	r.seen[c.Key] = c.Index
	if err := r.save(); err != nil {
		return err
	}
	if !r.writes() {
		return nil
	}
	return appendCandidate(r.log, c)
}

// topK ranks the search's candidates by score, ties in evaluation order.
func (r *run) topK() []Candidate {
	return rank(r.st.Candidates, r.e.opts.CandidateTopK)
}

// rank returns the best k search candidates (not the baseline), highest
// score first, equal scores in evaluation order.
func rank(cands []Candidate, k int) []Candidate {
	var out []Candidate
	for _, c := range cands {
		if c.Origin != OriginBaseline && c.Origin != OriginReference {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	if len(out) > k {
		out = out[:k]
	}
	return out
}

// breed fills the next pool with mutations and crossovers of the top-k.
func (r *run) breed(parents []Candidate) error {
	o := r.e.opts
	made, tries := 0, 0
	for ; made < o.NumMutation && tries < 10*o.NumMutation; tries++ {
		p := parents[r.rng.IntN(len(parents))]
		c, ok, err := r.admit(r.env.Space.Mutate(p.Subnet, o.MutateProb, r.rng), OriginMutation)
		if err != nil {
			return err
		}
		if ok {
			r.queue(c)
			made++
		}
	}
	crossed, ctries := 0, 0
	for ; crossed < o.NumCrossover && ctries < 10*o.NumCrossover; ctries++ {
		a := parents[r.rng.IntN(len(parents))]
		b := parents[r.rng.IntN(len(parents))]
		c, ok, err := r.admit(r.env.Space.Crossover(a.Subnet, b.Subnet, r.rng), OriginCrossover)
		if err != nil {
			return err
		}
		if ok {
			r.queue(c)
			crossed++
		}
	}
	r.printf("bred %d of %d mutations in %d tries and %d of %d crossovers in %d tries (a child must be new and meet the constraint)",
		made, o.NumMutation, tries, crossed, o.NumCrossover, ctries)
	return nil
}

// baseline draws and scores the random baseline; a subnet the search
// already evaluated keeps its score.
func (r *run) baseline(ctx context.Context) error {
	n := r.e.opts.RandomBaseline
	if n == 0 {
		return nil
	}
	if r.st.Baseline == nil {
		rng := rand.New(rand.NewPCG(r.st.Seed, streamBaseline))
		drawn := map[string]bool{}
		limit := drawLimit(n)
		for draws := 0; len(r.st.Baseline) < n; draws++ {
			if draws == limit {
				return fmt.Errorf("random_baseline: found only %d of %d distinct subnets that meet the constraint %s in %d random draws; lower random_baseline", len(r.st.Baseline), n, r.e.constraint, limit)
			}
			sub := r.env.Space.Sample(rng)
			key := r.env.Space.Key(sub)
			if drawn[key] {
				continue
			}
			c, err := r.cost(key, sub)
			if err != nil {
				return err
			}
			if ok, err := r.e.constraint.Allows(c); err != nil {
				return err
			} else if ok {
				drawn[key] = true
				r.st.Baseline = append(r.st.Baseline, Candidate{Key: key, Subnet: sub, Cost: c, Origin: OriginBaseline})
			}
		}
		if err := r.save(); err != nil {
			return err
		}
		r.printf("random baseline: %d random subnets under the constraint %s", n, r.e.constraint)
	}
	// Unscored baseline subnets go to the ranks in groups, in order.
	var todo []int
	flush := func() error {
		group := make([]Candidate, len(todo))
		for k, i := range todo {
			group[k] = r.st.Baseline[i]
		}
		if err := r.evaluateGroup(ctx, group); err != nil {
			return err
		}
		for k, b := range group {
			if err := r.commit(b); err != nil {
				return err
			}
			r.printf("random baseline [%d/%d] %s: %s %.4f, flops %.4gM, params %.4gM", todo[k]+1, n, b.Key, r.e.opts.ScoreKey, b.Score, float64(b.FLOPs)/1e6, float64(b.Params)/1e6)
		}
		todo = todo[:0]
		return nil
	}
	for i, b := range r.st.Baseline {
		if j, ok := r.seen[b.Key]; ok {
			if !r.st.Done && r.st.Candidates[j].Origin != OriginBaseline {
				r.printf("random baseline [%d/%d] %s: evaluated by the search, %s %.4f", i+1, n, b.Key, r.e.opts.ScoreKey, r.st.Candidates[j].Score)
			}
			continue
		}
		if todo = append(todo, i); len(todo) == r.comm.Size() {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(todo) > 0 {
		return flush()
	}
	return nil
}

// readReferences reads reference_subnets against the space, by name.
func (e *Evolution) readReferences(space *mutables.Space) (map[string]mutables.Subnet, error) {
	out := map[string]mutables.Subnet{}
	for name, path := range e.opts.ReferenceSubnets {
		sub, err := mutables.ReadSubnetFile(path, space)
		if err != nil {
			return nil, fmt.Errorf("searcher.reference_subnets.%s: %w", name, err)
		}
		out[name] = sub
	}
	return out, nil
}

// references scores the reference subnets, in name order; one the search
// or the baseline evaluated keeps its score.
func (r *run) references(ctx context.Context) error {
	for _, name := range slices.Sorted(maps.Keys(r.refs)) {
		sub := r.refs[name]
		key := r.env.Space.Key(sub)
		if _, ok := r.seen[key]; ok {
			continue
		}
		c, err := r.cost(key, sub)
		if err != nil {
			return err
		}
		ref := Candidate{Key: key, Subnet: sub, Cost: c, Origin: OriginReference}
		if err := r.evaluate(ctx, &ref); err != nil {
			return err
		}
		if err := r.commit(ref); err != nil {
			return err
		}
		ok, err := r.e.constraint.Allows(c)
		if err != nil {
			return err
		}
		r.printf("reference %s %s: %s %.4f, flops %.4gM, params %.4gM (%s)", name, key, r.e.opts.ScoreKey, ref.Score, float64(c.FLOPs)/1e6, float64(c.Params)/1e6, allowedText(ok, r.e.constraint))
	}
	return nil
}

func allowedText(ok bool, c *Constraint) string {
	if ok {
		return "meets " + c.String()
	}
	return "outside " + c.String()
}

// finish writes the best subnet, the report and the plot.
func (r *run) finish() (*Result, error) {
	top := r.topK()
	best := top[0]
	if r.st.FinalSubnet == "" {
		now := time.Now
		if r.env.Now != nil {
			now = r.env.Now
		}
		r.st.FinalSubnet = "final_subnet_" + now().Format("20060102_1504") + ".yaml"
	}
	res := &Result{Best: best, Evaluated: len(r.st.Candidates),
		BestSubnetFile:  filepath.Join(r.env.WorkDir, BestSubnetFile),
		FinalSubnetFile: filepath.Join(r.env.WorkDir, r.st.FinalSubnet),
		ReportFile:      filepath.Join(r.env.WorkDir, ReportFile)}
	rep := r.report(top)
	if r.writes() {
		for _, p := range []string{res.FinalSubnetFile, res.BestSubnetFile} {
			if err := mutables.WriteSubnetFile(p, best.Subnet); err != nil {
				return nil, err
			}
		}
		if err := writeReport(res.ReportFile, rep); err != nil {
			return nil, err
		}
		if err := writePlot(filepath.Join(r.env.WorkDir, PlotFile), r.st, r.e.opts.ScoreKey, r.e.constraint, best.Key, rep.References); err != nil {
			return nil, err
		}
	}
	r.st.Done = true
	if err := r.save(); err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("search finished: best %s %s %.4f, flops %.4gM, params %.4gM, %d subnets evaluated; %s saved in %s",
		best.Key, r.e.opts.ScoreKey, best.Score, float64(best.FLOPs)/1e6, float64(best.Params)/1e6, len(r.st.Candidates), filepath.Base(res.FinalSubnetFile), r.env.WorkDir)
	if b := rep.RandomBaseline; b != nil {
		msg += fmt.Sprintf("; %d random subnets under the constraint score %.4f ± %.4f (max %.4f)", b.Num, b.Mean, b.Std, b.Max)
	}
	r.printf("%s", msg)
	return res, nil
}

func init() {
	registry.MustRegister(Searchers, "EvolutionSearcher", func(o EvolutionOptions) (Searcher, error) { return NewEvolution(o) })
}
