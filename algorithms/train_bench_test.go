package algorithms_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/runners/optim"
)

// BenchmarkSupernetStep times one SPOS supernet training step -- draw a
// path, forward, backward, SGD step -- on the full-width search space with
// 10 classes, reporting images/s. scripts/bench/train_throughput.py runs the same
// model in PyTorch for the ratio.
func BenchmarkSupernetStep(b *testing.B) {
	for _, c := range []struct {
		name        string
		batch, size int
		extra       []string
	}{
		{"", 64, 32, nil},
		{"", 32, 224, nil},
		// The MNIST supernet recipe's step (spos_supernet_shufflenetv2_mnist.yaml).
		{"mnist_", 32, 32, []string{"algorithm.architecture.model.backbone.widen_factor=0.5", "algorithm.architecture.model.backbone.stem_stride=1"}},
	} {
		b.Run(fmt.Sprintf("%sbatch%d_%dx%d", c.name, c.batch, c.size, c.size), func(b *testing.B) {
			alg := build(b, sposSupernet, append([]string{"algorithm.architecture.model.head.num_classes=10", "algorithm.architecture.model.head.loss.num_classes=10"}, c.extra...)...)
			rng := rand.New(rand.NewPCG(1, 2))
			if err := alg.InitWeights(rng); err != nil {
				b.Fatal(err)
			}
			opt, err := optim.NewSGD(alg.NamedParameters(), optim.SGDConfig{LR: 0.1, Momentum: 0.9, WeightDecay: 4e-5}, nil)
			if err != nil {
				b.Fatal(err)
			}
			img := make([]float32, c.batch*3*c.size*c.size)
			for i := range img {
				img[i] = float32(rng.NormFloat64())
			}
			labels := make([]int, c.batch)
			for i := range labels {
				labels[i] = rng.IntN(10)
			}
			in := &models.Batch{Images: tensor.New(tensor.WithShape(c.batch, 3, c.size, c.size), tensor.WithBacking(img)), Labels: labels}
			step := func() {
				if _, err := alg.SampleSubnet(rng); err != nil {
					b.Fatal(err)
				}
				bind := nn.NewBinding()
				losses, err := alg.Model().ForwardTrain(bind, in)
				if err != nil {
					b.Fatal(err)
				}
				total, err := algorithms.SumLosses(losses)
				if err != nil {
					b.Fatal(err)
				}
				if err := bind.Backward(total); err != nil {
					b.Fatal(err)
				}
				if err := bind.Run(); err != nil {
					b.Fatal(err)
				}
				bind.Release()
				opt.Step()
				opt.ZeroGrad(true)
			}
			step()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
			b.ReportMetric(float64(c.batch*b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
