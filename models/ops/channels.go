package ops

import (
	"fmt"

	"github.com/razorgo/razor/models/ops/blas"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Channel rearrangements of N×C×H×W tensors: slicing a channel range
// (ShuffleNet's split), concatenation and the grouped channel shuffle.
// They only move memory; each backward is another rearrangement.

// ChannelSlice returns channels [from, to) of x (N×C×H×W) as a new
// N×(to-from)×H×W tensor. The gradient is gy in those channels and zero
// elsewhere.
func ChannelSlice(x *gorgonia.Node, from, to int) (*gorgonia.Node, error) {
	if err := checkNode("ChannelSlice", "input", x, 4); err != nil {
		return nil, err
	}
	s := x.Shape().Clone()
	if from < 0 || to > s[1] || from >= to {
		return nil, fmt.Errorf("ChannelSlice(%s): channel range [%d, %d) is empty or outside the input's %d channels", x.Name(), from, to, s[1])
	}
	out := tensor.Shape{s[0], to - from, s[2], s[3]}
	return apply(&kernelOp{
		name: fmt.Sprintf("ChannelSlice{%v [%d,%d)}", s, from, to),
		in:   shapes(x),
		out:  out,
		kernel: func(o []float32, in [][]float32) {
			copyChannels(s[0], s[2]*s[3], in[0], s[1], from, o, to-from, 0, to-from)
		},
		diffWRT: []bool{true},
		symDiff: func(_ gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := apply(&kernelOp{
				name: fmt.Sprintf("ChannelSliceGrad{%v [%d,%d)}", s, from, to),
				in:   shapes(grad),
				out:  s,
				kernel: func(o []float32, in [][]float32) {
					clear(o)
					copyChannels(s[0], s[2]*s[3], in[0], to-from, 0, o, s[1], from, to-from)
				},
			}, grad)
			return gorgonia.Nodes{gx}, err
		},
	}, x)
}

// ChannelSplit splits x (N×C×H×W, C even) into its first and second
// halves of channels, as ShuffleNetV2's stride-1 block does.
func ChannelSplit(x *gorgonia.Node) (first, second *gorgonia.Node, err error) {
	if err := checkNode("ChannelSplit", "input", x, 4); err != nil {
		return nil, nil, err
	}
	c := x.Shape()[1]
	if c%2 != 0 {
		return nil, nil, fmt.Errorf("ChannelSplit(%s): %d channels cannot be split in halves", x.Name(), c)
	}
	if first, err = ChannelSlice(x, 0, c/2); err != nil {
		return nil, nil, err
	}
	if second, err = ChannelSlice(x, c/2, c); err != nil {
		return nil, nil, err
	}
	return first, second, nil
}

// concatOffsets checks that xs are N×Ci×H×W tensors agreeing outside the
// channel axis and returns where each starts in their concatenation (and,
// last, the total); op names the caller in errors.
func concatOffsets(op string, xs []*gorgonia.Node) ([]int, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("%s: no inputs", op)
	}
	offsets := make([]int, len(xs)+1)
	for i, x := range xs {
		if err := checkNode(op, fmt.Sprintf("input %d", i), x, 4); err != nil {
			return nil, err
		}
		s, s0 := x.Shape(), xs[0].Shape()
		if s[0] != s0[0] || s[2] != s0[2] || s[3] != s0[3] {
			return nil, fmt.Errorf("%s: input %d %q has shape %v, which differs from input 0's %v outside the channel axis", op, i, x.Name(), s, s0)
		}
		offsets[i+1] = offsets[i] + s[1]
	}
	return offsets, nil
}

// ChannelShuffle permutes the channels of x (N×C×H×W) like ShuffleNet:
// view as (N, groups, C/groups, H, W), swap axes 1 and 2, flatten back.
// Its gradient is the inverse permutation, a shuffle with C/groups groups.
func ChannelShuffle(x *gorgonia.Node, groups int) (*gorgonia.Node, error) {
	if err := checkNode("ChannelShuffle", "input", x, 4); err != nil {
		return nil, err
	}
	s := x.Shape().Clone()
	if groups < 1 || s[1]%groups != 0 {
		return nil, fmt.Errorf("ChannelShuffle(%s): %d channels cannot be shuffled in %d groups", x.Name(), s[1], groups)
	}
	return apply(&kernelOp{
		name:    fmt.Sprintf("ChannelShuffle{%v groups %d}", s, groups),
		in:      shapes(x),
		out:     s,
		kernel:  func(o []float32, in [][]float32) { shuffleChannels(s[0], s[1], s[2]*s[3], groups, in[0], o) },
		diffWRT: []bool{true},
		symDiff: func(_ gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			gx, err := ChannelShuffle(grad, s[1]/groups)
			return gorgonia.Nodes{gx}, err
		},
	}, x)
}

// ConcatShuffle is ChannelShuffle of the channel concatenation of xs
// (torch.cat(xs, dim=1)) in one pass: output channel k·groups+g is channel
// g·(C/groups)+k of the concatenation, copied straight from the input that
// holds it. ShuffleNetV2 ends every block with it. Each input's gradient is
// gathered from gy in one pass too, where a concatenation and a shuffle took
// a shuffle and a slice.
func ConcatShuffle(groups int, xs ...*gorgonia.Node) (*gorgonia.Node, error) {
	offsets, err := concatOffsets("ConcatShuffle", xs)
	if err != nil {
		return nil, err
	}
	s0 := xs[0].Shape()
	n, hw, c := s0[0], s0[2]*s0[3], offsets[len(xs)]
	if groups < 1 || c%groups != 0 {
		return nil, fmt.Errorf("ConcatShuffle: %d channels cannot be shuffled in %d groups", c, groups)
	}
	per := c / groups
	// from[k] is the input and channel that output channel k copies.
	type source struct{ input, channel int }
	from := make([]source, c)
	for k := range from {
		j := (k%groups)*per + k/groups
		i := 0
		for offsets[i+1] <= j {
			i++
		}
		from[k] = source{i, j - offsets[i]}
	}
	out := tensor.Shape{n, c, s0[2], s0[3]}
	return apply(&kernelOp{
		name: fmt.Sprintf("ConcatShuffle{%v at %v groups %d}", out, offsets, groups),
		in:   shapes(xs...),
		out:  out,
		kernel: func(o []float32, in [][]float32) {
			parallel(n*c, func(_, lo, hi int) {
				for t := lo; t < hi; t++ {
					img, f := t/c, from[t%c]
					ci := offsets[f.input+1] - offsets[f.input]
					src := in[f.input][(img*ci+f.channel)*hw:]
					copy(o[t*hw:(t+1)*hw], src[:hw])
				}
			})
		},
		diffWRT: trues(len(xs)),
		symDiff: func(_ gorgonia.Nodes, _, grad *gorgonia.Node) (gorgonia.Nodes, error) {
			grads := make(gorgonia.Nodes, len(xs))
			for i := range xs {
				ci := offsets[i+1] - offsets[i]
				// to[q] is the output channel input i's channel q went to.
				to := make([]int, ci)
				for q := range to {
					j := offsets[i] + q
					to[q] = (j%per)*groups + j/per
				}
				gs := tensor.Shape{n, ci, s0[2], s0[3]}
				var err error
				grads[i], err = apply(&kernelOp{
					name: fmt.Sprintf("ConcatShuffleGrad{%v input %d of %v groups %d}", out, i, offsets, groups),
					in:   shapes(grad),
					out:  gs,
					kernel: func(o []float32, in [][]float32) {
						parallel(n*ci, func(_, lo, hi int) {
							for t := lo; t < hi; t++ {
								img, k := t/ci, to[t%ci]
								copy(o[t*hw:(t+1)*hw], in[0][(img*c+k)*hw:(img*c+k+1)*hw])
							}
						})
					},
				}, grad)
				if err != nil {
					return nil, err
				}
			}
			return grads, nil
		},
	}, xs...)
}

// copyChannels copies k channels per image, from channel srcFrom of src
// (srcC channels) to channel dstFrom of dst (dstC channels).
func copyChannels[T blas.Float](n, hw int, src []T, srcC, srcFrom int, dst []T, dstC, dstFrom, k int) {
	parallel(n, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			copy(dst[(i*dstC+dstFrom)*hw:(i*dstC+dstFrom+k)*hw], src[(i*srcC+srcFrom)*hw:(i*srcC+srcFrom+k)*hw])
		}
	})
}

// shuffleChannels writes output channel i·groups+j from input channel
// j·(c/groups)+i.
func shuffleChannels[T blas.Float](n, c, hw, groups int, x, y []T) {
	per := c / groups
	parallel(n*c, func(_, lo, hi int) {
		for t := lo; t < hi; t++ {
			img, k := t/c, t%c
			src := img*c + (k%groups)*per + k/groups
			copy(y[t*hw:(t+1)*hw], x[src*hw:(src+1)*hw])
		}
	})
}

// trues is a slice of n true values.
func trues(n int) []bool {
	b := make([]bool, n)
	for i := range b {
		b[i] = true
	}
	return b
}
