package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/runners"
	"github.com/razorgo/razor/runners/checkpoint"
)

// LoadWeights loads a checkpoint to evaluate or run alg: razor's format or a
// PyTorch .pth, keyed by the algorithm (architecture.model.*, mmrazor's
// keys) or by the model alone (mmcls's). It refuses a checkpoint that
// leaves any weight unset or holds one of another shape, and notes on warn
// the tensors the model does not use (for a subnet, the supernet's other
// ops).
func LoadWeights(path string, alg algorithms.Algorithm, warn io.Writer) error {
	rep, _, err := checkpoint.LoadModel(path, alg, checkpoint.LoadOptions{Rules: runners.DefaultLoadRules})
	if err != nil {
		return err
	}
	if len(rep.Missing) > 0 {
		return fmt.Errorf("checkpoint %s lacks %d of the model's weights, such as %s; is it a checkpoint of this config's model (and subnet)?", path, len(rep.Missing), strings.Join(rep.Missing[:min(3, len(rep.Missing))], ", "))
	}
	if len(rep.Mismatched) > 0 {
		return fmt.Errorf("checkpoint %s has %d weights of another shape than the model's, such as %s; weights have another shape when the checkpoint was trained with another widen_factor, num_classes or subnet", path, len(rep.Mismatched), rep.Mismatched[0])
	}
	if n := len(rep.Unexpected); n > 0 {
		fmt.Fprintf(warn, "note: %d checkpoint tensors are not part of this model (for a subnet, the supernet's other ops), such as %s\n", n, rep.Unexpected[0])
	}
	return nil
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
