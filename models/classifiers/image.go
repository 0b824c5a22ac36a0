// Package classifiers holds whole classification models: ImageClassifier,
// mmcls's backbone -> neck -> head.
//
// It imports models, models/nn, models/ops and registry; its parts come
// from the other model packages through the registries, not by import.
package classifiers

import (
	"fmt"
	"math/rand/v2"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/models/ops"
	"github.com/razorgo/razor/registry"
)

// ImageClassifierOptions are mmcls's ImageClassifier arguments.
type ImageClassifierOptions struct {
	Backbone models.Backbone `cfg:"backbone,required"`
	// Neck is optional (null for none).
	Neck models.Neck    `cfg:"neck"`
	Head models.ClsHead `cfg:"head,required"`
}

// ImageClassifier is backbone -> neck -> head with children named
// "backbone", "neck" and "head", so weights are named backbone.*, head.fc.*
// as in mmcls.
type ImageClassifier struct {
	nn.Base
	backbone models.Backbone
	neck     models.Neck
	head     models.ClsHead
}

// NewImageClassifier assembles the classifier.
func NewImageClassifier(o ImageClassifierOptions) (*ImageClassifier, error) {
	if o.Backbone == nil || o.Head == nil {
		return nil, fmt.Errorf("an image classifier needs a backbone and a head")
	}
	c := &ImageClassifier{backbone: o.Backbone, neck: o.Neck, head: o.Head}
	c.AddChild("backbone", o.Backbone)
	if o.Neck != nil {
		c.AddChild("neck", o.Neck)
	}
	c.AddChild("head", o.Head)
	return c, nil
}

// Backbone is the classifier's backbone.
func (c *ImageClassifier) Backbone() models.Backbone { return c.backbone }

// Head is the classifier's head.
func (c *ImageClassifier) Head() models.ClsHead { return c.head }

// Logits adds the forward pass from images (N×3×H×W) to logits (N×K).
func (c *ImageClassifier) Logits(b *nn.Binding, images *gorgonia.Node) (*gorgonia.Node, error) {
	feats, err := c.backbone.Forward(b, images)
	if err != nil {
		return nil, err
	}
	if c.neck != nil {
		if feats, err = c.neck.Forward(b, feats); err != nil {
			return nil, err
		}
	}
	return c.head.Forward(b, feats)
}

func (c *ImageClassifier) input(b *nn.Binding, in *models.Batch) (*gorgonia.Node, error) {
	if in == nil || in.Images == nil {
		return nil, fmt.Errorf("image classifier: the batch has no images")
	}
	if in.Images.Dims() != 4 || in.Images.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("image classifier: images must be a float32 N×C×H×W tensor, got %v %v", in.Images.Dtype(), in.Images.Shape())
	}
	return b.Input("img", in.Images), nil
}

// ForwardTrain adds the head's losses for the batch's labels.
func (c *ImageClassifier) ForwardTrain(b *nn.Binding, in *models.Batch) (models.Losses, error) {
	x, err := c.input(b, in)
	if err != nil {
		return nil, err
	}
	if len(in.Labels) != in.Images.Shape()[0] {
		return nil, fmt.Errorf("image classifier: %d labels for %d images", len(in.Labels), in.Images.Shape()[0])
	}
	logits, err := c.Logits(b, x)
	if err != nil {
		return nil, err
	}
	return c.head.Loss(b, logits, in.Labels)
}

// ForwardTest adds logits and their softmax; the Result's Scores are the
// class probabilities.
func (c *ImageClassifier) ForwardTest(b *nn.Binding, in *models.Batch) (models.Pending, error) {
	x, err := c.input(b, in)
	if err != nil {
		return nil, err
	}
	logits, err := c.Logits(b, x)
	if err != nil {
		return nil, err
	}
	probs, err := ops.Softmax(logits)
	if err != nil {
		return nil, err
	}
	return func() (models.Result, error) {
		v, ok := probs.Value().(*tensor.Dense)
		if !ok {
			return models.Result{}, fmt.Errorf("image classifier: the scores were not computed; run the binding before reading the result")
		}
		n, k := v.Shape()[0], v.Shape()[1]
		data := v.Float32s()
		scores := make([][]float32, n)
		for i := range scores {
			scores[i] = append([]float32(nil), data[i*k:(i+1)*k]...)
		}
		return models.Result{Scores: scores}, nil
	}, nil
}

// InitWeights initialises every part that draws its own weights.
func (c *ImageClassifier) InitWeights(rng *rand.Rand) error {
	for _, m := range []any{c.backbone, c.neck, c.head} {
		if wi, ok := m.(models.WeightInitializer); ok {
			if err := wi.InitWeights(rng); err != nil {
				return err
			}
		}
	}
	return nil
}

func init() {
	registry.MustRegister(models.Models, "ImageClassifier", func(o ImageClassifierOptions) (models.Model, error) {
		return NewImageClassifier(o)
	})
}
