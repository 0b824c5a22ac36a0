package algorithms_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"
)

type gradCase struct {
	Name   string               `json:"name"`
	Subnet map[string]string    `json:"subnet"`
	Loss   float64              `json:"loss"`
	Grads  map[string][]float64 `json:"grads"`
	// LossGap32 and Gaps32 are how far PyTorch's float32 run lands from
	// the float64 values.
	LossGap32 float64              `json:"loss_gap32"`
	Gaps32    map[string][]float64 `json:"gaps32"`
}

type gradFixture struct {
	XShape []int      `json:"x_shape"`
	Labels []int      `json:"labels"`
	Cases  []gradCase `json:"cases"`
}

// gradStats are the fixture's statistics of a gradient: its sum, its sum of
// squares and its projection on cos(0.37 i).
func gradStats(g []float32) [3]float64 {
	var s [3]float64
	for i, v := range g {
		x := float64(v)
		s[0] += x
		s[1] += x * x
		s[2] += x * math.Cos(0.37*float64(i))
	}
	return s
}

// TestTrainingGradientsMatchReference runs one training step of two
// retrained subnets (stem, 20 blocks, last layer, head and the
// label-smoothed loss, composed) from the reference weights and compares
// the loss and every parameter's gradient with PyTorch's float64 results.
// Each op has its own fixtures; this checks the ops wired together, where
// a missing or doubled gradient path would hide.
func TestTrainingGradientsMatchReference(t *testing.T) {
	var f gradFixture
	readJSON(t, "shufflenet_grads.json", &f)
	xs := make([]float32, tensor.Shape(f.XShape).TotalSize())
	for i := range xs {
		v := 43758.5453 * math.Sin(12.9898*float64(i)+1)
		xs[i] = float32(2*(v-math.Floor(v)) - 1)
	}
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "subnet.yaml")
			if err := mutables.WriteSubnetFile(file, mutables.Subnet(c.Subnet)); err != nil {
				t.Fatal(err)
			}
			alg := build(t, sposSubnet, append(smallOverrides, "algorithm.mutable_cfg="+file)...)
			loadWeights(t, alg, false)
			alg.SetTraining(true)
			x := tensor.New(tensor.WithShape(f.XShape...), tensor.WithBacking(append([]float32(nil), xs...)))
			b := nn.NewBinding()
			losses, err := alg.Model().ForwardTrain(b, &models.Batch{Images: x, Labels: f.Labels})
			if err != nil {
				t.Fatal(err)
			}
			var loss *models.Loss
			for i := range losses {
				if strings.Contains(losses[i].Name, "loss") {
					if loss != nil {
						t.Fatalf("two loss terms, %s and %s", loss.Name, losses[i].Name)
					}
					loss = &losses[i]
				}
			}
			if loss == nil {
				t.Fatalf("no loss term among %d", len(losses))
			}
			if err := b.Backward(loss.Node); err != nil {
				t.Fatal(err)
			}
			if err := b.Run(); err != nil {
				t.Fatal(err)
			}
			got := float64(loss.Node.Value().Data().(float32))
			if math.Abs(got-c.Loss) > 5e-5*max(1, c.Loss)+10*c.LossGap32 {
				t.Fatalf("loss %.7f, want %.7f", got, c.Loss)
			}
			// Gradients that vanish in exact arithmetic (a batch norm's
			// bias ahead of a linear op and another batch norm) are
			// float32 rounding on both sides; they are held to a floor
			// relative to the whole model's gradient norm.
			total := 0.0
			for _, g := range c.Grads {
				total += g[1]
			}
			floor := 1e-4 * math.Sqrt(total)
			seen := 0
			for _, p := range alg.NamedParameters() {
				want, ok := c.Grads[p.Name()]
				if !ok {
					t.Fatalf("%s: not a parameter of the reference subnet", p.Name())
				}
				seen++
				if p.Grad() == nil {
					t.Fatalf("%s: no gradient", p.Name())
				}
				s := gradStats(p.GradData())
				// Tolerances relative to the gradient's scale (its norm
				// times the square root of its size bounds the sum and
				// the projection), widened by ten times PyTorch's own
				// float32 error on the value.
				norm := math.Sqrt(want[1])
				n := math.Sqrt(float64(len(p.GradData())))
				scale := [3]float64{norm * n, want[1], norm * n}
				gap := c.Gaps32[p.Name()]
				for i, name := range []string{"sum", "sum of squares", "projection"} {
					if math.Abs(s[i]-want[i]) > 1e-4*scale[i]+10*gap[i]+floor*[3]float64{1, floor, 1}[i] {
						t.Errorf("%s: gradient %s %.6g, want %.6g", p.Name(), name, s[i], want[i])
					}
				}
			}
			if seen != len(c.Grads) {
				t.Fatalf("%d parameters, the reference has %d", seen, len(c.Grads))
			}
		})
	}
}
