package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Conv2dParams describes a 2-D convolution the way torch.nn.Conv2d does;
// pairs are (height, width). Zero values take PyTorch's defaults: stride 1,
// padding 0, dilation 1, groups 1.
type Conv2dParams struct {
	Stride   [2]int
	Padding  [2]int
	Dilation [2]int
	Groups   int
}

// withDefaults replaces zero strides, dilations and groups by 1.
func (p Conv2dParams) withDefaults() Conv2dParams {
	for i := range 2 {
		if p.Stride[i] == 0 {
			p.Stride[i] = 1
		}
		if p.Dilation[i] == 0 {
			p.Dilation[i] = 1
		}
	}
	if p.Groups == 0 {
		p.Groups = 1
	}
	return p
}

// convGeom is everything a convolution kernel needs to know: input
// n×cin×h×w, weight cout×(cin/groups)×kh×kw, output n×cout×hout×wout.
type convGeom struct {
	n, cin, h, w     int
	cout, kh, kw     int
	hout, wout       int
	sh, sw, ph, pw   int
	dh, dw, groups   int
	cinG, coutG, kkc int // per-group input and output channels; cinG*kh*kw
}

// newConvGeom validates a convolution's shapes and parameters.
func newConvGeom(x, w tensor.Shape, p Conv2dParams) (convGeom, error) {
	p = p.withDefaults()
	if len(x) != 4 || len(w) != 4 {
		return convGeom{}, fmt.Errorf("input %v and weight %v must both have 4 dims", x, w)
	}
	g := convGeom{
		n: x[0], cin: x[1], h: x[2], w: x[3],
		cout: w[0], kh: w[2], kw: w[3],
		sh: p.Stride[0], sw: p.Stride[1], ph: p.Padding[0], pw: p.Padding[1],
		dh: p.Dilation[0], dw: p.Dilation[1], groups: p.Groups,
	}
	switch {
	case g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || g.groups < 1:
		return g, fmt.Errorf("stride %v, dilation %v and groups %d must be positive", p.Stride, p.Dilation, p.Groups)
	case g.ph < 0 || g.pw < 0:
		return g, fmt.Errorf("padding %v must not be negative", p.Padding)
	case g.cin%g.groups != 0 || g.cout%g.groups != 0:
		return g, fmt.Errorf("input channels %d and output channels %d must both divide by groups %d", g.cin, g.cout, g.groups)
	case w[1]*g.groups != g.cin:
		return g, fmt.Errorf("weight %v expects %d input channels per group, input %v with groups %d has %d", w, w[1], x, g.groups, g.cin/g.groups)
	}
	g.cinG, g.coutG = g.cin/g.groups, g.cout/g.groups
	g.kkc = g.cinG * g.kh * g.kw
	g.hout = (g.h+2*g.ph-g.dh*(g.kh-1)-1)/g.sh + 1
	g.wout = (g.w+2*g.pw-g.dw*(g.kw-1)-1)/g.sw + 1
	if g.hout < 1 || g.wout < 1 || g.h+2*g.ph < g.dh*(g.kh-1)+1 || g.w+2*g.pw < g.dw*(g.kw-1)+1 {
		return g, fmt.Errorf("a %dx%d kernel (dilation %v) does not fit input %v padded by %v", g.kh, g.kw, p.Dilation, x, p.Padding)
	}
	return g, nil
}

func (g convGeom) String() string {
	return fmt.Sprintf("x(%d,%d,%d,%d) w(%d,%d,%d,%d) stride(%d,%d) pad(%d,%d) dil(%d,%d) groups %d",
		g.n, g.cin, g.h, g.w, g.cout, g.cinG, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups)
}

func (g convGeom) xShape() tensor.Shape { return tensor.Shape{g.n, g.cin, g.h, g.w} }
func (g convGeom) wShape() tensor.Shape { return tensor.Shape{g.cout, g.cinG, g.kh, g.kw} }
func (g convGeom) yShape() tensor.Shape { return tensor.Shape{g.n, g.cout, g.hout, g.wout} }

// pointwise reports a 1x1 convolution that reads every input pixel once in
// place: each image (and group) is then one matrix product, with no
// im2col copy.
func (g convGeom) pointwise() bool {
	return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0
}

// depthwise reports one filter per channel (groups == channels, channel
// multiplier 1), which runs as direct loops.
func (g convGeom) depthwise() bool {
	return g.groups == g.cin && g.cout == g.cin && g.groups > 1
}

// convForward computes y = conv(x, w) + b (b may be nil).
func convForward[T blas.Float](g convGeom, x, w, b, y []T) {
	switch {
	case g.depthwise():
		depthwiseForward(g, x, w, y)
	case g.pointwise():
		pointwiseForward(g, x, w, y)
	default:
		im2colForward(g, x, w, y)
	}
	if b != nil {
		addChannelBias(g.n, g.cout, g.hout*g.wout, b, y)
	}
}

// convBackwardInput computes the input gradient gx from the output
// gradient gy.
func convBackwardInput[T blas.Float](g convGeom, w, gy, gx []T) {
	switch {
	case g.depthwise():
		depthwiseBackwardInput(g, w, gy, gx)
	case g.pointwise():
		pointwiseBackwardInput(g, w, gy, gx)
	default:
		im2colBackwardInput(g, w, gy, gx)
	}
}

// convBackwardWeight computes the weight gradient gw from the input x and
// the output gradient gy.
func convBackwardWeight[T blas.Float](g convGeom, x, gy, gw []T) {
	switch {
	case g.depthwise():
		depthwiseBackwardWeight(g, x, gy, gw)
	case g.pointwise():
		pointwiseBackwardWeight(g, x, gy, gw)
	default:
		im2colBackwardWeight(g, x, gy, gw)
	}
}

// addChannelBias adds b[c] to every element of channel c of the n×c×hw
// tensor y.
func addChannelBias[T blas.Float](n, c, hw int, b, y []T) {
	parallel(n*c, func(_, lo, hi int) {
		for nc := lo; nc < hi; nc++ {
			v := b[nc%c]
			row := y[nc*hw : (nc+1)*hw]
			for i := range row {
				row[i] += v
			}
		}
	})
}

// channelSum sums the n×c×hw tensor gy over everything but channels: the
// bias gradient of a convolution.
func channelSum[T blas.Float](n, c, hw int, gy, out []T) {
	parallel(c, func(_, lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			var s float64
			for i := 0; i < n; i++ {
				for _, v := range gy[(i*c+ch)*hw : (i*c+ch+1)*hw] {
					s += float64(v)
				}
			}
			out[ch] = T(s)
		}
	})
}

// Conv2d convolves x (N×Cin×H×W) with w (Cout×Cin/groups×kh×kw) and adds
// bias b (Cout) when b is not nil, like torch.nn.functional.conv2d.
// A 1x1 stride-1 unpadded convolution is one matrix product per image,
// a depthwise one (groups == Cin == Cout) runs as direct loops, anything
// else goes through im2col and matrix products. Gradients flow to x, w and
// b.
func Conv2d(x, w, b *gorgonia.Node, p Conv2dParams) (*gorgonia.Node, error) {
	if err := checkNode("Conv2d", "input", x, 4); err != nil {
		return nil, err
	}
	if err := checkNode("Conv2d", "weight", w, 4); err != nil {
		return nil, err
	}
	g, err := newConvGeom(x.Shape(), w.Shape(), p)
	if err != nil {
		return nil, fmt.Errorf("Conv2d(%s, %s): %w", x.Name(), w.Name(), err)
	}
	if b == nil {
		return apply(&conv2dOp{geom: g}, x, w)
	}
	if err := checkNode("Conv2d", "bias", b, 1); err != nil {
		return nil, err
	}
	if b.Shape()[0] != g.cout {
		return nil, fmt.Errorf("Conv2d(%s, %s): bias %q has %d elements, want %d (output channels)", x.Name(), w.Name(), b.Name(), b.Shape()[0], g.cout)
	}
	return apply(&conv2dOp{geom: g, bias: true}, x, w, b)
}

// conv2dOp is the forward convolution: (x, w[, b]) -> y.
type conv2dOp struct {
	base
	geom convGeom
	bias bool
}

func (op *conv2dOp) Arity() int {
	if op.bias {
		return 3
	}
	return 2
}

func (op *conv2dOp) Type() hm.Type {
	if op.bias {
		return fnType(4, 4, 4, 1)
	}
	return fnType(4, 4, 4)
}

func (op *conv2dOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.geom.yShape(), nil
}

func (op *conv2dOp) String() string { return fmt.Sprintf("Conv2d{%v bias %t}", op.geom, op.bias) }

func (op *conv2dOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) { return op.do(nil, in) }
func (op *conv2dOp) UsePreallocDo(p gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(p, in)
}

func (op *conv2dOp) do(prealloc gorgonia.Value, in []gorgonia.Value) (gorgonia.Value, error) {
	x, err := f32(in[0], op.geom.xShape())
	if err != nil {
		return nil, fmt.Errorf("%v input: %w", op, err)
	}
	w, err := f32(in[1], op.geom.wShape())
	if err != nil {
		return nil, fmt.Errorf("%v weight: %w", op, err)
	}
	var b []float32
	if op.bias {
		if b, err = f32(in[2], tensor.Shape{op.geom.cout}); err != nil {
			return nil, fmt.Errorf("%v bias: %w", op, err)
		}
	}
	out, y := op.output(prealloc, op.geom.yShape())
	convForward(op.geom, x, w, b, y)
	return out, nil
}

func (op *conv2dOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}

func (op *conv2dOp) SymDiff(inputs gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	gx, err := apply(&conv2dInputGradOp{geom: op.geom}, inputs[1], grad)
	if err != nil {
		return nil, err
	}
	gw, err := apply(&conv2dWeightGradOp{geom: op.geom}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	if !op.bias {
		return gorgonia.Nodes{gx, gw}, nil
	}
	gb, err := apply(&channelSumOp{shape: op.geom.yShape()}, grad)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{gx, gw, gb}, nil
}

// conv2dInputGradOp is the convolution's input gradient: (w, gy) -> gx.
type conv2dInputGradOp struct {
	backwardOnly
	geom convGeom
}

func (op *conv2dInputGradOp) Arity() int     { return 2 }
func (op *conv2dInputGradOp) Type() hm.Type  { return fnType(4, 4, 4) }
func (op *conv2dInputGradOp) String() string { return fmt.Sprintf("Conv2dInputGrad{%v}", op.geom) }
func (op *conv2dInputGradOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.geom.xShape(), nil
}

func (op *conv2dInputGradOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) { return op.do(nil, in) }
func (op *conv2dInputGradOp) UsePreallocDo(p gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(p, in)
}

func (op *conv2dInputGradOp) do(prealloc gorgonia.Value, in []gorgonia.Value) (gorgonia.Value, error) {
	w, err := f32(in[0], op.geom.wShape())
	if err != nil {
		return nil, fmt.Errorf("%v weight: %w", op, err)
	}
	gy, err := f32(in[1], op.geom.yShape())
	if err != nil {
		return nil, fmt.Errorf("%v output gradient: %w", op, err)
	}
	out, gx := op.output(prealloc, op.geom.xShape())
	convBackwardInput(op.geom, w, gy, gx)
	return out, nil
}

// conv2dWeightGradOp is the convolution's weight gradient: (x, gy) -> gw.
type conv2dWeightGradOp struct {
	backwardOnly
	geom convGeom
}

func (op *conv2dWeightGradOp) Arity() int     { return 2 }
func (op *conv2dWeightGradOp) Type() hm.Type  { return fnType(4, 4, 4) }
func (op *conv2dWeightGradOp) String() string { return fmt.Sprintf("Conv2dWeightGrad{%v}", op.geom) }
func (op *conv2dWeightGradOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return op.geom.wShape(), nil
}

func (op *conv2dWeightGradOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) { return op.do(nil, in) }
func (op *conv2dWeightGradOp) UsePreallocDo(p gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(p, in)
}

func (op *conv2dWeightGradOp) do(prealloc gorgonia.Value, in []gorgonia.Value) (gorgonia.Value, error) {
	x, err := f32(in[0], op.geom.xShape())
	if err != nil {
		return nil, fmt.Errorf("%v input: %w", op, err)
	}
	gy, err := f32(in[1], op.geom.yShape())
	if err != nil {
		return nil, fmt.Errorf("%v output gradient: %w", op, err)
	}
	out, gw := op.output(prealloc, op.geom.wShape())
	convBackwardWeight(op.geom, x, gy, gw)
	return out, nil
}

// channelSumOp sums an N×C×H×W gradient over all but the channel axis:
// the gradient of a per-channel bias.
type channelSumOp struct {
	backwardOnly
	shape tensor.Shape
}

func (op *channelSumOp) Arity() int     { return 1 }
func (op *channelSumOp) Type() hm.Type  { return fnType(1, 4) }
func (op *channelSumOp) String() string { return fmt.Sprintf("ChannelSum{%v}", op.shape) }
func (op *channelSumOp) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.shape[1]}, nil
}

func (op *channelSumOp) Do(in ...gorgonia.Value) (gorgonia.Value, error) { return op.do(nil, in) }
func (op *channelSumOp) UsePreallocDo(p gorgonia.Value, in ...gorgonia.Value) (gorgonia.Value, error) {
	return op.do(p, in)
}

func (op *channelSumOp) do(prealloc gorgonia.Value, in []gorgonia.Value) (gorgonia.Value, error) {
	gy, err := f32(in[0], op.shape)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	out, gb := op.output(prealloc, tensor.Shape{op.shape[1]})
	channelSum(op.shape[0], op.shape[1], op.shape[2]*op.shape[3], gy, gb)
	return out, nil
}
