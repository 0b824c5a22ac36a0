package runners

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/mutables"
)

// Evaluator scores an algorithm's current path on a validation loader.
type Evaluator struct {
	Alg    algorithms.Algorithm
	Loader *datasets.Loader
	// Metric is what each evaluation builds its metric from.
	Metric MetricSpec
	// Progress, when set, receives a progress bar while evaluating.
	Progress io.Writer
	// BN, when set, prepares batch norm for each subnet EvaluateSubnets
	// scores (a supernet's running statistics average over all paths).
	BN *BNPolicy
	// Report, when set, receives what the metric prints beyond its values
	// (COCO's summary lines, a per-class table).
	Report io.Writer
	// Observe, when set, sees every batch's inputs and results after the
	// metric has (tools/test keeps a detector's results with it).
	Observe func(in *models.Batch, res models.Result) error
	// Comm spreads EvaluateSubnets over its ranks (nil: this process
	// alone): rank r scores the subnets r, r+size, ... and every rank
	// receives every subnet's values.
	Comm dist.Comm
}

// Check builds and provisions the metric once without evaluating, so that
// a metric that cannot score this data (bbox on a dataset that is not
// COCO-format) fails before any long work starts.
func (e *Evaluator) Check() error {
	_, err := e.Metric.BuildFor(MetricEnv{Dataset: e.Loader.Dataset()})
	return err
}

// Evaluate runs the current path in eval mode over the whole loader and
// returns the metric's values (accuracy_top-1, accuracy_top-5 ...). With
// a Comm of several ranks each rank predicts its shard of the data (as
// mmcv's multi-GPU test does: DistributedSampler's shards, the samples
// it repeats to even them out dropped again), the predictions are
// gathered, and every rank computes the metric over all of them.
func (e *Evaluator) Evaluate(ctx context.Context) ([]NamedValue, error) {
	return e.evaluate(ctx, e.comm())
}

// comm is e.Comm, or the single process.
func (e *Evaluator) comm() dist.Comm {
	if e.Comm == nil {
		return dist.Single{}
	}
	return e.Comm
}

func (e *Evaluator) evaluate(ctx context.Context, comm dist.Comm) ([]NamedValue, error) {
	metric, err := e.Metric.BuildFor(MetricEnv{Dataset: e.Loader.Dataset(), Report: e.Report})
	if err != nil {
		return nil, err
	}
	loader := e.Loader
	if comm.Size() > 1 {
		o := loader.Options()
		o.Rank, o.WorldSize = comm.Rank(), comm.Size()
		if loader, err = datasets.NewLoader(loader.Dataset(), o); err != nil {
			return nil, err
		}
	}
	process := func(in *models.Batch, res models.Result) error {
		if err := metric.Process(in, res); err != nil {
			return err
		}
		if e.Observe != nil {
			return e.Observe(in, res)
		}
		return nil
	}
	var mine []shardResult
	model := e.Alg.Model()
	model.SetTraining(false)
	defer model.SetTraining(true)
	bar := newProgressBar(e.Progress, loader.Len())
	for batch, err := range loader.Epoch(ctx, 0) {
		if err != nil {
			return nil, err
		}
		in, err := ToModelBatch(batch)
		if err != nil {
			return nil, err
		}
		res, err := models.Predict(model, in)
		if err != nil {
			return nil, err
		}
		if comm.Size() > 1 {
			in.Images, in.Rand = nil, nil
			mine = append(mine, shardResult{In: in, Res: res})
		} else if err := process(in, res); err != nil {
			return nil, err
		}
		bar.step(batch.Len())
	}
	bar.finish()
	if comm.Size() > 1 {
		if err := gatherShards(comm, mine, process); err != nil {
			return nil, err
		}
	}
	return metric.Compute()
}

// shardResult is one batch a rank predicted: its inputs without the
// images, and the predictions.
type shardResult struct {
	In  *models.Batch `json:"in"`
	Res models.Result `json:"res"`
}

// gatherShards hands every rank's predictions, in rank and batch order, to
// process, each dataset sample once: the shards' padding repeats samples
// to give every rank as many, and those repeats are dropped.
func gatherShards(c dist.Comm, mine []shardResult, process func(*models.Batch, models.Result) error) error {
	b, err := json.Marshal(mine)
	if err != nil {
		return fmt.Errorf("encoding the predictions: %w", err)
	}
	all, err := c.AllGather(b)
	if err != nil {
		return fmt.Errorf("gathering the predictions: %w", err)
	}
	seen := map[int]bool{}
	for r, data := range all {
		var got []shardResult
		if err := json.Unmarshal(data, &got); err != nil {
			return fmt.Errorf("the predictions of rank %d: %w", r, err)
		}
		for _, sr := range got {
			in, res := firstSeen(sr.In, sr.Res, seen)
			if len(in.Indices) == 0 {
				continue
			}
			if err := process(in, res); err != nil {
				return err
			}
		}
	}
	return nil
}

// firstSeen keeps the images of a batch whose dataset index is not in
// seen, and marks them seen.
func firstSeen(in *models.Batch, res models.Result, seen map[int]bool) (*models.Batch, models.Result) {
	n := len(in.Indices)
	var keep []int
	for k, i := range in.Indices {
		if !seen[i] {
			seen[i] = true
			keep = append(keep, k)
		}
	}
	if len(keep) == n {
		return in, res
	}
	out := &models.Batch{}
	var r models.Result
	for _, k := range keep {
		out.Indices = append(out.Indices, in.Indices[k])
		if len(in.Labels) == n {
			out.Labels = append(out.Labels, in.Labels[k])
		}
		if len(in.GTBoxes) == n {
			out.GTBoxes = append(out.GTBoxes, in.GTBoxes[k])
		}
		if len(in.GTLabels) == n {
			out.GTLabels = append(out.GTLabels, in.GTLabels[k])
		}
		if len(in.GTIgnore) == n {
			out.GTIgnore = append(out.GTIgnore, in.GTIgnore[k])
		}
		if len(in.Metas) == n {
			out.Metas = append(out.Metas, in.Metas[k])
		}
		if len(res.Scores) == n {
			r.Scores = append(r.Scores, res.Scores[k])
		}
		if len(res.Detections) == n {
			r.Detections = append(r.Detections, res.Detections[k])
		}
	}
	return out, r
}

// EvaluateSubnets scores each subnet in turn and returns, for every metric,
// the mean over subnets, its standard deviation (`<metric>_std`) and the
// count. Evaluating one drawn path, as the reference does, measures noise;
// a fixed, seeded set of paths measures the supernet.
func (e *Evaluator) EvaluateSubnets(ctx context.Context, subnets []mutables.Subnet) ([]NamedValue, error) {
	alg, err := algorithms.AsOneShot(e.Alg, "evaluating subnets")
	if err != nil {
		return nil, err
	}
	restore := alg.Subnet()
	defer func() {
		if restore != nil {
			alg.SetSubnet(restore)
		}
	}()
	comm := e.Comm
	if comm == nil {
		comm = dist.Single{}
	}
	per := make([][]NamedValue, len(subnets))
	for i, s := range subnets {
		if i%comm.Size() != comm.Rank() {
			continue
		}
		if err := alg.SetSubnet(s); err != nil {
			return nil, err
		}
		undo := func() {}
		if e.BN != nil {
			var err error
			if undo, err = e.BN.Prepare(ctx, alg.Model()); err != nil {
				return nil, err
			}
		}
		// Each rank scores whole subnets: no shards within one.
		vals, err := e.evaluate(ctx, dist.Single{})
		undo()
		if err != nil {
			return nil, err
		}
		per[i] = vals
	}
	if comm.Size() > 1 {
		if err := gatherSubnetValues(comm, per); err != nil {
			return nil, err
		}
	}
	var names []string
	sums := map[string][]float64{}
	for _, vals := range per {
		for _, v := range vals {
			if _, ok := sums[v.Name]; !ok {
				names = append(names, v.Name)
			}
			sums[v.Name] = append(sums[v.Name], v.Value)
		}
	}
	var out []NamedValue
	for _, n := range names {
		mean, std := meanStd(sums[n])
		out = append(out, NamedValue{Name: n, Value: mean}, NamedValue{Name: n + "_std", Value: std})
	}
	return append(out, NamedValue{Name: "num_subnets", Value: float64(len(subnets))}), nil
}

// gatherSubnetValues fills per (one entry per subnet, this rank's filled)
// with every rank's entries.
func gatherSubnetValues(c dist.Comm, per [][]NamedValue) error {
	mine := map[int][]NamedValue{}
	for i, v := range per {
		if i%c.Size() == c.Rank() {
			mine[i] = v
		}
	}
	b, err := json.Marshal(mine)
	if err != nil {
		return err
	}
	all, err := c.AllGather(b)
	if err != nil {
		return fmt.Errorf("gathering the subnets' scores: %w", err)
	}
	for r, data := range all {
		var got map[int][]NamedValue
		if err := json.Unmarshal(data, &got); err != nil {
			return fmt.Errorf("the scores of rank %d: %w", r, err)
		}
		for i, v := range got {
			if i < 0 || i >= len(per) || i%c.Size() != r {
				return fmt.Errorf("rank %d sent the scores of subnet %d, not its own", r, i)
			}
			per[i] = v
		}
	}
	return nil
}

func meanStd(xs []float64) (float64, float64) {
	m := 0.0
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	v := 0.0
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	if len(xs) > 1 {
		v /= float64(len(xs) - 1)
	}
	return m, math.Sqrt(v)
}

// EvalHook evaluates every Interval iterations (or epochs) and at the end of
// training, logs the metrics and, with SaveBest, keeps the best checkpoint
// as best_<metric>_iter_N (LOW priority, after the checkpoint hook). The
// `evaluation:` mapping builds it (type EvalHook); Provision readies its
// evaluator on the run's validation data.
type EvalHook struct {
	Eval *Evaluator
	// evaluated is how far evaluation has run (see evalState).
	evaluated int
	// Interval counts iterations, or epochs when ByEpoch.
	Interval int
	ByEpoch  bool
	// SaveBest names the metric whose best value keeps a checkpoint ("" for none).
	SaveBest string
	// Subnets, when set, are evaluated in turn and summarized (a supernet).
	Subnets []mutables.Subnet

	opts     EvaluationConfig
	best     float64
	bestPath string
	has      bool
}

// newEvalHook checks the `evaluation:` options; Provision builds the rest.
func newEvalHook(o EvaluationConfig) (*EvalHook, error) {
	if o.Interval < 0 {
		return nil, fmt.Errorf("interval must not be negative, got %d", o.Interval)
	}
	h := &EvalHook{Interval: o.Interval, SaveBest: o.SaveBest, opts: o}
	if o.ByEpoch != nil {
		h.ByEpoch = *o.ByEpoch
	}
	return h, nil
}

// Provision builds the evaluator on the run's validation data (data.val)
// with the configured metric; for a supernet, the subnets every
// evaluation averages over and how their batch norm is prepared.
func (h *EvalHook) Provision(env *Env) error {
	spec, err := ParseMetricSpec(h.opts.Metric, h.opts.MetricOptions, "evaluation.metric")
	if err != nil {
		return err
	}
	valSet, err := BuildDataset(env.Config, "val")
	if err != nil {
		return err
	}
	loader, err := BuildLoader(env.Config, "val", valSet, false, 0)
	if err != nil {
		return err
	}
	h.Eval = &Evaluator{Alg: env.Alg, Loader: loader, Metric: spec, Progress: env.Terminal}
	if err := h.Eval.Check(); err != nil {
		return err
	}
	oneShot, ok := env.Alg.(algorithms.OneShot)
	if !ok || oneShot.EvalSubnets(1, env.Seed) == nil {
		return nil
	}
	if h.opts.NumSubnets <= 0 {
		return fmt.Errorf("evaluation.num_subnets must be positive for a supernet, got %d", h.opts.NumSubnets)
	}
	h.Subnets = oneShot.EvalSubnets(h.opts.NumSubnets, env.Seed)
	h.Eval.BN, err = NewBNPolicy(env.Config, "evaluation", env.Alg, h.opts.BNMode, h.opts.RecalibrateBatches, env.Seed)
	return err
}

// Priority is LOW.
func (h *EvalHook) Priority() int { return PriorityLow }

// Name keys the hook's state in checkpoints.
func (h *EvalHook) Name() string { return "EvalHook" }

type evalState struct {
	Best     float64 `json:"best"`
	BestPath string  `json:"best_path"`
	Has      bool    `json:"has"`
	// Evaluated is the epoch (by epoch) or iteration through which the
	// evaluations have run.
	Evaluated int `json:"evaluated"`
}

// State saves the best score so far and how far evaluation has got.
func (h *EvalHook) State() (json.RawMessage, error) {
	return json.Marshal(evalState{h.best, h.bestPath, h.has, h.evaluated})
}

// LoadState restores the best score.
func (h *EvalHook) LoadState(b json.RawMessage) error {
	var s evalState
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	h.best, h.bestPath, h.has, h.evaluated = s.Best, s.BestPath, s.Has, s.Evaluated
	return nil
}

// BeforeRun runs an evaluation that a killed run owed: the checkpoint
// hook saves before this hook evaluates, so a run killed between the two
// resumes from a checkpoint taken at an evaluation point whose evaluation
// never finished (at the end of training, nothing would run it again).
func (h *EvalHook) BeforeRun(r *Runner) error {
	if h.ByEpoch {
		done := r.Epoch
		if done > 0 && r.InnerIter == 0 && h.evaluated < done && h.due(done, r.MaxEpochs) {
			r.Log.Printf("running the evaluation after epoch %d, which the interrupted run did not finish", done)
			return h.evaluate(r, r.Iter, done, 0)
		}
		return nil
	}
	done := r.Iter
	if done > 0 && h.evaluated < done && h.due(done, r.MaxIters) {
		r.Log.Printf("running the evaluation after iteration %d, which the interrupted run did not finish", done)
		return h.evaluate(r, done, r.Epoch, r.InnerIter)
	}
	return nil
}

// AfterTrainIter evaluates on iteration intervals.
func (h *EvalHook) AfterTrainIter(r *Runner) error {
	if h.ByEpoch {
		return nil
	}
	if done := r.Iter + 1; h.due(done, r.MaxIters) {
		return h.evaluate(r, done, r.Epoch, r.InnerIter+1)
	}
	return nil
}

// due reports whether done iterations (or epochs) of max end at an
// evaluation: every Interval, and at the end.
func (h *EvalHook) due(done, max int) bool {
	return (h.Interval > 0 && done%h.Interval == 0) || done == max
}

// AfterTrainEpoch evaluates on epoch intervals.
func (h *EvalHook) AfterTrainEpoch(r *Runner) error {
	if !h.ByEpoch {
		return nil
	}
	if done := r.Epoch + 1; h.due(done, r.MaxEpochs) {
		return h.evaluate(r, r.Iter, done, 0)
	}
	return nil
}

func (h *EvalHook) evaluate(r *Runner, iterDone, epochDone, innerDone int) error {
	// Every rank takes part: a supernet's subnets, or one model's data, are
	// spread over the ranks.
	start := time.Now()
	h.Eval.Report = logReport{r.Log}
	h.Eval.Comm = r.Comm
	var vals []NamedValue
	var err error
	if len(h.Subnets) > 0 {
		vals, err = h.Eval.EvaluateSubnets(context.Background(), h.Subnets)
	} else {
		vals, err = h.Eval.Evaluate(context.Background())
	}
	if err != nil {
		return fmt.Errorf("evaluation after iteration %d: %w", iterDone, err)
	}
	if !r.Writes() {
		return nil
	}
	var sb strings.Builder
	if h.ByEpoch {
		fmt.Fprintf(&sb, "Epoch(val) [%d][%d]\t", epochDone, h.Eval.Loader.Len())
	} else {
		fmt.Fprintf(&sb, "Iter(val) [%d]\t", iterDone)
	}
	for i, v := range vals {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s: %.4f", v.Name, v.Value)
	}
	fmt.Fprintf(&sb, " (%.1fs)", time.Since(start).Seconds())
	r.Log.Printf("%s", sb.String())
	if err := r.Log.Record(vals, map[string]any{"mode": "val", "epoch": epochDone, "iter": iterDone, "lr": roundLR(r.Optimizer.LR())}); err != nil {
		return err
	}
	if h.ByEpoch {
		h.evaluated = epochDone
	} else {
		h.evaluated = iterDone
	}
	if h.SaveBest == "" {
		return nil
	}
	if h.SaveBest == "auto" && len(vals) > 0 {
		h.SaveBest = vals[0].Name
	}
	for _, v := range vals {
		if v.Name != h.SaveBest {
			continue
		}
		if h.has && v.Value <= h.best {
			return nil
		}
		name := fmt.Sprintf("best_%s_iter_%d", strings.NewReplacer("-", "_", "/", "_").Replace(h.SaveBest), iterDone)
		if h.ByEpoch {
			name = fmt.Sprintf("best_%s_epoch_%d", strings.NewReplacer("-", "_", "/", "_").Replace(h.SaveBest), epochDone)
		}
		h.best, h.has = v.Value, true
		path, err := r.SaveCheckpoint(r.WorkDir, name, iterDone, epochDone, innerDone, false)
		if err != nil {
			return err
		}
		removeCheckpoint(h.bestPath)
		h.bestPath = path
		r.Log.Printf("Now best checkpoint is saved as %s (%s: %.4f)", path, h.SaveBest, v.Value)
		return nil
	}
	return fmt.Errorf("evaluation.save_best %q is not among the metrics (%s)", h.SaveBest, names(vals))
}

// logReport writes a metric's report (COCO's summary lines) to the run's
// log, one entry per write.
type logReport struct{ log *Logger }

func (l logReport) Write(p []byte) (int, error) {
	l.log.Printf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func names(vs []NamedValue) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return strings.Join(out, ", ")
}

// progressBar draws mmcv-style progress on a terminal writer.
type progressBar struct {
	w     io.Writer
	total int
	seen  int
	start time.Time
	batch int
}

func newProgressBar(w io.Writer, batches int) *progressBar {
	return &progressBar{w: w, total: batches, start: time.Now()}
}

func (p *progressBar) step(samples int) {
	if p.w == nil {
		return
	}
	p.batch++
	p.seen += samples
	el := time.Since(p.start).Seconds()
	width := 30
	filled := width * p.batch / max(1, p.total)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d, %.1f samples/s, elapsed: %ds", strings.Repeat(">", filled), strings.Repeat(" ", width-filled),
		p.batch, p.total, float64(p.seen)/math.Max(el, 1e-9), int(el))
}

func (p *progressBar) finish() {
	if p.w != nil && p.batch > 0 {
		fmt.Fprintln(p.w)
	}
}
