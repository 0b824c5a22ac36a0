package nn

import (
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// shuffleLikePath builds a stem and 20 blocks shaped like a ShuffleNetV2
// path (stages of 4, 4, 8, 4 blocks at widths 64, 160, 320, 640, the first
// block of each stage with stride 2), each block a 1x1 ConvModule with ReLU,
// a depthwise 3x3 ConvModule and a 1x1 ConvModule with ReLU.
func shuffleLikePath(b *testing.B) *Sequential {
	b.Helper()
	must := func(m *ConvModule, err error) Layer {
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	seq := NewSequential(must(NewConvModule(ConvModuleConfig{In: 3, Out: 16, Kernel: 3, Stride: 2, Padding: 1, Norm: true, ReLU: true})))
	in := 16
	for s, blocks := range []int{4, 4, 8, 4} {
		out := []int{64, 160, 320, 640}[s]
		for i := range blocks {
			stride := 1
			if i == 0 {
				stride = 2
			}
			seq.Append(NewSequential(
				must(NewConvModule(ConvModuleConfig{In: in, Out: out, Kernel: 1, Norm: true, ReLU: true})),
				must(NewConvModule(ConvModuleConfig{In: out, Out: out, Kernel: 3, Stride: stride, Padding: 1, Groups: out, Norm: true})),
				must(NewConvModule(ConvModuleConfig{In: out, Out: out, Kernel: 1, Norm: true, ReLU: true})),
			))
			in = out
		}
	}
	return seq
}

// BenchmarkBuildGraph20Blocks measures what a training step spends before
// any kernel runs: a new binding, the forward graph of a 20-block path at
// batch 32 and 224x224, and the symbolic backward. The tape-machine case
// adds the compile of gorgonia's TapeMachine, which Binding.Run no longer
// pays.
func BenchmarkBuildGraph20Blocks(b *testing.B) {
	net := shuffleLikePath(b)
	x := tensor.New(tensor.WithShape(32, 3, 224, 224), tensor.Of(tensor.Float32))
	for _, compile := range []bool{false, true} {
		name := "binding"
		if compile {
			name = "with-tape-machine-compile"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				bd := NewBinding()
				out, err := net.Forward(bd, bd.Input("x", x))
				if err != nil {
					b.Fatal(err)
				}
				loss := gorgonia.Must(gorgonia.Sum(out))
				if err := bd.Backward(loss); err != nil {
					b.Fatal(err)
				}
				if compile {
					gorgonia.NewTapeMachine(bd.Graph()).Close()
				}
			}
		})
	}
}
