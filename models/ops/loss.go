package ops

import (
	"fmt"
	"hash/fnv"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Losses reduce to a scalar node (the mean, as PyTorch's reduction="mean")
// that gorgonia.Grad can start from. Targets, labels and weights are data:
// no gradient flows to them.

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
	labels = append([]int(nil), labels...)
	name := fmt.Sprintf("CrossEntropy{%dx%d eps %g labels %x}", n, k, eps, h.Sum64())
	return apply(&kernelOp{
		name:    name,
		in:      shapes(logits),
		out:     tensor.ScalarShape(),
		kernel:  func(o []float32, in [][]float32) { o[0] = float32(crossEntropy(n, k, in[0], labels, eps)) },
		diffWRT: []bool{true},
		symDiff: func(inputs gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := apply(&kernelOp{
				name:   "Grad" + name,
				in:     shapes(inputs[0], grad),
				out:    tensor.Shape{n, k},
				kernel: func(o []float32, in [][]float32) { crossEntropyBackward(n, k, in[0], labels, eps, in[1][0], o) },
			}, inputs[0], grad)
			return gorgonia.Nodes{gx}, err
		},
	}, logits)
}

// crossEntropy returns mean_i [logsumexp(x_i) - Σ_k t_ik·x_ik]; the
// smoothed targets sum to one, so that is -Σ_k t_ik·log softmax(x_i)_k.
func crossEntropy[T blas.Float](n, k int, x []T, labels []int, eps float64) float64 {
	p := make([]T, k)
	var total float64
	for i := 0; i < n; i++ {
		row := x[i*k : (i+1)*k]
		lse := softmaxRow(row, p)
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		total += lse - (1-eps)*float64(row[labels[i]]) - eps/float64(k)*sum
	}
	return total / float64(n)
}

// crossEntropyBackward computes gx = g·(softmax(x) - t)/n.
func crossEntropyBackward[T blas.Float](n, k int, x []T, labels []int, eps float64, g T, gx []T) {
	scale := float64(g) / float64(n)
	off := eps / float64(k)
	parallel(n, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			out := gx[i*k : (i+1)*k]
			softmaxRow(x[i*k:(i+1)*k], out)
			for j := range out {
				t := off
				if j == labels[i] {
					t += 1 - eps
				}
				out[j] = T((float64(out[j]) - t) * scale)
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

// L1Loss is the mean over all elements of weight·|pred - target|; weight
// may be nil.
func L1Loss(pred, target, weight *gorgonia.Node) (*gorgonia.Node, error) {
	return meanPointLoss("L1Loss", "", l1, pred, target, weight)
}

// meanPointLoss builds the mean of f over pred and target, weighted when
// weight is not nil.
func meanPointLoss(op, param string, f pointLoss, pred, target, weight *gorgonia.Node) (*gorgonia.Node, error) {
	if pred == nil || pred.Dims() == 0 {
		return nil, fmt.Errorf("%s: the prediction must be a tensor", op)
	}
	nodes := []*gorgonia.Node{pred, target}
	if weight != nil {
		nodes = append(nodes, weight)
	}
	for i, n := range nodes {
		what := [...]string{"prediction", "target", "weight"}[i]
		if err := checkNode(op, what, n, pred.Dims()); err != nil {
			return nil, err
		}
		if !n.Shape().Eq(pred.Shape()) {
			return nil, fmt.Errorf("%s: %s %q has shape %v, want the prediction's %v", op, what, n.Name(), n.Shape(), pred.Shape())
		}
	}
	s := pred.Shape().Clone()
	name := fmt.Sprintf("%s{%v %s weighted %t}", op, s, param, weight != nil)
	return apply(&kernelOp{
		name: name,
		in:   shapes(nodes...),
		out:  tensor.ScalarShape(),
		kernel: func(o []float32, in [][]float32) {
			o[0] = float32(meanLoss(f, in[0], in[1], weightOf(in)))
		},
		diffWRT: append([]bool{true}, make([]bool, len(nodes)-1)...),
		symDiff: func(inputs gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			args := append(append(gorgonia.Nodes{}, inputs...), grad)
			gx, err := apply(&kernelOp{
				name: "Grad" + name,
				in:   shapes(args...),
				out:  s,
				kernel: func(o []float32, in [][]float32) {
					g := in[len(in)-1][0]
					meanLossGrad(f, in[0], in[1], weightOf(in[:len(in)-1]), g, o)
				},
			}, args...)
			grads := make(gorgonia.Nodes, len(inputs))
			grads[0] = gx
			return grads, err
		},
	}, nodes...)
}

// weightOf returns the weight input of a point loss, or nil when it has
// only prediction and target.
func weightOf(in [][]float32) []float32 {
	if len(in) > 2 {
		return in[2]
	}
	return nil
}

// meanLoss is Σ w·f(p, t) / len(p), with w = 1 when w is nil.
func meanLoss[T blas.Float](f pointLoss, p, t, w []T) float64 {
	var s float64
	for i, v := range p {
		l, _ := f(float64(v), float64(t[i]))
		if w != nil {
			l *= float64(w[i])
		}
		s += l
	}
	return s / float64(len(p))
}

// meanLossGrad computes gx = g·w·f'(p, t)/len(p).
func meanLossGrad[T blas.Float](f pointLoss, p, t, w []T, g T, gx []T) {
	scale := float64(g) / float64(len(p))
	for i, v := range p {
		_, d := f(float64(v), float64(t[i]))
		if w != nil {
			d *= float64(w[i])
		}
		gx[i] = T(d * scale)
	}
}
