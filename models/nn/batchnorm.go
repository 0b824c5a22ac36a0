package nn

import (
	"fmt"

	"github.com/razorgo/razor/models/ops"
	"gorgonia.org/gorgonia"
)

// BatchNorm2d is torch.nn.BatchNorm2d: parameters "weight" and "bias" (one
// per channel, kind norm; initialised to 1 and 0 as in PyTorch) and buffers
// "running_mean", "running_var" (float32) and "num_batches_tracked" (int64),
// all backed by State. Momentum 0.1 and eps 1e-5 unless State is changed.
//
// In training mode a forward pass normalises with batch statistics and
// updates the running statistics when the graph runs; in evaluation mode it
// uses the running statistics. Recalibration (SetRecalibrating) overrides
// both: batch statistics are used and accumulated, and
// FinishBNRecalibration stores their exact average.
type BatchNorm2d struct {
	Base
	// Weight and Bias are the affine parameters.
	Weight, Bias *Param
	// State holds the running statistics the buffers expose.
	State         *ops.BatchNormState
	recalibrating bool
}

// NewBatchNorm2d builds a batch norm over channels channels.
func NewBatchNorm2d(channels int) (*BatchNorm2d, error) {
	if channels <= 0 {
		return nil, fmt.Errorf("batchnorm2d: channels %d must be positive", channels)
	}
	n := &BatchNorm2d{State: ops.NewBatchNormState(channels)}
	n.Weight = n.AddParam("weight", KindNorm, channels)
	n.Bias = n.AddParam("bias", KindNorm, channels)
	InitConstant(n.Weight, 1)
	n.AddBuffer("running_mean", n.State.RunningMean)
	n.AddBuffer("running_var", n.State.RunningVar)
	n.AddCounter("num_batches_tracked", &n.State.NumBatchesTracked)
	return n, nil
}

// SetRecalibrating turns recalibration on or off for this layer; see
// RecalibrateBN for the whole model.
func (n *BatchNorm2d) SetRecalibrating(on bool) {
	n.recalibrating = on
	if !on {
		n.State.DiscardRecalibration()
	}
}

// Mode is the ops mode the next forward pass uses.
func (n *BatchNorm2d) Mode() ops.BatchNormMode {
	switch {
	case n.recalibrating:
		return ops.BNRecalibrate
	case n.Training():
		return ops.BNTrain
	}
	return ops.BNEval
}

// Forward normalises x (N × C × H × W).
func (n *BatchNorm2d) Forward(b *Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	return n.forward(b, x, ops.BatchNorm2d)
}

// forwardReLU normalises x and applies a ReLU in one fused op; the caller
// accounts for the ReLU's cost.
func (n *BatchNorm2d) forwardReLU(b *Binding, x *gorgonia.Node) (*gorgonia.Node, error) {
	return n.forward(b, x, ops.BatchNorm2dReLU)
}

func (n *BatchNorm2d) forward(b *Binding, x *gorgonia.Node,
	op func(x, gamma, beta *gorgonia.Node, st *ops.BatchNormState, mode ops.BatchNormMode) (*gorgonia.Node, error)) (*gorgonia.Node, error) {
	y, err := op(x, b.Param(n.Weight), b.Param(n.Bias), n.State, n.Mode())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.Path(), err)
	}
	b.AddCost(Cost{Path: n.Path(), Type: "BatchNorm2d", FLOPs: 2 * Elements(x), Params: ParamCount(n.Weight, n.Bias)})
	return y, nil
}

// RecalibrateBN switches every BatchNorm2d under m into (on) or out of
// (off) recalibration. Switching off discards unfinished accumulations.
//
// To re-estimate a subnet's statistics as an exact average over N batches:
// RecalibrateBN(m, true); run N forward passes; FinishBNRecalibration(m);
// RecalibrateBN(m, false).
func RecalibrateBN(m Module, on bool) {
	Walk(m, func(_ string, x Module) {
		if bn, ok := x.(*BatchNorm2d); ok {
			bn.SetRecalibrating(on)
		}
	})
}

// FinishBNRecalibration stores the averaged statistics in every BatchNorm2d
// under m that saw at least one batch since recalibration began, and
// returns how many did; layers off the recalibrated path keep theirs.
func FinishBNRecalibration(m Module) int {
	n := 0
	Walk(m, func(_ string, x Module) {
		if bn, ok := x.(*BatchNorm2d); ok && bn.State.FinishRecalibration() {
			n++
		}
	})
	return n
}
