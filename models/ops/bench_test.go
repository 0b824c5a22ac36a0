package ops

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkOps times the hot kernels at ShuffleNetV2 shapes (batch 32):
// stage widths 64, 160, 320 and 640 at 56x56, 28x28, 14x14 and 7x7. The
// 1x1 convolution maps C/2 to C/2 channels, as inside a ShuffleBlock
// branch; depthwise convolutions (stride 1, padding k/2) and batch norm
// (training mode) run on all C channels. "fwd" is the forward pass; "bwd"
// computes every gradient (input and weight, or input, gamma and beta).
// Outputs are drawn from the buffer pool inside the timed loop and given
// back, as an op in a training step draws them (PyTorch allocates its own).
// scripts/bench/ops_torch.py times the same cases in PyTorch and prints
// the ratios; benchmark names are its keys.
func BenchmarkOps(b *testing.B) {
	const n = 32
	for _, s := range []struct{ c, hw int }{{64, 56}, {160, 28}, {320, 14}, {640, 7}} {
		half := s.c / 2
		benchConv(b, fmt.Sprintf("conv1x1/%dx%dx%d", half, s.hw, s.hw), n, half, s.hw, half, 1, 1)
		for _, k := range []int{3, 5, 7} {
			benchConv(b, fmt.Sprintf("dw%d/%dx%dx%d", k, s.c, s.hw, s.hw), n, s.c, s.hw, s.c, k, s.c)
		}
		benchBatchNorm(b, fmt.Sprintf("bn/%dx%dx%d", s.c, s.hw, s.hw), n, s.c, s.hw)
	}
}

// BenchmarkDetectionConvs times the forward pass of the 3x3 256->256
// convolutions that dominate Faster R-CNN + FPN inference at 1333x800:
// the box head's shared convs on 1000 RoIs of 7x7, and the FPN and RPN
// convs on the stride-4 and stride-8 levels of a 1344x800 input.
func BenchmarkDetectionConvs(b *testing.B) {
	for _, s := range []struct {
		name    string
		n, h, w int
	}{{"roi_1000x7x7", 1000, 7, 7}, {"fpn_200x336", 1, 200, 336}, {"fpn_100x168", 1, 100, 168}} {
		g, err := newConvGeom([]int{s.n, 256, s.h, s.w}, []int{256, 256, 3, 3}, Conv2dParams{Padding: [2]int{1, 1}})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(5, 6))
		x := benchData(rng, g.xShape().TotalSize())
		w := benchData(rng, g.wShape().TotalSize())
		y := make([]float32, g.yShape().TotalSize())
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				convForward(g, x, w, nil, y)
			}
			b.ReportMetric(2*float64(g.n*g.hout*g.wout*g.cout*g.kkc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}

// BenchmarkRoIHeadConv is one of the box head's four 3x3 convolutions
// over 2 images x 128 sampled RoIs of 7x7: at the digits recipe's 64
// channels (the recipe's step spends most of its convolution time there)
// and at COCO's 256.
func BenchmarkRoIHeadConv(b *testing.B) {
	benchConv(b, "roi256_c64_7x7", 256, 64, 7, 64, 3, 1)
	benchConv(b, "roi256_c256_7x7", 256, 256, 7, 256, 3, 1)
}

func benchData(rng *rand.Rand, size int) []float32 {
	s := make([]float32, size)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func benchConv(b *testing.B, name string, n, cin, hw, cout, k, groups int) {
	g, err := newConvGeom([]int{n, cin, hw, hw}, []int{cout, cin / groups, k, k},
		Conv2dParams{Padding: [2]int{k / 2, k / 2}, Groups: groups})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := benchData(rng, g.xShape().TotalSize())
	w := benchData(rng, g.wShape().TotalSize())
	gy := benchData(rng, g.yShape().TotalSize())
	b.Run(name+"/fwd", func(b *testing.B) {
		for b.Loop() {
			y := draw(len(gy))
			convForward(g, x, w, nil, y)
			putScratch(y)
		}
	})
	b.Run(name+"/bwd", func(b *testing.B) {
		for b.Loop() {
			gx, gw := draw(len(x)), draw(len(w))
			convBackwardInput(g, w, gy, gx)
			convBackwardWeight(g, x, gy, gw)
			putScratch(gx, gw)
		}
	})
	b.Run(name+"/bwd_input", func(b *testing.B) {
		for b.Loop() {
			gx := draw(len(x))
			convBackwardInput(g, w, gy, gx)
			putScratch(gx)
		}
	})
	b.Run(name+"/bwd_weight", func(b *testing.B) {
		for b.Loop() {
			gw := draw(len(w))
			convBackwardWeight(g, x, gy, gw)
			putScratch(gw)
		}
	})
}

func benchBatchNorm(b *testing.B, name string, n, c, hw int) {
	rng := rand.New(rand.NewPCG(3, 4))
	size := n * c * hw * hw
	x, gy := benchData(rng, size), benchData(rng, size)
	gamma, beta := benchData(rng, c), benchData(rng, c)
	mean32, invStd := make([]float32, c), make([]float32, c)
	dgamma, dbeta := make([]float32, c), make([]float32, c)
	// The forward pass is what batchNormOp does in training mode: batch
	// statistics, then normalization.
	forward := func() {
		y := draw(size)
		defer putScratch(y)
		mean, variance := make([]float64, c), make([]float64, c)
		batchStats(n, c, hw*hw, x, mean, variance)
		for ch := range mean {
			mean32[ch] = float32(mean[ch])
			invStd[ch] = float32(1 / math.Sqrt(variance[ch]+1e-5))
		}
		bnNormalize(n, c, hw*hw, x, mean32, invStd, gamma, beta, false, y)
	}
	forward()
	b.Run(name+"/fwd", func(b *testing.B) {
		for b.Loop() {
			forward()
		}
	})
	b.Run(name+"/bwd", func(b *testing.B) {
		for b.Loop() {
			bnParamGrad(n, c, hw*hw, x, gy, nil, mean32, invStd, dgamma, dbeta)
			gx := draw(size)
			bnInputGrad(n, c, hw*hw, x, gy, nil, gamma, mean32, invStd, dgamma, dbeta, true, gx)
			putScratch(gx)
		}
	})
}

// shuffleNetPath builds one sampled path of a ShuffleNetV2 supernet (the
// DetNAS search space: stem, 20 blocks in stages of 4, 4, 8, 4 with widths
// 64, 160, 320, 640, last 1x1 conv to 1024, pooling, classifier) with a
// cross-entropy loss, from weights created on first use and kept in ws.
// Block b uses choice b mod 4: shuffle 3x3, 5x5, 7x7 or xception.
type shuffleNetPath struct {
	rng     *rand.Rand
	weights map[string]*tensor.Dense
	states  map[string]*BatchNormState
	g       *gorgonia.ExprGraph
	params  []*gorgonia.Node
	err     error
}

func (p *shuffleNetPath) param(name string, shape ...int) *gorgonia.Node {
	w, ok := p.weights[name]
	if !ok {
		data := benchData(p.rng, tensor.Shape(shape).TotalSize())
		for i := range data {
			data[i] *= 0.1
		}
		w = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
		p.weights[name] = w
	}
	n := gorgonia.NewTensor(p.g, tensor.Float32, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name), gorgonia.WithValue(w))
	p.params = append(p.params, n)
	return n
}

// apply chains one op, remembering the first error.
func (p *shuffleNetPath) apply(f func() (*gorgonia.Node, error)) *gorgonia.Node {
	if p.err != nil {
		return nil
	}
	n, err := f()
	p.err = err
	return n
}

func (p *shuffleNetPath) convBN(name string, x *gorgonia.Node, cout, k, stride int, depthwise, relu bool) *gorgonia.Node {
	if p.err != nil {
		return nil
	}
	cin, groups := x.Shape()[1], 1
	if depthwise {
		groups = cin
	}
	w := p.param(name+".conv.weight", cout, cin/groups, k, k)
	y := p.apply(func() (*gorgonia.Node, error) {
		return Conv2d(x, w, nil, Conv2dParams{Stride: [2]int{stride, stride}, Padding: [2]int{k / 2, k / 2}, Groups: groups})
	})
	st, ok := p.states[name]
	if !ok {
		st = NewBatchNormState(cout)
		p.states[name] = st
	}
	gamma, beta := p.param(name+".bn.weight", cout), p.param(name+".bn.bias", cout)
	y = p.apply(func() (*gorgonia.Node, error) { return BatchNorm2d(y, gamma, beta, st, BNTrain) })
	if relu {
		y = p.apply(func() (*gorgonia.Node, error) { return ReLU(y) })
	}
	return y
}

func (p *shuffleNetPath) block(name string, x *gorgonia.Node, out, stride, choice int) *gorgonia.Node {
	if p.err != nil {
		return nil
	}
	bf := out / 2
	var keep, in *gorgonia.Node
	if stride == 1 {
		var err error
		if keep, in, err = ChannelSplit(x); err != nil {
			p.err = err
			return nil
		}
	} else {
		in = x
		keep = p.convBN(name+".branch1.0", x, x.Shape()[1], 3+2*(choice%3), 2, true, false)
		keep = p.convBN(name+".branch1.1", keep, bf, 1, 1, false, true)
	}
	var b *gorgonia.Node
	if choice == 3 {
		b = in
		for i := range 3 {
			s := 1
			if i == 0 {
				s = stride
			}
			b = p.convBN(fmt.Sprintf("%s.branch2.%d.depthwise_conv", name, i), b, b.Shape()[1], 3, s, true, false)
			b = p.convBN(fmt.Sprintf("%s.branch2.%d.pointwise_conv", name, i), b, bf, 1, 1, false, true)
		}
	} else {
		k := 3 + 2*choice
		b = p.convBN(name+".branch2.0", in, bf, 1, 1, false, true)
		b = p.convBN(name+".branch2.1", b, bf, k, stride, true, false)
		b = p.convBN(name+".branch2.2", b, bf, 1, 1, false, true)
	}
	y := p.apply(func() (*gorgonia.Node, error) { return channelConcat(keep, b) })
	return p.apply(func() (*gorgonia.Node, error) { return ChannelShuffle(y, 2) })
}

// build makes a fresh graph for images of n×3×hw×hw and differentiates
// its loss with respect to every weight.
func (p *shuffleNetPath) build(n, hw int, labels []int) (*gorgonia.Node, error) {
	p.g, p.params, p.err = gorgonia.NewGraph(), nil, nil
	x := gorgonia.NewTensor(p.g, tensor.Float32, 4, gorgonia.WithShape(n, 3, hw, hw), gorgonia.WithName("img"),
		gorgonia.WithValue(tensor.New(tensor.WithShape(n, 3, hw, hw), tensor.WithBacking(benchData(p.rng, n*3*hw*hw)))))
	h := p.convBN("conv1", x, 16, 3, 2, false, true)
	blockIndex := 0
	for s, blocks := range []int{4, 4, 8, 4} {
		width := []int{64, 160, 320, 640}[s]
		for b := range blocks {
			stride := 1
			if b == 0 {
				stride = 2
			}
			h = p.block(fmt.Sprintf("layers.%d.%d", s, b), h, width, stride, blockIndex%4)
			blockIndex++
		}
	}
	h = p.convBN("layers.4", h, 1024, 1, 1, false, true)
	pooled := p.apply(func() (*gorgonia.Node, error) { return GlobalAvgPool2d(h) })
	fc, fcb := p.param("fc.weight", 1000, 1024), p.param("fc.bias", 1000)
	logits := p.apply(func() (*gorgonia.Node, error) { return Linear(pooled, fc, fcb) })
	loss := p.apply(func() (*gorgonia.Node, error) { return CrossEntropy(logits, labels, 0.1) })
	if p.err != nil {
		return nil, p.err
	}
	if _, err := gorgonia.Grad(loss, p.params...); err != nil {
		return nil, err
	}
	return loss, nil
}

// BenchmarkShuffleNetPath measures what one supernet iteration spends
// outside the kernels: building the graph of a 20-block path,
// differentiating it and compiling a TapeMachine ("build-ns/op"), against
// running that machine once, forward and backward ("step-ns/op", the first
// run of a fresh machine, as every sampled path gets). It reports the
// ratio as "build/step-%". The build cost does not depend on the batch;
// the step grows with batch and resolution, so the ratio is measured at a
// small batch of small images and at a quarter of the reference training
// batch (8 of the 32 images of 224x224 each GPU trains on).
func BenchmarkShuffleNetPath(b *testing.B) {
	for _, size := range []struct{ n, hw int }{{8, 64}, {8, 224}} {
		b.Run(fmt.Sprintf("%dx3x%dx%d", size.n, size.hw, size.hw), func(b *testing.B) {
			benchShuffleNetPath(b, size.n, size.hw)
		})
	}
}

func benchShuffleNetPath(b *testing.B, n, hw int) {
	p := &shuffleNetPath{rng: rand.New(rand.NewPCG(5, 6)), weights: map[string]*tensor.Dense{}, states: map[string]*BatchNormState{}}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = i * 97 % 1000
	}
	var build, step time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := p.build(n, hw, labels); err != nil {
			b.Fatal(err)
		}
		m := gorgonia.NewTapeMachine(p.g)
		t1 := time.Now()
		if err := m.RunAll(); err != nil {
			b.Fatal(err)
		}
		step += time.Since(t1)
		build += t1.Sub(t0)
		m.Close()
	}
	b.ReportMetric(float64(build.Nanoseconds())/float64(b.N), "build-ns/op")
	b.ReportMetric(float64(step.Nanoseconds())/float64(b.N), "step-ns/op")
	b.ReportMetric(100*float64(build)/float64(step), "build/step-%")
}
