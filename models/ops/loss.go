package ops

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Losses reduce to a scalar node that gorgonia.Grad can start from: the
// mean (PyTorch's reduction="mean") for the classification losses, the
// weighted sum for the detection losses, whose callers divide by an
// average factor of their own as mmdet's weight_reduce_loss does. Targets,
// labels and weights are data: no gradient flows to them.

// IgnoreLabel is the label SoftmaxCrossEntropySum skips (no loss, no
// gradient): PyTorch's default ignore_index, which mmdet keeps.
const IgnoreLabel = -100

// CrossEntropy is the mean over N samples of the cross-entropy between
// softmax(logits) (N×K) and label-smoothed targets, mmcls's
// LabelSmoothLoss in its "original" mode: the target of sample i is
// (1-eps)·onehot(labels[i]) + eps/K. eps = 0 is plain cross-entropy
// (torch.nn.functional.cross_entropy). Labels must lie in [0, K).
func CrossEntropy(logits *gorgonia.Node, labels []int, eps float64) (*gorgonia.Node, error) {
	if err := checkNode("CrossEntropy", "logits", logits, 2); err != nil {
		return nil, err
	}
	n, k := logits.Shape()[0], logits.Shape()[1]
	if len(labels) != n {
		return nil, fmt.Errorf("CrossEntropy(%s): %d labels for %d samples", logits.Name(), len(labels), n)
	}
	if !(eps >= 0 && eps < 1) {
		return nil, fmt.Errorf("CrossEntropy(%s): label smoothing %g is outside [0, 1)", logits.Name(), eps)
	}
	h := fnv.New64a()
	for i, l := range labels {
		if l < 0 || l >= k {
			return nil, fmt.Errorf("CrossEntropy(%s): label %d of sample %d is outside [0, %d)", logits.Name(), l, i, k)
		}
		fmt.Fprint(h, l, ",")
	}
	name := fmt.Sprintf("CrossEntropy{%dx%d eps %g labels %x}", n, k, eps, h.Sum64())
	return crossEntropyNode(name, logits, append([]int(nil), labels...), eps, nil, 1/float64(n))
}

// SoftmaxCrossEntropySum is Σ_i weights[i]·CE(softmax(logits_i), labels[i])
// over the N rows of logits (N×C), the sum mmdet's cross_entropy reduces
// (F.cross_entropy with reduction="none", times the sample weights). A
// label of IgnoreLabel adds nothing and gets no gradient, whatever its
// weight; every other label must lie in [0, C). weights, one per sample,
// may be nil for all ones.
func SoftmaxCrossEntropySum(logits *gorgonia.Node, labels []int, weights []float32) (*gorgonia.Node, error) {
	if err := checkNode("SoftmaxCrossEntropySum", "logits", logits, 2); err != nil {
		return nil, err
	}
	n, k := logits.Shape()[0], logits.Shape()[1]
	if len(labels) != n {
		return nil, fmt.Errorf("SoftmaxCrossEntropySum(%s): %d labels for %d samples", logits.Name(), len(labels), n)
	}
	if weights != nil && len(weights) != n {
		return nil, fmt.Errorf("SoftmaxCrossEntropySum(%s): %d weights for %d samples", logits.Name(), len(weights), n)
	}
	h := fnv.New64a()
	for i, l := range labels {
		if l != IgnoreLabel && (l < 0 || l >= k) {
			return nil, fmt.Errorf("SoftmaxCrossEntropySum(%s): label %d of sample %d is outside [0, %d) and is not the ignored label %d", logits.Name(), l, i, k, IgnoreLabel)
		}
		fmt.Fprint(h, l, ",")
	}
	hashFloats(h, weights)
	name := fmt.Sprintf("SoftmaxCrossEntropySum{%dx%d labels+weights %x}", n, k, h.Sum64())
	return crossEntropyNode(name, logits, append([]int(nil), labels...), 0, append([]float32(nil), weights...), 1)
}

// crossEntropyNode builds scale·crossEntropySum over logits (N×K); the
// labels and weights belong to the node from here on.
func crossEntropyNode(name string, logits *gorgonia.Node, labels []int, eps float64, w []float32, scale float64) (*gorgonia.Node, error) {
	n, k := logits.Shape()[0], logits.Shape()[1]
	if len(w) == 0 {
		w = nil
	}
	return apply(&kernelOp{
		name: name,
		in:   shapes(logits),
		out:  tensor.ScalarShape(),
		kernel: func(o []float32, in [][]float32) {
			o[0] = float32(scale * crossEntropySum(n, k, in[0], labels, eps, w))
		},
		diffWRT: []bool{true},
		symDiff: func(inputs gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := apply(&kernelOp{
				name: "Grad" + name,
				in:   shapes(inputs[0], grad),
				out:  tensor.Shape{n, k},
				kernel: func(o []float32, in [][]float32) {
					crossEntropyBackward(n, k, in[0], labels, eps, w, scale*float64(in[1][0]), o)
				},
			}, inputs[0], grad)
			return gorgonia.Nodes{gx}, err
		},
	}, logits)
}

// crossEntropySum returns Σ_i w_i·[logsumexp(x_i) - Σ_k t_ik·x_ik] over the
// rows whose label is not negative (ignored); the smoothed targets sum to
// one, so each term is -Σ_k t_ik·log softmax(x_i)_k. w nil means all ones.
func crossEntropySum[T blas.Float](n, k int, x []T, labels []int, eps float64, w []float32) float64 {
	p := make([]T, k)
	var total float64
	for i := 0; i < n; i++ {
		if labels[i] < 0 || (w != nil && w[i] == 0) {
			continue
		}
		row := x[i*k : (i+1)*k]
		lse := softmaxRow(row, p)
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		l := lse - (1-eps)*float64(row[labels[i]]) - eps/float64(k)*sum
		if w != nil {
			l *= float64(w[i])
		}
		total += l
	}
	return total
}

// crossEntropyBackward computes gx_i = scale·w_i·(softmax(x_i) - t_i), zero
// for ignored rows.
func crossEntropyBackward[T blas.Float](n, k int, x []T, labels []int, eps float64, w []float32, scale float64, gx []T) {
	off := eps / float64(k)
	parallel(n, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			out := gx[i*k : (i+1)*k]
			s := scale
			if w != nil {
				s *= float64(w[i])
			}
			if labels[i] < 0 || s == 0 {
				clear(out)
				continue
			}
			softmaxRow(x[i*k:(i+1)*k], out)
			for j := range out {
				t := off
				if j == labels[i] {
					t += 1 - eps
				}
				out[j] = T((float64(out[j]) - t) * s)
			}
		}
	})
}

// pointLoss is a loss of one prediction against its target, with its
// derivative in the prediction.
type pointLoss func(p, t float64) (loss, grad float64)

// l1 is |p - t|; its derivative at p = t is 0, as torch.sign gives.
func l1(p, t float64) (float64, float64) {
	d := p - t
	switch {
	case d > 0:
		return d, 1
	case d < 0:
		return -d, -1
	}
	return 0, 0
}

// smoothL1 is 0.5·d²/beta where |d| < beta and |d| - 0.5·beta elsewhere
// (mmdet's smooth_l1_loss and PyTorch's smooth_l1_loss); beta = 0 is L1.
func smoothL1(beta float64) pointLoss {
	return func(p, t float64) (float64, float64) {
		d := p - t
		if math.Abs(d) < beta {
			return 0.5 * d * d / beta, d / beta
		}
		loss, grad := l1(p, t)
		return loss - 0.5*beta, grad
	}
}

// bceWithLogits is max(x,0) - x·t + log(1+exp(-|x|)), the stable form of
// -t·log σ(x) - (1-t)·log(1-σ(x)); its derivative is σ(x) - t.
func bceWithLogits(x, t float64) (float64, float64) {
	loss := math.Max(x, 0) - x*t + math.Log1p(math.Exp(-math.Abs(x)))
	var s float64
	if x >= 0 {
		s = 1 / (1 + math.Exp(-x))
	} else {
		e := math.Exp(x)
		s = e / (1 + e)
	}
	return loss, s - t
}

// L1Loss is the mean over all elements of weight·|pred - target|; weight
// may be nil.
func L1Loss(pred, target, weight *gorgonia.Node) (*gorgonia.Node, error) {
	return meanPointLoss("L1Loss", "", l1, pred, target, weight)
}

// L1Sum is Σ weight·|pred - target| over every element of pred (any
// shape, N×4 for box deltas), mmdet's l1_loss before reduction. target and
// weight hold one value per element in pred's row-major order; weight may
// be nil for all ones. The gradient at pred = target is 0, as torch.abs
// gives.
func L1Sum(pred *gorgonia.Node, target, weight []float32) (*gorgonia.Node, error) {
	return sumPointLoss("L1Sum", "", l1, pred, target, weight)
}

// SmoothL1Sum is Σ weight·smoothL1(pred - target) over every element of
// pred, mmdet's smooth_l1_loss before reduction: 0.5·d²/beta where
// |d| < beta, |d| - 0.5·beta elsewhere. beta must be positive, as mmdet
// asserts; target and weight are as for L1Sum.
func SmoothL1Sum(pred *gorgonia.Node, target, weight []float32, beta float64) (*gorgonia.Node, error) {
	if !(beta > 0) || math.IsInf(beta, 1) {
		return nil, fmt.Errorf("SmoothL1Sum: beta %g must be positive and finite", beta)
	}
	return sumPointLoss("SmoothL1Sum", fmt.Sprintf("beta %g", beta), smoothL1(beta), pred, target, weight)
}

// SigmoidBCESum is Σ weights·BCE(σ(logits), targets) over every element
// of logits (N×C for per-class scores), computed in the stable form
// max(x,0) - x·t + log1p(exp(-|x|)): torch's
// binary_cross_entropy_with_logits with reduction="none", times weights,
// summed. targets (usually 0 or 1) and weights hold one value per element
// in row-major order; weights may be nil for all ones.
func SigmoidBCESum(logits *gorgonia.Node, targets, weights []float32) (*gorgonia.Node, error) {
	return sumPointLoss("SigmoidBCESum", "", bceWithLogits, logits, targets, weights)
}

// meanPointLoss builds the mean of f over pred and target, weighted when
// weight is not nil.
func meanPointLoss(op, param string, f pointLoss, pred, target, weight *gorgonia.Node) (*gorgonia.Node, error) {
	if pred == nil || pred.Dims() == 0 {
		return nil, fmt.Errorf("%s: the prediction must be a tensor", op)
	}
	nodes := []*gorgonia.Node{target}
	if weight != nil {
		nodes = append(nodes, weight)
	}
	if err := checkNode(op, "prediction", pred, pred.Dims()); err != nil {
		return nil, err
	}
	for i, n := range nodes {
		what := [...]string{"target", "weight"}[i]
		if err := checkNode(op, what, n, pred.Dims()); err != nil {
			return nil, err
		}
		if !n.Shape().Eq(pred.Shape()) {
			return nil, fmt.Errorf("%s: %s %q has shape %v, want the prediction's %v", op, what, n.Name(), n.Shape(), pred.Shape())
		}
	}
	name := fmt.Sprintf("%s{%v %s weighted %t}", op, pred.Shape(), param, weight != nil)
	operands := func(in [][]float32) ([]float32, []float32) {
		if len(in) > 2 {
			return in[1], in[2]
		}
		return in[1], nil
	}
	return pointLossNode(name, f, 1/float64(pred.Shape().TotalSize()), operands, pred, nodes...)
}

// sumPointLoss builds Σ w·f(p, t) over pred with target and weight given
// as data, copied here so the caller may reuse its slices.
func sumPointLoss(op, param string, f pointLoss, pred *gorgonia.Node, target, weight []float32) (*gorgonia.Node, error) {
	if pred == nil || pred.Dims() == 0 {
		return nil, fmt.Errorf("%s: the prediction must be a tensor", op)
	}
	if err := checkNode(op, "prediction", pred, pred.Dims()); err != nil {
		return nil, err
	}
	size := pred.Shape().TotalSize()
	if len(target) != size {
		return nil, fmt.Errorf("%s(%s): %d targets for a prediction of shape %v (%d values)", op, pred.Name(), len(target), pred.Shape(), size)
	}
	if weight != nil && len(weight) != size {
		return nil, fmt.Errorf("%s(%s): %d weights for a prediction of shape %v (%d values)", op, pred.Name(), len(weight), pred.Shape(), size)
	}
	t := append([]float32(nil), target...)
	var w []float32
	if weight != nil {
		w = append([]float32(nil), weight...)
	}
	h := fnv.New64a()
	hashFloats(h, t)
	hashFloats(h, w)
	name := fmt.Sprintf("%s{%v %s data %x}", op, pred.Shape(), param, h.Sum64())
	return pointLossNode(name, f, 1, func([][]float32) ([]float32, []float32) { return t, w }, pred)
}

// pointLossNode builds scale·Σ w·f(p, t) over pred as a scalar node.
// operands picks target and weight (nil for all ones) from the op's input
// values, pred's first and then data's: nodes for the mean losses, values
// captured by the closure for the sums.
func pointLossNode(name string, f pointLoss, scale float64, operands func(in [][]float32) (t, w []float32),
	pred *gorgonia.Node, data ...*gorgonia.Node) (*gorgonia.Node, error) {
	nodes := append([]*gorgonia.Node{pred}, data...)
	s := pred.Shape().Clone()
	return apply(&kernelOp{
		name: name,
		in:   shapes(nodes...),
		out:  tensor.ScalarShape(),
		kernel: func(o []float32, in [][]float32) {
			t, w := operands(in)
			o[0] = float32(scale * pointLossSum(f, in[0], t, w))
		},
		diffWRT: append([]bool{true}, make([]bool, len(data))...),
		symDiff: func(inputs gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			args := append(append(gorgonia.Nodes{}, inputs...), grad)
			gx, err := apply(&kernelOp{
				name: "Grad" + name,
				in:   shapes(args...),
				out:  s,
				kernel: func(o []float32, in [][]float32) {
					g := in[len(in)-1][0]
					t, w := operands(in[:len(in)-1])
					pointLossGrad(f, in[0], t, w, scale*float64(g), o)
				},
			}, args...)
			grads := make(gorgonia.Nodes, len(inputs))
			grads[0] = gx
			return grads, err
		},
	}, nodes...)
}

// pointLossSum is Σ w·f(p, t), with w = 1 when w is nil. Elements of
// weight 0 are skipped rather than computed: most of an RPN's anchors are
// unsampled and weigh 0.
func pointLossSum[T blas.Float](f pointLoss, p, t, w []T) float64 {
	var s float64
	for i, v := range p {
		if w != nil && w[i] == 0 {
			continue
		}
		l, _ := f(float64(v), float64(t[i]))
		if w != nil {
			l *= float64(w[i])
		}
		s += l
	}
	return s
}

// pointLossGrad computes gx = scale·w·f'(p, t).
func pointLossGrad[T blas.Float](f pointLoss, p, t, w []T, scale float64, gx []T) {
	parallel(len(p), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			if w != nil && w[i] == 0 {
				gx[i] = 0
				continue
			}
			_, d := f(float64(p[i]), float64(t[i]))
			if w != nil {
				d *= float64(w[i])
			}
			gx[i] = T(d * scale)
		}
	})
}

// hashFloats writes the bits of s to h, so an op's name tells its data
// apart.
func hashFloats(h hash.Hash, s []float32) {
	var b [4]byte
	for _, v := range s {
		u := math.Float32bits(v)
		b[0], b[1], b[2], b[3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
		h.Write(b[:])
	}
	h.Write([]byte{byte(len(s)), byte(len(s) >> 8), byte(len(s) >> 16), byte(len(s) >> 24)})
}
