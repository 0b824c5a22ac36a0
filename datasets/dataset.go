package datasets

import (
	"fmt"
	"math/rand/v2"
	"reflect"

	"github.com/razorgo/razor/registry"
)

// Dataset is an indexable collection of samples with the pipeline that
// turns each into a network input.
type Dataset interface {
	// Len is the number of samples.
	Len() int
	// Get returns sample i as the dataset stores it, before the pipeline:
	// an in-memory image or the file to load, the label or annotations.
	// The sample owns its slices, so transforms may modify them.
	Get(i int) (Sample, error)
	// Classes names the labels, label i being Classes()[i] (mmcv's CLASSES).
	Classes() []string
	// Pipeline is the sequence of transforms applied to every sample.
	Pipeline() Pipeline
}

// Datasets builds a Dataset from a config mapping such as
// {type: CocoDataset, ann_file: ..., img_prefix: ..., pipeline: [...]}.
var Datasets = registry.New[Dataset]("dataset")

// Transform is one pipeline step. It modifies the sample in place and draws
// any randomness from rng, which the loader derives from (seed, epoch,
// sample index) so results never depend on worker scheduling.
type Transform interface {
	Apply(s *Sample, rng *rand.Rand) error
}

// Transforms builds a Transform from a config mapping such as
// {type: RandomFlip, flip_ratio: 0.5}.
var Transforms = registry.New[Transform]("transform")

// Pipeline is a list of transforms applied in order (mmcv's Compose). A
// config list of `type:` mappings decodes into it.
type Pipeline []Transform

// Apply runs every transform on s; an error names the failing step.
func (p Pipeline) Apply(s *Sample, rng *rand.Rand) error {
	for i, t := range p {
		if err := t.Apply(s, rng); err != nil {
			return fmt.Errorf("pipeline step %d (%s): %w", i, transformName(t), err)
		}
	}
	return nil
}

// transformName is the Go type name, which for built-in transforms is the
// config type name.
func transformName(t Transform) string {
	rt := reflect.TypeOf(t)
	for rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	return rt.Name()
}

// Prepare returns sample i of ds after its pipeline, drawing randomness from
// rng. Errors name the dataset entry (file, image id or list line).
func Prepare(ds Dataset, i int, rng *rand.Rand) (Sample, error) {
	s, err := ds.Get(i)
	if err != nil {
		return Sample{}, err
	}
	if err := ds.Pipeline().Apply(&s, rng); err != nil {
		return Sample{}, fmt.Errorf("%s: %w", s.Source, err)
	}
	return s, nil
}

// SampleRNG returns the generator for the random transforms of sample index
// in pass epoch of a loader seeded with seed (a loader passes a larger key
// for the second and later times a pass repeats a sample). The three inputs are mixed so
// that neighbouring indices and epochs give unrelated streams.
func SampleRNG(seed uint64, epoch, index int) *rand.Rand {
	a := mix64(seed ^ 0x9e3779b97f4a7c15)
	b := mix64(a ^ mix64(uint64(epoch)+0x632be59bd9b4e019))
	return rand.New(rand.NewPCG(b, mix64(b^mix64(uint64(index)+0x8cb92ba72f3d8dd7))))
}

// mix64 is the splitmix64 finaliser, a bijection with good avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// rangeError reports an index outside [0, n) for dataset kind.
func rangeError(kind string, i, n int) error {
	return fmt.Errorf("%s: index %d out of range [0, %d)", kind, i, n)
}
