package algorithms

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// Architecture wraps the model an algorithm searches or trains, as
// mmrazor's MMClsArchitecture and MMDetArchitecture do; the model is its
// child "model".
type Architecture interface {
	nn.Module
	Model() models.Model
}

// Architectures builds an algorithm's `architecture:` mapping.
var Architectures = registry.New[Architecture]("architecture")

// MMClsArchitectureOptions hold the wrapped classifier.
type MMClsArchitectureOptions struct {
	Model models.Model `cfg:"model,required"`
}

// MMClsArchitecture wraps a classification model.
type MMClsArchitecture struct {
	nn.Base
	model models.Model
}

// NewMMClsArchitecture wraps m.
func NewMMClsArchitecture(m models.Model) *MMClsArchitecture {
	a := &MMClsArchitecture{model: m}
	a.AddChild("model", m)
	return a
}

// Model is the wrapped model.
func (a *MMClsArchitecture) Model() models.Model { return a.model }

// MMDetArchitectureOptions hold the detector's mapping, built by the model
// registry when its type is registered there.
type MMDetArchitectureOptions struct {
	Model map[string]any `cfg:"model,required"`
}

// MMDetArchitecture wraps a detection model (razor registers FasterRCNN).
// When the model registry lacks the detector type the config names (a
// RetinaNet, say), it builds the detector's backbone alone: enough to
// count DetNAS's backbone FLOPs, list the search space and load or save
// backbone weights, while any training or test forward fails with a message
// saying so.
type MMDetArchitecture struct {
	nn.Base
	model models.Model
}

// NewMMDetArchitecture builds the detector, or only its backbone while the
// detector type is not registered.
func NewMMDetArchitecture(o MMDetArchitectureOptions) (*MMDetArchitecture, error) {
	typ, _ := o.Model["type"].(string)
	if typ == "" {
		return nil, fmt.Errorf("model has no `type` naming the detector")
	}
	a := &MMDetArchitecture{}
	if models.Models.Has(typ) {
		m, err := models.Models.Build(o.Model, "model", nil)
		if err != nil {
			return nil, err
		}
		a.model = m
	} else {
		node, ok := o.Model["backbone"]
		if !ok {
			return nil, fmt.Errorf("model (detector %s) has no backbone", typ)
		}
		bb, err := models.Backbones.Build(node, "model.backbone", nil)
		if err != nil {
			return nil, err
		}
		a.model = newPendingDetector(typ, bb)
	}
	a.AddChild("model", a.model)
	return a, nil
}

// Model is the wrapped model.
func (a *MMDetArchitecture) Model() models.Model { return a.model }

// pendingDetector stands for a detector whose type is not registered: it
// holds the backbone under "backbone" (so weights keep their reference
// names) and refuses to run.
type pendingDetector struct {
	nn.Base
	kind     string
	backbone models.Backbone
}

func newPendingDetector(kind string, bb models.Backbone) *pendingDetector {
	d := &pendingDetector{kind: kind, backbone: bb}
	d.AddChild("backbone", bb)
	return d
}

// Backbone is the detector's backbone, the part razor could build.
func (d *pendingDetector) Backbone() models.Backbone { return d.backbone }

func (d *pendingDetector) unavailable() error {
	return fmt.Errorf("the detector %s is not a registered model type (registered: %s); razor built only its backbone, which serves get_flops, the search space and weight loading but cannot train or test", d.kind, strings.Join(models.Models.Names(), ", "))
}

// ForwardTrain fails: there is no detector to train.
func (d *pendingDetector) ForwardTrain(*nn.Binding, *models.Batch) (models.Losses, error) {
	return nil, d.unavailable()
}

// ForwardTest fails: there is no detector to test.
func (d *pendingDetector) ForwardTest(*nn.Binding, *models.Batch) (models.Pending, error) {
	return nil, d.unavailable()
}

// InitWeights initialises the backbone.
func (d *pendingDetector) InitWeights(rng *rand.Rand) error {
	if wi, ok := d.backbone.(models.WeightInitializer); ok {
		return wi.InitWeights(rng)
	}
	return nil
}

func init() {
	registry.MustRegister(Architectures, "MMClsArchitecture", func(o MMClsArchitectureOptions) (Architecture, error) {
		return NewMMClsArchitecture(o.Model), nil
	})
	registry.MustRegister(Architectures, "MMDetArchitecture", func(o MMDetArchitectureOptions) (Architecture, error) {
		return NewMMDetArchitecture(o)
	})
}
