package contrib

import (
	"fmt"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/registry"
	"github.com/razorgo/razor/runners"
)

// MeanClassAccuracy is the mean over classes of each class's top-1
// accuracy (balanced accuracy), in percent, as mean_class_accuracy: it
// does not let frequent classes hide a class the model misses. Use it with
// `evaluation.metric: mean_class_accuracy`.
type MeanClassAccuracy struct {
	correct, total map[int]int
}

// Process adds one batch's class scores.
func (m *MeanClassAccuracy) Process(in *models.Batch, res models.Result) error {
	if len(in.Labels) != len(res.Scores) {
		return fmt.Errorf("mean_class_accuracy: %d labels for %d score rows; the evaluation pipeline must collect gt_label", len(in.Labels), len(res.Scores))
	}
	for i, row := range res.Scores {
		best := 0
		for j, s := range row {
			if s > row[best] {
				best = j
			}
		}
		label := in.Labels[i]
		m.total[label]++
		if best == label {
			m.correct[label]++
		}
	}
	return nil
}

// Compute averages the classes seen.
func (m *MeanClassAccuracy) Compute() ([]runners.NamedValue, error) {
	if len(m.total) == 0 {
		return nil, fmt.Errorf("mean_class_accuracy: no samples were evaluated")
	}
	sum := 0.0
	for c, n := range m.total {
		sum += float64(m.correct[c]) / float64(n)
	}
	return []runners.NamedValue{{Name: "mean_class_accuracy", Value: 100 * sum / float64(len(m.total))}}, nil
}

func init() {
	registry.MustRegister(runners.Metrics, "MeanClassAccuracy", func(struct{}) (runners.Metric, error) {
		return &MeanClassAccuracy{correct: map[int]int{}, total: map[int]int{}}, nil
	}, registry.Alias("mean_class_accuracy"))
}
