package runners

import (
	"fmt"
	"strings"

	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// NumClassCheckHook is mmdet's check that every head predicting classes
// (any module with a NumClasses method, the RPN head excepted: it scores
// objectness) has as many classes as the training set names. A detector
// configured for COCO's 80 classes and trained on a 10-class set would
// otherwise train and evaluate without a word. It checks before the first
// step, where mmdet checks at the start of every epoch; the model and the
// set do not change in between.
type NumClassCheckHook struct{}

// Priority runs it with the NORMAL hooks, as mmdet's.
func (*NumClassCheckHook) Priority() int { return PriorityNormal }

// Provision checks the model against env.TrainSet.
func (*NumClassCheckHook) Provision(env *Env) error {
	if env.TrainSet == nil || env.Alg == nil {
		return nil
	}
	return CheckNumClasses(env.Alg, env.TrainSet.Classes(), "data.train")
}

// CheckNumClasses compares every class-predicting module under root (with a
// NumClasses method; paths ending in rpn_head are skipped) with the
// dataset's classes. set names the dataset in the error.
func CheckNumClasses(root nn.Module, classes []string, set string) error {
	if len(classes) == 0 {
		return nil
	}
	var bad []string
	nn.Walk(root, func(path string, m nn.Module) {
		h, ok := m.(interface{ NumClasses() int })
		if !ok || path == "" || strings.HasSuffix(path, "rpn_head") {
			return
		}
		if n := h.NumClasses(); n != len(classes) {
			bad = append(bad, fmt.Sprintf("%s.num_classes is %d", strings.TrimPrefix(path, ModelPrefix), n))
		}
	})
	if len(bad) == 0 {
		return nil
	}
	shown := strings.Join(classes, ", ")
	if len(classes) > 12 {
		shown = strings.Join(classes[:12], ", ") + ", ..."
	}
	return fmt.Errorf("NumClassCheckHook: %s but %s has %d classes (%s); set the head's num_classes to %d or the dataset's classes to the model's", strings.Join(bad, ", "), set, len(classes), shown, len(classes))
}

func init() {
	registry.MustRegister(Hooks, "NumClassCheckHook", func(o NumClassCheckHook) (Hook, error) { return &o, nil })
}
