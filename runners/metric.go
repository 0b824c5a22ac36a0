package runners

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/datasets/metrics"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/registry"
)

// Metric scores a model's results over a whole evaluation, batch by batch.
// The evaluator builds one per evaluation from `evaluation.metric` (plus
// `evaluation.metric_options`), provisions it when it is a
// MetricProvisioner, feeds it every batch and reads its values.
type Metric interface {
	// Process adds one batch: the model's inputs (labels, boxes, image
	// metas) and what its test forward returned.
	Process(in *models.Batch, res models.Result) error
	// Compute returns the values over every batch processed; the first is
	// the one save_best: auto keeps.
	Compute() ([]NamedValue, error)
}

// MetricEnv is what an evaluation hands a metric before its first batch.
type MetricEnv struct {
	// Dataset is the dataset the evaluation reads; a batch's Indices are
	// positions in it.
	Dataset datasets.Dataset
	// Report receives what the metric prints beyond its values (COCO's
	// summary lines, a per-class table); never nil.
	Report io.Writer
}

// MetricProvisioner is a Metric that sets itself up from the evaluation it
// serves -- reads its dataset's annotation file, say -- once it is decoded
// and before its first batch: decode, provision, run, as hooks do. A
// Provision error says why the metric cannot score this evaluation.
type MetricProvisioner interface {
	Provision(env MetricEnv) error
}

// Metrics builds the metric `evaluation.metric` names (accuracy, as mmcls
// spells it, is Accuracy), with evaluation.metric_options as its keys.
var Metrics = registry.New[Metric]("metric")

// AccuracyOptions are the keys of the accuracy metric.
type AccuracyOptions struct {
	// Topk lists the k of each top-k accuracy (mmcls's topk).
	Topk []int `cfg:"topk"`
}

// Defaults is mmcls's topk (1, 5).
func (o *AccuracyOptions) Defaults() { o.Topk = []int{1, 5} }

// accuracy is mmcls's accuracy metric: top-k accuracy in percent, named
// accuracy_top-<k>.
type accuracy struct {
	ks  []int
	acc *metrics.Accuracy
}

// Process adds one batch's class scores.
func (a *accuracy) Process(in *models.Batch, res models.Result) error {
	if in.Labels == nil {
		return fmt.Errorf("the evaluation pipeline must collect gt_label to compute accuracy")
	}
	return a.acc.Update(res.Scores, in.Labels)
}

// Compute returns accuracy_top-<k> for every k, in percent.
func (a *accuracy) Compute() ([]NamedValue, error) {
	vals, err := a.acc.Values()
	if err != nil {
		return nil, err
	}
	out := make([]NamedValue, len(vals))
	for i, v := range vals {
		out[i] = NamedValue{Name: "accuracy_top-" + strconv.Itoa(a.ks[i]), Value: 100 * v}
	}
	return out, nil
}

// ConfigMetric is the config's evaluation.metric, a name or a list of one
// (mmcv writes both), accuracy when unset.
func ConfigMetric(cfg *config.Config) (string, error) {
	v, _ := cfg.Get("evaluation.metric")
	return metricName(v, "evaluation.metric")
}

// metricName reads a metric's name: a string or a list of one, accuracy
// when nil.
func metricName(v any, path string) (string, error) {
	switch m := v.(type) {
	case nil:
		return "accuracy", nil
	case string:
		return m, nil
	case []any:
		if len(m) == 1 {
			if s, ok := m[0].(string); ok {
				return s, nil
			}
		}
	}
	return "", fmt.Errorf("%s must name one metric, not %v", path, v)
}

// MetricSpec names a metric and its options: what an evaluator builds a
// fresh Metric from for every evaluation.
type MetricSpec struct {
	// Name is the metric's registered name (accuracy, Accuracy ...).
	Name string
	// Options are its keys (evaluation.metric_options).
	Options map[string]any
	// Path names where the spec came from, for errors.
	Path string
}

// ConfigMetricSpec is the metric of the config's evaluation section:
// evaluation.metric (accuracy when unset) with evaluation.metric_options.
// A metric no package registers is an error listing the registered ones.
func ConfigMetricSpec(cfg *config.Config) (MetricSpec, error) {
	name, _ := cfg.Get("evaluation.metric")
	opts, _ := cfg.Get("evaluation.metric_options")
	return ParseMetricSpec(name, opts, "evaluation.metric")
}

// ParseMetricSpec reads a metric's name (a string or a list of one,
// accuracy when nil) and its options (nil or a mapping), checking that the
// metric is registered; path names the name's key in errors.
func ParseMetricSpec(name, options any, path string) (MetricSpec, error) {
	n, err := metricName(name, path)
	if err != nil {
		return MetricSpec{}, err
	}
	spec := MetricSpec{Name: n, Path: path}
	if options != nil {
		m, ok := options.(map[string]any)
		if !ok {
			return MetricSpec{}, fmt.Errorf("%s_options must be a mapping of the metric's options, such as {topk: [1, 5]}, not %v", path, options)
		}
		spec.Options = m
	}
	return spec, spec.Check()
}

// Check reports a metric no package registers, listing those registered.
func (s MetricSpec) Check() error {
	if !Metrics.Has(s.Name) {
		return fmt.Errorf("%s %q: no such metric is registered; registered: %s", s.Path, s.Name, strings.Join(Metrics.Names(), ", "))
	}
	return nil
}

// Build builds a fresh metric.
func (s MetricSpec) Build() (Metric, error) {
	node := map[string]any{"type": s.Name}
	for k, v := range s.Options {
		node[k] = v
	}
	return Metrics.Build(node, s.Path, nil)
}

// BuildFor builds a fresh metric and provisions it for env; an error names
// the metric and its key.
func (s MetricSpec) BuildFor(env MetricEnv) (Metric, error) {
	m, err := s.Build()
	if err != nil {
		return nil, err
	}
	if env.Report == nil {
		env.Report = io.Discard
	}
	if p, ok := m.(MetricProvisioner); ok {
		if err := p.Provision(env); err != nil {
			return nil, fmt.Errorf("%s %s: %w", s.Path, s.Name, err)
		}
	}
	return m, nil
}

func init() {
	registry.MustRegister(Metrics, "Accuracy", func(o AccuracyOptions) (Metric, error) {
		acc, err := metrics.NewAccuracy(o.Topk...)
		if err != nil {
			return nil, err
		}
		return &accuracy{ks: o.Topk, acc: acc}, nil
	}, registry.Alias("accuracy"))
}
