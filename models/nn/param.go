package nn

import (
	"fmt"

	"gorgonia.org/tensor"
)

// Kind says which family a parameter belongs to, so an optimizer can apply
// per-family learning-rate and weight-decay multipliers (mmcv's paramwise_cfg).
type Kind int

const (
	// KindWeight is the weight of a convolution or linear layer.
	KindWeight Kind = iota
	// KindBias is the bias of a convolution or linear layer (not of a
	// normalisation layer).
	KindBias
	// KindNorm is the weight or the bias of a normalisation layer.
	KindNorm
)

// String returns "weight", "bias" or "norm".
func (k Kind) String() string {
	switch k {
	case KindWeight:
		return "weight"
	case KindBias:
		return "bias"
	case KindNorm:
		return "norm"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Param is a trainable float32 tensor owned by a module. Its value lives
// outside any graph; a Binding makes it a graph input for one forward pass
// and adds the gradient it computes to the Param's gradient buffer.
type Param struct {
	local     string
	name      string
	kind      Kind
	depthwise bool
	value     *tensor.Dense
	grad      *tensor.Dense
}

func newParam(local string, kind Kind, shape []int) *Param {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return &Param{
		local: local,
		name:  local,
		kind:  kind,
		value: tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n))),
	}
}

// Name is the parameter's full dotted name from the root of the module tree
// it is registered in, as in a PyTorch state_dict (for example
// "backbone.conv1.conv.weight").
func (p *Param) Name() string { return p.name }

// LocalName is the name the owning module gave the parameter ("weight",
// "bias").
func (p *Param) LocalName() string { return p.local }

// Kind is the parameter's family for per-group optimizer settings.
func (p *Param) Kind() Kind { return p.kind }

// Depthwise reports whether the parameter belongs to a depthwise convolution
// (in_channels == groups, mmcv's rule), which mmcv's dwconv_decay_mult
// targets.
func (p *Param) Depthwise() bool { return p.depthwise }

// MarkDepthwise records that the parameter belongs to a depthwise
// convolution; Conv2d calls it when in_channels == groups.
func (p *Param) MarkDepthwise() { p.depthwise = true }

// Value is the parameter's tensor. Optimizers update it in place.
func (p *Param) Value() *tensor.Dense { return p.value }

// Data is the parameter's values in row-major order, aliasing Value.
func (p *Param) Data() []float32 { return p.value.Float32s() }

// Shape is the parameter's shape.
func (p *Param) Shape() tensor.Shape { return p.value.Shape() }

// Grad is the accumulated gradient, or nil when no backward pass has reached
// the parameter since the gradient was last set to none (PyTorch's
// "grad is None").
func (p *Param) Grad() *tensor.Dense { return p.grad }

// GradData is the accumulated gradient's values, or nil when Grad is nil.
func (p *Param) GradData() []float32 {
	if p.grad == nil {
		return nil
	}
	return p.grad.Float32s()
}

// ZeroGrad clears the gradient. With setToNone the gradient becomes nil, so
// an optimizer skips the parameter until a backward pass reaches it again
// (PyTorch's zero_grad(set_to_none=True), the default from torch 2.0). Without
// it an existing gradient is filled with zeros and stays, so an optimizer
// keeps stepping the parameter with a zero gradient (weight decay and
// momentum still move it), as torch 1.x's default zero_grad() did.
func (p *Param) ZeroGrad(setToNone bool) {
	if p.grad == nil {
		return
	}
	if setToNone {
		p.grad = nil
		return
	}
	clear(p.grad.Float32s())
}

// AccumulateGrad adds g to the gradient, creating it when it is nil, as a
// PyTorch backward pass does. g must have one value per element.
func (p *Param) AccumulateGrad(g []float32) error {
	if len(g) != p.value.Shape().TotalSize() {
		return fmt.Errorf("gradient for %s has %d values, want %d for shape %v", p.name, len(g), p.value.Shape().TotalSize(), p.value.Shape())
	}
	if p.grad == nil {
		p.grad = tensor.New(tensor.WithShape(p.value.Shape().Clone()...), tensor.WithBacking(append([]float32(nil), g...)))
		return nil
	}
	dst := p.grad.Float32s()
	for i, v := range g {
		dst[i] += v
	}
	return nil
}

// Buffer is a non-trainable tensor owned by a module and saved in its state
// dict, such as BatchNorm's running statistics (float32) or its
// num_batches_tracked counter (an int64 scalar).
type Buffer struct {
	local   string
	name    string
	value   *tensor.Dense
	counter *int64
}

// Name is the buffer's full dotted name, as for Param.
func (b *Buffer) Name() string { return b.name }

// LocalName is the name the owning module gave the buffer.
func (b *Buffer) LocalName() string { return b.local }

// Value is the buffer's tensor. A tensor buffer is live: the owning layer
// reads and updates it in place. A counter buffer (Base.AddCounter) returns
// a 0-d int64 tensor holding the counter's value at the time of the call.
func (b *Buffer) Value() *tensor.Dense {
	if b.counter != nil {
		b.value.Int64s()[0] = *b.counter
	}
	return b.value
}

// stored writes a newly loaded value through to a counter.
func (b *Buffer) stored() {
	if b.counter != nil {
		*b.counter = b.value.Int64s()[0]
	}
}
