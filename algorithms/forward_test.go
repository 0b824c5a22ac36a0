package algorithms_test

import (
	"math"
	"path/filepath"
	"testing"

	"gorgonia.org/tensor"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/runners/checkpoint"
)

type forwardCase struct {
	Name        string               `json:"name"`
	Subnet      map[string]string    `json:"subnet"`
	EvalLogits  []float64            `json:"eval_logits"`
	TrainLogits []float64            `json:"train_logits"`
	AfterTrain  map[string][]float64 `json:"after_train"`
}

type forwardFixture struct {
	XShape []int         `json:"x_shape"`
	X      []float64     `json:"x"`
	Cases  []forwardCase `json:"cases"`
}

const fixtureWeights = "testdata/shufflenet_w0125.pth"

func loadForwardFixture(t testing.TB) (forwardFixture, *tensor.Dense) {
	var f forwardFixture
	readJSON(t, "shufflenet_forward.json", &f)
	x := make([]float32, len(f.X))
	for i, v := range f.X {
		x[i] = float32(v)
	}
	return f, tensor.New(tensor.WithShape(f.XShape...), tensor.WithBacking(x))
}

// loadWeights loads the reference checkpoint (keys architecture.model.*)
// into alg; strict unless the model holds fewer ops than the supernet.
func loadWeights(t testing.TB, alg algorithms.Algorithm, strict bool) nn.LoadReport {
	t.Helper()
	rep, _, err := checkpoint.LoadModel(fixtureWeights, alg, checkpoint.LoadOptions{Strict: strict})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestSupernetPathsMatchReference runs the supernet with the reference's
// weights on each fixture path (and with every op, summed per block), in
// evaluation and training mode, and compares logits and the BN running
// statistics the training forward leaves with PyTorch's float64 results:
// within 1e-4, relative to the largest value for the whole supernet, whose
// sums of four ops per block grow the values about 4^20-fold.
func TestSupernetPathsMatchReference(t *testing.T) {
	f, x := loadForwardFixture(t)
	alg := build(t, sposSupernet, smallOverrides...)
	for _, c := range f.Cases {
		t.Run(c.Name, func(t *testing.T) {
			loadWeights(t, alg, true)
			var sub mutables.Subnet
			if c.Subnet != nil {
				sub = mutables.Subnet(c.Subnet)
			}
			if err := alg.SetSubnet(sub); err != nil {
				t.Fatal(err)
			}
			tol := func(want []float64) float64 {
				if sub != nil {
					return 1e-4
				}
				return 1e-4 * max(1, maxAbs(want))
			}
			alg.SetTraining(false)
			assertClose(t, "eval logits", logitsOf(t, alg, x), c.EvalLogits, tol(c.EvalLogits))
			alg.SetTraining(true)
			assertClose(t, "train logits", logitsOf(t, alg, x), c.TrainLogits, tol(c.TrainLogits))
			sd := alg.StateDict()
			for k, want := range c.AfterTrain {
				assertClose(t, k, sd[k].Float32s(), want, 1e-4*max(1, maxAbs(want)))
			}
		})
	}
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(x))
	}
	return m
}

// TestRetrainedSubnetMatchesReference builds the retraining config for the
// fixture's subnets (given as a file and inline), loads the supernet
// checkpoint, which must fill every weight the subnet has, and compares
// the logits.
func TestRetrainedSubnetMatchesReference(t *testing.T) {
	f, x := loadForwardFixture(t)
	for _, c := range f.Cases {
		if c.Subnet == nil {
			continue
		}
		file := filepath.Join(t.TempDir(), "subnet.yaml")
		if err := mutables.WriteSubnetFile(file, mutables.Subnet(c.Subnet)); err != nil {
			t.Fatal(err)
		}
		alg := build(t, sposSubnet, append(smallOverrides, "algorithm.mutable_cfg="+file)...)
		if !alg.Retraining() || alg.Space() != nil || alg.Subnet() == nil {
			t.Fatalf("retraining %v, space %v, subnet %v", alg.Retraining(), alg.Space(), alg.Subnet())
		}
		rep := loadWeights(t, alg, false)
		if len(rep.Missing) > 0 || len(rep.Mismatched) > 0 {
			t.Fatalf("%s: the supernet checkpoint leaves %v missing and %v mismatched", c.Name, rep.Missing, rep.Mismatched)
		}
		// The unchosen ops of the 20 blocks are the unexpected keys.
		if len(rep.Unexpected) == 0 {
			t.Fatalf("%s: a retrained subnet should hold fewer weights than the supernet", c.Name)
		}
		alg.SetTraining(false)
		assertClose(t, c.Name+" retrained eval logits", logitsOf(t, alg, x), c.EvalLogits, 1e-4)
	}
}
