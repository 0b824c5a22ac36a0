// Package models declares the kinds of network component razor builds from
// configs -- backbones, necks, heads, whole models and the ops a searchable
// block chooses from -- with one registry each. Implementations live in the
// sub-packages (backbones/, necks/, heads/, classifiers/, detectors/ with
// the detection heads of dense_heads/ and roi_heads/, whose registries
// those packages declare) and register themselves from init().
//
// Every component is an nn.Module (weights live in the module tree, named
// like the reference PyTorch state_dict) whose Forward adds nodes for the
// path in use to a fresh graph held by an nn.Binding.
//
// Of razor it imports only models/nn and registry. Its sub-packages import
// models, models/nn, models/ops and registry, and nothing above them (not
// mutables or algorithms).
package models

import (
	"math/rand/v2"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/registry"
)

// Backbone turns an image batch into feature maps, one per output stage
// (out_indices), highest resolution first.
type Backbone interface {
	nn.Module
	Forward(b *nn.Binding, x *gorgonia.Node) ([]*gorgonia.Node, error)
}

// Neck transforms a backbone's feature maps (global pooling for a
// classifier, FPN for a detector).
type Neck interface {
	nn.Module
	Forward(b *nn.Binding, feats []*gorgonia.Node) ([]*gorgonia.Node, error)
}

// ClsHead maps pooled features to class logits and computes the
// classification loss.
type ClsHead interface {
	nn.Module
	// Forward returns logits shaped (N, num_classes).
	Forward(b *nn.Binding, feats []*gorgonia.Node) (*gorgonia.Node, error)
	// Loss returns the named loss terms for integer labels.
	Loss(b *nn.Binding, logits *gorgonia.Node, labels []int) (Losses, error)
}

// Batch is one batch of model inputs and training targets, already collated
// by a data loader.
type Batch struct {
	// Images is the float32 NCHW image tensor (padded for detection).
	Images *tensor.Dense
	// Labels are the class indices of a classification batch.
	Labels []int
	// GTBoxes and GTLabels are each image's boxes (x1, y1, x2, y2 in input
	// pixels) and class indices for detection; GTIgnore are boxes to ignore.
	GTBoxes  [][][4]float32
	GTLabels [][]int
	GTIgnore [][][4]float32
	// Metas describe each image: shapes before and after resizing, flips.
	Metas []ImageMeta
	// Rand draws the random choices a model makes in its own training
	// forward (a detector's sampling of anchors and RoIs). The training
	// step hands it the iteration's seeded source, so a resumed run draws
	// exactly what an uninterrupted one draws; nil where nothing is drawn.
	Rand *rand.Rand
	// Indices are the images' positions in the dataset the batch was drawn
	// from, so that an evaluation can match each result to its entry (a
	// COCO image id); nil for a batch built outside a loader.
	Indices []int
}

// ImageMeta is what a detector needs to know about one image of a batch.
type ImageMeta struct {
	Filename    string
	OriShape    [3]int // height, width, channels of the file
	ImgShape    [3]int // after resizing, before padding
	PadShape    [3]int // after padding
	ScaleFactor [4]float32
	Flip        bool
}

// Loss is one named loss term, a scalar node.
type Loss struct {
	Name string
	Node *gorgonia.Node
}

// Losses are the terms of a training step; the runner sums every term whose
// name contains "loss", as mmcv does, and logs each one.
type Losses []Loss

// Detection is one detected box in original-image pixels.
type Detection struct {
	Box   [4]float32
	Score float32
	Label int
}

// Result is what a test forward produces for a batch, read after the graph
// has run: class probabilities for a classifier, boxes for a detector.
type Result struct {
	Scores     [][]float32   // (N, num_classes) softmax probabilities
	Detections [][]Detection // per image
}

// Pending reads a test forward's Result once the binding has run. The
// Result must not share memory with the graph's values: the binding's
// buffers are recycled once Pending returns.
type Pending func() (Result, error)

// Model is a whole trainable network: the `model:` mapping of a config.
type Model interface {
	nn.Module
	// ForwardTrain adds the training losses of a batch to the graph.
	ForwardTrain(b *nn.Binding, in *Batch) (Losses, error)
	// ForwardTest adds the test forward of a batch to the graph.
	ForwardTest(b *nn.Binding, in *Batch) (Pending, error)
	// Backbone is the model's backbone, whose weights and FLOPs some
	// algorithms (DetNAS) treat on their own.
	Backbone() Backbone
}

// Op is a candidate operation of a searchable block (ShuffleBlock,
// ShuffleXception ...): one input, one output. A mutator builds one Op per
// choice of every block from its config mapping, adding the block's
// in_channels, out_channels and stride.
type Op interface {
	nn.Layer
}

// WeightInitializer is a component that draws its initial weights itself,
// as mmcv's init_weights does; a fresh component has zero weights (norm
// scales one) until InitWeights runs. Draws come from rng only, so a seed
// fixes the weights.
type WeightInitializer interface {
	InitWeights(rng *rand.Rand) error
}

// The registries of model components.
var (
	Backbones = registry.New[Backbone]("backbone")
	Necks     = registry.New[Neck]("neck")
	ClsHeads  = registry.New[ClsHead]("head")
	Models    = registry.New[Model]("model")
	Ops       = registry.New[Op]("op")
)

// Predict runs a test forward of one batch in a fresh graph and returns its
// result. The model's mode (train or eval) is the caller's to set.
func Predict(m Model, in *Batch) (Result, error) {
	b := nn.NewBinding()
	defer b.Release()
	pending, err := m.ForwardTest(b, in)
	if err != nil {
		return Result{}, err
	}
	if err := b.Run(); err != nil {
		return Result{}, err
	}
	return pending()
}
