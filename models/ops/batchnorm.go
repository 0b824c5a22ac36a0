package ops

import (
	"errors"
	"fmt"
	"math"

	"github.com/chewxy/hm"
	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BatchNormMode selects the statistics BatchNorm2d normalizes with and what
// happens to the running statistics.
type BatchNormMode int

const (
	// BNTrain normalizes with the batch's mean and biased variance and, once
	// per execution of the node, folds them into the running statistics:
	// running = (1-momentum)·running + momentum·batch, using the unbiased
	// batch variance for RunningVar (PyTorch's training mode).
	BNTrain BatchNormMode = iota
	// BNEval normalizes with the running statistics and changes nothing.
	BNEval
	// BNRecalibrate normalizes with batch statistics like BNTrain but leaves
	// the running statistics alone; instead it accumulates every batch's
	// mean and unbiased variance, weighted by the batch size, until
	// BatchNormState.FinishRecalibration stores their exact averages.
	BNRecalibrate
)

func (m BatchNormMode) String() string {
	switch m {
	case BNTrain:
		return "train"
	case BNEval:
		return "eval"
	case BNRecalibrate:
		return "recalibrate"
	}
	return fmt.Sprintf("BatchNormMode(%d)", int(m))
}

// BatchNormState is the explicit state of one BatchNorm2d layer, the
// buffers a PyTorch checkpoint stores as running_mean, running_var and
// num_batches_tracked. The op reads and writes it when the graph runs,
// so one state must not be used by two graphs running at the same time.
//
// Recalibration re-estimates the statistics of a trained network (for a
// subnet sampled from a supernet) as an exact average over N batches:
// run N forward passes in BNRecalibrate mode, then call
// FinishRecalibration. The average weights each batch by its size, as
// mmrazor's CalibrateBNMixin does; with equal batches it equals what
// PyTorch's cumulative average (momentum=None) leaves after
// reset_running_stats and N training-mode batches. The official DetNAS
// search code instead resets the statistics to mean 0, variance 1 and runs
// training-mode batches with momentum 0.1, an exponential average dominated
// by the last few batches; ResetRunningStats followed by BNTrain forwards
// reproduces that.
type BatchNormState struct {
	// RunningMean and RunningVar are float32 vectors with one element per
	// channel.
	RunningMean, RunningVar *tensor.Dense
	// NumBatchesTracked counts training-mode executions (and recalibration
	// batches, see FinishRecalibration).
	NumBatchesTracked int64
	// Momentum is the weight of a new batch in the running statistics.
	Momentum float64
	// Eps is added to the variance before taking its square root.
	Eps float64
	// Sync makes the layer a SyncBN: in training mode, inside a
	// data-parallel training step (dist.BeginStep), its batch statistics
	// (forward) and the sums its input gradient needs (backward) are
	// reduced over the step's ranks, as PyTorch's SyncBatchNorm does.
	// Elsewhere (one process, evaluation, recalibration) it is BN.
	Sync bool

	recal recalibration
}

// recalibration accumulates size-weighted batch statistics.
type recalibration struct {
	mean, variance []float64
	samples        float64
	batches        int64
}

// NewBatchNormState returns the state of a fresh PyTorch BatchNorm2d with
// the given number of channels: running mean 0, running variance 1,
// momentum 0.1, eps 1e-5.
func NewBatchNormState(channels int) *BatchNormState {
	s := &BatchNormState{
		RunningMean: tensor.New(tensor.WithShape(channels), tensor.Of(tensor.Float32)),
		RunningVar:  tensor.New(tensor.WithShape(channels), tensor.Of(tensor.Float32)),
		Momentum:    0.1,
		Eps:         1e-5,
	}
	s.ResetRunningStats()
	return s
}

// Channels is the number of channels the state describes.
func (s *BatchNormState) Channels() int { return s.RunningMean.Shape().TotalSize() }

// ResetRunningStats sets the running mean to 0, the running variance to 1
// and NumBatchesTracked to 0, like PyTorch's reset_running_stats.
func (s *BatchNormState) ResetRunningStats() {
	clear(s.RunningMean.Float32s())
	for i := range s.RunningVar.Float32s() {
		s.RunningVar.Float32s()[i] = 1
	}
	s.NumBatchesTracked = 0
}

// FinishRecalibration stores the averages accumulated by BNRecalibrate
// executions as the running statistics, adds the number of batches to
// NumBatchesTracked (mmrazor runs its calibration batches in training mode,
// which counts them) and clears the accumulators. It reports false, and
// changes nothing, when no batch was accumulated since the last call: a
// layer the recalibrated subnet does not use keeps its statistics.
func (s *BatchNormState) FinishRecalibration() bool {
	r := &s.recal
	if r.batches == 0 {
		return false
	}
	mean, variance := s.RunningMean.Float32s(), s.RunningVar.Float32s()
	for c := range mean {
		mean[c] = float32(r.mean[c] / r.samples)
		variance[c] = float32(r.variance[c] / r.samples)
	}
	s.NumBatchesTracked += r.batches
	s.recal = recalibration{}
	return true
}

// DiscardRecalibration drops whatever BNRecalibrate executions have
// accumulated since the last FinishRecalibration.
func (s *BatchNormState) DiscardRecalibration() { s.recal = recalibration{} }

// validate checks the state fits c channels.
func (s *BatchNormState) validate(c int) error {
	switch {
	case s == nil:
		return errors.New("state is nil")
	case s.RunningMean == nil || s.RunningVar == nil:
		return errors.New("state has no running statistics")
	case s.RunningMean.Dtype() != tensor.Float32 || s.RunningVar.Dtype() != tensor.Float32:
		return fmt.Errorf("running statistics are %v and %v, want float32", s.RunningMean.Dtype(), s.RunningVar.Dtype())
	case !s.RunningMean.Shape().Eq(tensor.Shape{c}) || !s.RunningVar.Shape().Eq(tensor.Shape{c}):
		return fmt.Errorf("running statistics have shapes %v and %v, want (%d)", s.RunningMean.Shape(), s.RunningVar.Shape(), c)
	case !(s.Momentum >= 0 && s.Momentum <= 1):
		return fmt.Errorf("momentum %g is outside [0, 1]", s.Momentum)
	case !(s.Eps > 0):
		return fmt.Errorf("eps %g must be positive", s.Eps)
	}
	return nil
}

// BatchNorm2d normalizes x (N×C×H×W) per channel and applies the affine
// gamma·x̂ + beta (gamma and beta have C elements), like
// torch.nn.BatchNorm2d. The mode picks batch or running statistics; see
// BatchNormMode for how each updates st. Gradients flow to x, gamma and
// beta: through the batch statistics in BNTrain and BNRecalibrate, with
// the running statistics as constants in BNEval.
func BatchNorm2d(x, gamma, beta *gorgonia.Node, st *BatchNormState, mode BatchNormMode) (*gorgonia.Node, error) {
	return batchNorm2d(x, gamma, beta, st, mode, false)
}

// BatchNorm2dReLU is ReLU(BatchNorm2d(x, gamma, beta)) in one op: one pass
// over the data forward and the ReLU's mask folded into the two backward
// passes, with the answers of the two ops in sequence (up to the rounding
// of a fused multiply-add).
func BatchNorm2dReLU(x, gamma, beta *gorgonia.Node, st *BatchNormState, mode BatchNormMode) (*gorgonia.Node, error) {
	return batchNorm2d(x, gamma, beta, st, mode, true)
}

func batchNorm2d(x, gamma, beta *gorgonia.Node, st *BatchNormState, mode BatchNormMode, relu bool) (*gorgonia.Node, error) {
	if err := checkNode("BatchNorm2d", "input", x, 4); err != nil {
		return nil, err
	}
	c := x.Shape()[1]
	for _, p := range []struct {
		what string
		n    *gorgonia.Node
	}{{"gamma", gamma}, {"beta", beta}} {
		if err := checkNode("BatchNorm2d", p.what, p.n, 1); err != nil {
			return nil, err
		}
		if p.n.Shape()[0] != c {
			return nil, fmt.Errorf("BatchNorm2d(%s): %s %q has %d elements, want %d (channels)", x.Name(), p.what, p.n.Name(), p.n.Shape()[0], c)
		}
	}
	if err := st.validate(c); err != nil {
		return nil, fmt.Errorf("BatchNorm2d(%s): %w", x.Name(), err)
	}
	if mode != BNTrain && mode != BNEval && mode != BNRecalibrate {
		return nil, fmt.Errorf("BatchNorm2d(%s): unknown mode %v", x.Name(), mode)
	}
	if s := x.Shape(); mode != BNEval && s[0]*s[2]*s[3] < 2 {
		return nil, fmt.Errorf("BatchNorm2d(%s): batch statistics need more than one value per channel, input is %v", x.Name(), s)
	}
	return apply(&batchNormOp{st: st, mode: mode, shape: x.Shape().Clone(), relu: relu}, x, gamma, beta)
}

// batchNormOp is the forward pass: (x, gamma, beta) -> y, followed by a
// ReLU when relu. It keeps the mean and inverse standard deviation it last
// normalized with for the backward ops.
type batchNormOp struct {
	base
	st     *BatchNormState
	mode   BatchNormMode
	shape  tensor.Shape
	relu   bool
	mean   []float32
	invStd []float32
	// share is this rank's part of the values the statistics came from: 1
	// but in a synchronised step.
	share float64
}

// syncComm is the group a SyncBN layer reduces over in this execution, or
// nil.
func (op *batchNormOp) syncComm() dist.Comm {
	if !op.st.Sync || op.mode != BNTrain {
		return nil
	}
	if c := dist.Step(); c.Size() > 1 {
		return c
	}
	return nil
}

// syncStats turns this rank's per-channel mean and biased variance over m
// values into those of every rank's values together and returns their
// count: the sums about the global mean are reduced in float64, so no
// large sum of squares cancels.
func syncStats(c dist.Comm, mean, variance []float64, m float64) (float64, error) {
	ch := len(mean)
	buf := make([]float64, ch+1)
	for i, v := range mean {
		buf[i] = v * m
	}
	buf[ch] = m
	if err := c.AllReduceFloat64(buf); err != nil {
		return 0, err
	}
	total := buf[ch]
	for i := range mean {
		g := buf[i] / total
		d := mean[i] - g
		buf[i] = m * (variance[i] + d*d)
		mean[i] = g
	}
	if err := c.AllReduceFloat64(buf[:ch]); err != nil {
		return 0, err
	}
	for i := range variance {
		variance[i] = max(0, buf[i]/total)
	}
	return total, nil
}

func (op *batchNormOp) Arity() int    { return 3 }
func (op *batchNormOp) Type() hm.Type { return fnType(4, 4, 1, 1) }
func (op *batchNormOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.shape.Clone(), nil
}
func (op *batchNormOp) String() string {
	name := "BatchNorm2d"
	if op.relu {
		name = "BatchNorm2dReLU"
	}
	return fmt.Sprintf("%s{%v %v state %p}", name, op.shape, op.mode, op.st)
}

func (op *batchNormOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) { return op.do(nil, in) }
func (op *batchNormOp) UsePreallocDo(p gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(p, in)
}

func (op *batchNormOp) do(prealloc gorgonia.Value, in []gorgonia.Value) (gorgonia.Value, error) {
	n, c, hw := op.shape[0], op.shape[1], op.shape[2]*op.shape[3]
	x, err := f32(in[0], op.shape)
	if err != nil {
		return nil, fmt.Errorf("%v input: %w", op, err)
	}
	gamma, err := f32(in[1], tensor.Shape{c})
	if err != nil {
		return nil, fmt.Errorf("%v gamma: %w", op, err)
	}
	beta, err := f32(in[2], tensor.Shape{c})
	if err != nil {
		return nil, fmt.Errorf("%v beta: %w", op, err)
	}
	if err := op.st.validate(c); err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	if op.mean == nil {
		op.mean, op.invStd = make([]float32, c), make([]float32, c)
	}
	st := op.st
	if op.mode == BNEval {
		copy(op.mean, st.RunningMean.Float32s())
		for ch, v := range st.RunningVar.Float32s() {
			op.invStd[ch] = float32(1 / math.Sqrt(float64(v)+st.Eps))
		}
	} else {
		mean, variance := make([]float64, c), make([]float64, c)
		batchStats(n, c, hw, x, mean, variance)
		m := float64(n * hw)
		op.share = 1
		if comm := op.syncComm(); comm != nil {
			local := m
			if m, err = syncStats(comm, mean, variance, m); err != nil {
				return nil, fmt.Errorf("%v: SyncBN: %w", op, err)
			}
			op.share = local / m
		}
		for ch := range mean {
			op.mean[ch] = float32(mean[ch])
			op.invStd[ch] = float32(1 / math.Sqrt(variance[ch]+st.Eps))
		}
		op.updateState(mean, variance, m, n)
	}
	out, y := op.output(prealloc, op.shape)
	bnNormalize(n, c, hw, x, op.mean, op.invStd, gamma, beta, op.relu, y)
	return out, nil
}

// updateState folds batch statistics (biased variance over m values per
// channel, from a batch of n images) into the state as the mode says.
func (op *batchNormOp) updateState(mean, variance []float64, m float64, n int) {
	st := op.st
	switch op.mode {
	case BNTrain:
		rm, rv := st.RunningMean.Float32s(), st.RunningVar.Float32s()
		for ch := range mean {
			unbiased := variance[ch] * m / (m - 1)
			rm[ch] = float32(st.Momentum*mean[ch] + (1-st.Momentum)*float64(rm[ch]))
			rv[ch] = float32(st.Momentum*unbiased + (1-st.Momentum)*float64(rv[ch]))
		}
		st.NumBatchesTracked++
	case BNRecalibrate:
		r := &st.recal
		if r.mean == nil {
			r.mean, r.variance = make([]float64, len(mean)), make([]float64, len(mean))
		}
		w := float64(n)
		for ch := range mean {
			r.mean[ch] += w * mean[ch]
			r.variance[ch] += w * variance[ch] * m / (m - 1)
		}
		r.samples += w
		r.batches++
	}
}

func (op *batchNormOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *batchNormOp) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	// A fused ReLU's mask comes from the output.
	var y gorgonia.Nodes
	if op.relu {
		y = gorgonia.Nodes{output}
	}
	pg, err := apply(&batchNormParamGradOp{fwd: op}, append(gorgonia.Nodes{inputs[0], grad}, y...)...)
	if err != nil {
		return nil, err
	}
	gx, err := apply(&batchNormInputGradOp{fwd: op}, append(gorgonia.Nodes{inputs[0], inputs[1], grad, pg}, y...)...)
	if err != nil {
		return nil, err
	}
	c := op.shape[1]
	gGamma, err := apply(&rowOp{row: 0, rows: 2, cols: c}, pg)
	if err != nil {
		return nil, err
	}
	gBeta, err := apply(&rowOp{row: 1, rows: 2, cols: c}, pg)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{gx, gGamma, gBeta}, nil
}

// batchNormParamGradOp computes (x, gy) -> [dgamma; dbeta] as a 2×C
// matrix: one pass gives both sums, which the input gradient also needs.
// After a fused ReLU it takes the forward output too: (x, gy, y).
type batchNormParamGradOp struct {
	backwardOnly
	fwd *batchNormOp
}

func (op *batchNormParamGradOp) Arity() int {
	if op.fwd.relu {
		return 3
	}
	return 2
}

func (op *batchNormParamGradOp) Type() hm.Type {
	if op.fwd.relu {
		return fnType(2, 4, 4, 4)
	}
	return fnType(2, 4, 4)
}
func (op *batchNormParamGradOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{2, op.fwd.shape[1]}, nil
}
func (op *batchNormParamGradOp) String() string {
	return fmt.Sprintf("BatchNorm2dParamGrad{%p}", op.fwd)
}

func (op *batchNormParamGradOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(nil, in)
}
func (op *batchNormParamGradOp) UsePreallocDo(p gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(p, in)
}

func (op *batchNormParamGradOp) do(prealloc gorgonia.Value, in []gorgonia.Value) (gorgonia.Value, error) {
	s := op.fwd.shape
	if op.fwd.mean == nil {
		return nil, fmt.Errorf("%v: the forward batch norm has not run", op)
	}
	x, err := f32(in[0], s)
	if err != nil {
		return nil, fmt.Errorf("%v input: %w", op, err)
	}
	gy, err := f32(in[1], s)
	if err != nil {
		return nil, fmt.Errorf("%v output gradient: %w", op, err)
	}
	var y []float32
	if op.fwd.relu {
		if y, err = f32(in[2], s); err != nil {
			return nil, fmt.Errorf("%v output: %w", op, err)
		}
	}
	c := s[1]
	out, pg := op.output(prealloc, tensor.Shape{2, c})
	bnParamGrad(s[0], c, s[2]*s[3], x, gy, y, op.fwd.mean, op.fwd.invStd, pg[:c], pg[c:])
	return out, nil
}

// batchNormInputGradOp computes (x, gamma, gy, [dgamma; dbeta]) -> gx,
// with the forward output y as a fifth input after a fused ReLU.
type batchNormInputGradOp struct {
	backwardOnly
	fwd *batchNormOp
}

func (op *batchNormInputGradOp) Arity() int {
	if op.fwd.relu {
		return 5
	}
	return 4
}

func (op *batchNormInputGradOp) Type() hm.Type {
	if op.fwd.relu {
		return fnType(4, 4, 1, 4, 2, 4)
	}
	return fnType(4, 4, 1, 4, 2)
}
func (op *batchNormInputGradOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.fwd.shape.Clone(), nil
}
func (op *batchNormInputGradOp) String() string {
	return fmt.Sprintf("BatchNorm2dInputGrad{%p}", op.fwd)
}

func (op *batchNormInputGradOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(nil, in)
}
func (op *batchNormInputGradOp) UsePreallocDo(p gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(p, in)
}

func (op *batchNormInputGradOp) do(prealloc gorgonia.Value, in []gorgonia.Value) (gorgonia.Value, error) {
	s := op.fwd.shape
	c := s[1]
	if op.fwd.mean == nil {
		return nil, fmt.Errorf("%v: the forward batch norm has not run", op)
	}
	x, err := f32(in[0], s)
	if err != nil {
		return nil, fmt.Errorf("%v input: %w", op, err)
	}
	gamma, err := f32(in[1], tensor.Shape{c})
	if err != nil {
		return nil, fmt.Errorf("%v gamma: %w", op, err)
	}
	gy, err := f32(in[2], s)
	if err != nil {
		return nil, fmt.Errorf("%v output gradient: %w", op, err)
	}
	pg, err := f32(in[3], tensor.Shape{2, c})
	if err != nil {
		return nil, fmt.Errorf("%v parameter gradients: %w", op, err)
	}
	var y []float32
	if op.fwd.relu {
		if y, err = f32(in[4], s); err != nil {
			return nil, fmt.Errorf("%v output: %w", op, err)
		}
	}
	dgamma, dbeta := pg[:c], pg[c:]
	if comm := op.fwd.syncComm(); comm != nil {
		// The input gradient takes every rank's sums over the global count:
		// bnInputGrad divides by this rank's count, so the sums are scaled
		// by this rank's share. The parameter gradients stay this rank's;
		// the runner averages them as every other gradient.
		sums := make([]float64, 2*c)
		for i, v := range pg {
			sums[i] = float64(v)
		}
		if err := comm.AllReduceFloat64(sums); err != nil {
			return nil, fmt.Errorf("%v: SyncBN: %w", op, err)
		}
		scaled := make([]float32, 2*c)
		for i, v := range sums {
			scaled[i] = float32(v * op.fwd.share)
		}
		dgamma, dbeta = scaled[:c], scaled[c:]
	}
	out, gx := op.output(prealloc, s)
	bnInputGrad(s[0], c, s[2]*s[3], x, gy, y, gamma, op.fwd.mean, op.fwd.invStd, dgamma, dbeta, op.fwd.mode != BNEval, gx)
	return out, nil
}

// rowOp copies one row out of a rows×cols matrix.
type rowOp struct {
	backwardOnly
	row, rows, cols int
}

func (op *rowOp) Arity() int    { return 1 }
func (op *rowOp) Type() hm.Type { return fnType(1, 2) }
func (op *rowOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.cols}, nil
}
func (op *rowOp) String() string { return fmt.Sprintf("Row{%d of %dx%d}", op.row, op.rows, op.cols) }

func (op *rowOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) { return op.do(nil, in) }
func (op *rowOp) UsePreallocDo(p gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(p, in)
}

func (op *rowOp) do(prealloc gorgonia.Value, in []gorgonia.Value) (gorgonia.Value, error) {
	m, err := f32(in[0], tensor.Shape{op.rows, op.cols})
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	out, r := op.output(prealloc, tensor.Shape{op.cols})
	copy(r, m[op.row*op.cols:(op.row+1)*op.cols])
	return out, nil
}

// batchStats computes each channel's mean and biased variance over an
// n×c×hw tensor in one pass, accumulating in float64 (PyTorch's CPU kernel
// accumulates float32 batch norm statistics in double as well). Values are
// shifted by the channel's first element first, so a mean far from zero
// does not cancel the variance away.
func batchStats[T blas.Float](n, c, hw int, x []T, mean, variance []float64) {
	if x32, ok := any(x).([]float32); ok && batchStatsNative(n, c, hw, x32, mean, variance) {
		return
	}
	m := float64(n * hw)
	parallel(c, func(_, lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			shift := float64(x[ch*hw])
			var s, s2 float64
			for i := 0; i < n; i++ {
				a, b := shiftedSums(x[(i*c+ch)*hw:(i*c+ch+1)*hw], shift)
				s += a
				s2 += b
			}
			d := s / m
			mean[ch] = shift + d
			variance[ch] = max(0, s2/m-d*d)
		}
	})
}

// shiftedSums returns Σ(v-k) and Σ(v-k)² in float64, with four partial sums
// each so consecutive additions do not wait on one another.
func shiftedSums[T blas.Float](s []T, k float64) (sum, squares float64) {
	var a0, a1, a2, a3, q0, q1, q2, q3 float64
	i := 0
	for ; i+3 < len(s); i += 4 {
		d0, d1, d2, d3 := float64(s[i])-k, float64(s[i+1])-k, float64(s[i+2])-k, float64(s[i+3])-k
		a0, a1, a2, a3 = a0+d0, a1+d1, a2+d2, a3+d3
		q0, q1, q2, q3 = q0+d0*d0, q1+d1*d1, q2+d2*d2, q3+d3*d3
	}
	for ; i < len(s); i++ {
		d := float64(s[i]) - k
		a0 += d
		q0 += d * d
	}
	return (a0 + a1) + (a2 + a3), (q0 + q1) + (q2 + q3)
}

// bnNormalize computes y = (x-mean)·invStd·gamma + beta per channel, then,
// when relu, max(y, 0) (NaN and -0 pass, as in PyTorch's ReLU).
func bnNormalize[T blas.Float](n, c, hw int, x, mean, invStd, gamma, beta []T, relu bool, y []T) {
	scale, shift := make([]T, c), make([]T, c)
	for ch := range scale {
		scale[ch] = invStd[ch] * gamma[ch]
		shift[ch] = beta[ch] - mean[ch]*scale[ch]
	}
	if x32, ok := any(x).([]float32); ok &&
		normalizeNative(n, c, hw, x32, any(scale).([]float32), any(shift).([]float32), relu, any(y).([]float32)) {
		return
	}
	parallel(n*c, func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			a, b := scale[t%c], shift[t%c]
			src, dst := x[t*hw:(t+1)*hw], y[t*hw:(t+1)*hw]
			for i, v := range src {
				v = v*a + b
				if relu && v < 0 {
					v = 0
				}
				dst[i] = v
			}
		}
	})
}

// reluGrad is gy where the ReLU output y is positive or NaN, and zero where
// y <= 0 (PyTorch's threshold_backward).
func reluGrad[T blas.Float](gy, y T) T {
	if y <= 0 {
		return 0
	}
	return gy
}

// bnParamGrad computes dgamma = Σ g·x̂ and dbeta = Σ g per channel, where
// x̂ = (x-mean)·invStd and g is gy, or, when y (the output of a fused ReLU)
// is not nil, gy masked by the ReLU.
func bnParamGrad[T blas.Float](n, c, hw int, x, gy, y, mean, invStd, dgamma, dbeta []T) {
	if x32, ok := any(x).([]float32); ok {
		sum, dot := make([]float64, c), make([]float64, c)
		if gradSumsNative(n, c, hw, x32, any(gy).([]float32), any(y).([]float32), any(mean).([]float32), sum, dot) {
			for ch := range sum {
				dbeta[ch] = T(sum[ch])
				dgamma[ch] = T(dot[ch] * float64(invStd[ch]))
			}
			return
		}
	}
	parallel(c, func(_, lo, hi int) {
		var masked []T
		if y != nil {
			masked = make([]T, hw)
		}
		for ch := lo; ch < hi; ch++ {
			var sg, sgx float64
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				g := gy[off : off+hw]
				if y != nil {
					for j, v := range g {
						masked[j] = reluGrad(v, y[off+j])
					}
					g = masked
				}
				a, b := gradSums(g, x[off:off+hw], mean[ch])
				sg += a
				sgx += b
			}
			dbeta[ch] = T(sg)
			dgamma[ch] = T(sgx * float64(invStd[ch]))
		}
	})
}

// gradSums returns Σg and Σg·(x-mu) over one plane, with four partial sums
// each.
func gradSums[T blas.Float](g, x []T, mu T) (sum, dot float64) {
	x = x[:len(g)]
	var a0, a1, a2, a3, b0, b1, b2, b3 T
	i := 0
	for ; i+3 < len(g); i += 4 {
		g0, g1, g2, g3 := g[i], g[i+1], g[i+2], g[i+3]
		a0, a1, a2, a3 = a0+g0, a1+g1, a2+g2, a3+g3
		b0, b1, b2, b3 = b0+g0*(x[i]-mu), b1+g1*(x[i+1]-mu), b2+g2*(x[i+2]-mu), b3+g3*(x[i+3]-mu)
	}
	for ; i < len(g); i++ {
		a0 += g[i]
		b0 += g[i] * (x[i] - mu)
	}
	return float64((a0 + a1) + (a2 + a3)), float64((b0 + b1) + (b2 + b3))
}

// bnInputGrad computes the input gradient. With batch statistics, the mean
// and variance depend on x too:
//
//	gx = gamma·invStd·(g - dbeta/M - x̂·dgamma/M),  M = n·hw;
//
// with running statistics (eval) they are constants and gx = gamma·invStd·g.
// g is gy, masked by the ReLU when y (a fused ReLU's output) is not nil;
// dgamma and dbeta are the masked sums bnParamGrad returns.
func bnInputGrad[T blas.Float](n, c, hw int, x, gy, y, gamma, mean, invStd, dgamma, dbeta []T, batch bool, gx []T) {
	m := T(n * hw)
	// gx = k·g + x·a + b
	k, a, b := make([]T, c), make([]T, c), make([]T, c)
	for ch := range k {
		k[ch] = gamma[ch] * invStd[ch]
		a[ch] = -k[ch] * invStd[ch] * dgamma[ch] / m
		b[ch] = -k[ch]*dbeta[ch]/m - mean[ch]*a[ch]
	}
	if !batch {
		a, b = nil, nil
	}
	if x32, ok := any(x).([]float32); ok && inputGradNative(n, c, hw, x32, any(gy).([]float32), any(y).([]float32),
		any(k).([]float32), any(a).([]float32), any(b).([]float32), any(gx).([]float32)) {
		return
	}
	parallel(n*c, func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			ch := t % c
			gs, dst := gy[t*hw:(t+1)*hw], gx[t*hw:(t+1)*hw]
			var ys []T
			if y != nil {
				ys = y[t*hw : (t+1)*hw][:len(gs)]
			}
			if !batch {
				for i, g := range gs {
					if ys != nil {
						g = reluGrad(g, ys[i])
					}
					dst[i] = k[ch] * g
				}
				continue
			}
			xs := x[t*hw : (t+1)*hw][:len(gs)]
			for i, g := range gs {
				if ys != nil {
					g = reluGrad(g, ys[i])
				}
				dst[i] = k[ch]*g + xs[i]*a[ch] + b[ch]
			}
		}
	})
}
