package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/runners"
	"github.com/razorgo/razor/runners/checkpoint"
)

// LoadWeights loads a checkpoint to evaluate or run alg: razor's format or a
// PyTorch .pth, keyed by the algorithm (architecture.model.*, mmrazor's
// keys) or by the model alone (mmcls's and mmdet's). It refuses a
// checkpoint that leaves any weight unset or holds one of another shape,
// naming the modules concerned rather than every key, and notes on warn
// the tensors the model does not use (for a subnet, the supernet's other
// ops).
func LoadWeights(path string, alg algorithms.Algorithm, warn io.Writer) error {
	rep, _, err := checkpoint.LoadModel(path, alg, checkpoint.LoadOptions{Rules: runners.DefaultLoadRules})
	if err != nil {
		return err
	}
	if err := weightsError(path, rep); err != nil {
		return err
	}
	if n := len(rep.Unexpected); n > 0 {
		fmt.Fprintf(warn, "note: %d checkpoint tensors are not part of this model (for a subnet, the supernet's other ops): %s\n", n, groupKeys(rep.Unexpected))
	}
	return nil
}

// weightsError says why a load that left weights unset or of another shape
// cannot be evaluated, or returns nil when every weight was filled.
func weightsError(path string, rep nn.LoadReport) error {
	if len(rep.Missing) == 0 && len(rep.Mismatched) == 0 {
		return nil
	}
	if len(rep.Mismatched) == 0 && backboneOnly(rep) {
		// A classifier's checkpoint given for a detector (DetNAS step 4's
		// for step 5) is a mistake of command, not of file.
		return fmt.Errorf("checkpoint %s holds weights for the backbone only and none for %s: a classifier's or backbone's checkpoint? Evaluating needs the whole model's weights; to fine-tune this config from it, train with --cfg-options load_from=%s", path, groupKeys(rep.Missing), path)
	}
	if len(rep.Missing) > 0 {
		msg := fmt.Sprintf("checkpoint %s lacks %d of the model's weights: %s", path, len(rep.Missing), groupKeys(rep.Missing))
		if len(rep.Unexpected) > 0 {
			msg += fmt.Sprintf(", and holds %d tensors the model does not use: %s", len(rep.Unexpected), groupKeys(rep.Unexpected))
		}
		if len(rep.Mismatched) > 0 {
			msg += fmt.Sprintf(", and %d of another shape", len(rep.Mismatched))
		}
		return errors.New(msg + "; is it a checkpoint of this config's model (and subnet)?")
	}
	names := make([]string, len(rep.Mismatched))
	for i, m := range rep.Mismatched {
		names[i], _, _ = strings.Cut(m, ": ")
	}
	return fmt.Errorf("checkpoint %s has %d weights of another shape than the model's, in %s, such as %s; weights have another shape when the checkpoint was trained with another num_classes, widen_factor, channel width or subnet", path, len(rep.Mismatched), groupKeys(names), strings.TrimPrefix(rep.Mismatched[0], runners.ModelPrefix))
}

// backboneOnly reports whether the load filled the whole backbone and
// nothing else.
func backboneOnly(rep nn.LoadReport) bool {
	for _, k := range rep.Loaded {
		if topModule(k) != "backbone" {
			return false
		}
	}
	for _, k := range rep.Missing {
		if topModule(k) == "backbone" {
			return false
		}
	}
	return len(rep.Loaded) > 0
}

// topModule is the first path component of a model weight's name.
func topModule(key string) string {
	m, _, _ := strings.Cut(strings.TrimPrefix(key, runners.ModelPrefix), ".")
	return m
}

// groupKeys names keys by module, so a message stays short however many
// there are.
func groupKeys(keys []string) string {
	return nn.GroupKeys(keys, runners.ModelPrefix, 1)
}

// UnwrapPathError drops the path from an *os.PathError, which the caller
// already names.
func UnwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
