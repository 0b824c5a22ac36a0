package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
)

func forwardOnce(t *testing.T, l Layer, x *tensor.Dense) {
	t.Helper()
	b := NewBinding()
	if _, err := l.Forward(b, b.Input("x", x)); err != nil {
		t.Fatal(err)
	}
	if err := b.Run(); err != nil {
		t.Fatal(err)
	}
}

// TestRecalibrationAveragesBatches re-estimates statistics over two batches
// and checks they are the exact average of the batch means and unbiased
// variances, that a BN off the path keeps its statistics, and that modes
// are what the flags say.
func TestRecalibrationAveragesBatches(t *testing.T) {
	root := &box{}
	used, _ := NewBatchNorm2d(2)
	idle, _ := NewBatchNorm2d(2)
	root.AddChild("used", used)
	root.AddChild("idle", idle)
	copy(idle.State.RunningMean.Float32s(), []float32{5, 6})

	rng := rand.New(rand.NewPCG(9, 9))
	var wantMean, wantVar [2]float64
	RecalibrateBN(root, true)
	if used.Mode().String() != "recalibrate" {
		t.Fatalf("mode %v after RecalibrateBN(true)", used.Mode())
	}
	const batches = 2
	for range batches {
		x := make([]float32, 3*2*2*2)
		for i := range x {
			x[i] = float32(rng.NormFloat64()*2 + 1)
		}
		for c := range 2 {
			var vals []float64
			for n := range 3 {
				for i := range 4 {
					vals = append(vals, float64(x[(n*2+c)*4+i]))
				}
			}
			m, s := 0.0, 0.0
			for _, v := range vals {
				m += v
			}
			m /= float64(len(vals))
			for _, v := range vals {
				s += (v - m) * (v - m)
			}
			wantMean[c] += m / batches
			wantVar[c] += s / float64(len(vals)-1) / batches
		}
		forwardOnce(t, used, tensor.New(tensor.WithShape(3, 2, 2, 2), tensor.WithBacking(x)))
	}
	if n := FinishBNRecalibration(root); n != 1 {
		t.Errorf("FinishBNRecalibration updated %d layers, want 1", n)
	}
	RecalibrateBN(root, false)
	for c := range 2 {
		if math.Abs(float64(used.State.RunningMean.Float32s()[c])-wantMean[c]) > 1e-5 ||
			math.Abs(float64(used.State.RunningVar.Float32s()[c])-wantVar[c]) > 1e-5 {
			t.Errorf("channel %d: mean %v var %v, want %v %v", c, used.State.RunningMean.Float32s()[c], used.State.RunningVar.Float32s()[c], wantMean[c], wantVar[c])
		}
	}
	if nbt := root.StateDict()["used.num_batches_tracked"].Int64s()[0]; nbt != batches {
		t.Errorf("num_batches_tracked = %d, want %d", nbt, batches)
	}
	if idle.State.RunningMean.Float32s()[0] != 5 {
		t.Errorf("a layer off the path lost its statistics")
	}
	if used.Mode().String() != "train" {
		t.Errorf("mode %v after RecalibrateBN(false), want train", used.Mode())
	}
	root.SetTraining(false)
	if used.Mode().String() != "eval" {
		t.Errorf("mode %v in eval, want eval", used.Mode())
	}

	resetBNStats(root)
	if idle.State.RunningMean.Float32s()[0] != 0 || idle.State.RunningVar.Float32s()[0] != 1 || root.StateDict()["used.num_batches_tracked"].Int64s()[0] != 0 {
		t.Errorf("resetBNStats left %v %v", idle.State.RunningMean.Float32s(), idle.State.RunningVar.Float32s())
	}
}

// TestCounterBufferLoads checks that loading num_batches_tracked writes
// through to the BN state the op updates.
func TestCounterBufferLoads(t *testing.T) {
	bn, _ := NewBatchNorm2d(1)
	sd := bn.StateDict()
	sd["num_batches_tracked"] = tensor.New(tensor.WithShape(), tensor.WithBacking([]int64{41}))
	if _, err := bn.LoadStateDict(sd, true); err != nil {
		t.Fatal(err)
	}
	if bn.State.NumBatchesTracked != 41 {
		t.Fatalf("state counter %d after load, want 41", bn.State.NumBatchesTracked)
	}
	forwardOnce(t, bn, tensor.New(tensor.WithShape(2, 1, 1, 1), tensor.WithBacking([]float32{1, 2})))
	if got := bn.StateDict()["num_batches_tracked"].Int64s()[0]; got != 42 {
		t.Errorf("num_batches_tracked after a training forward = %d, want 42", got)
	}
}

// resetBNStats resets the running statistics of every BatchNorm2d under m
// (mean 0, variance 1, no batches tracked), as the official DetNAS search
// does before re-estimating them in training mode.
func resetBNStats(m Module) {
	Walk(m, func(_ string, x Module) {
		if bn, ok := x.(*BatchNorm2d); ok {
			bn.State.ResetRunningStats()
		}
	})
}
