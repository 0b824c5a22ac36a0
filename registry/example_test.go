package registry_test

import (
	"fmt"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/registry"
)

// Searcher stands for a kind of component that razor declares in its own
// package (algorithms, mutators, searchers ...), next to its registry.
type Searcher interface {
	Describe() string
}

// Searchers is the registry such a package declares once.
var Searchers = registry.New[Searcher]("searcher")

// RandomSearch is what a contributor writes in a package of their own.
type RandomSearch struct{ opts RandomSearchOptions }

// RandomSearchOptions are decoded strictly from the config mapping: an
// unknown key is an error naming the key and the accepted ones.
type RandomSearchOptions struct {
	Candidates  int    `cfg:"candidates"`
	Constraints string `cfg:"constraints"`
}

// Defaults presets the values a config may leave out.
func (o *RandomSearchOptions) Defaults() { o.Candidates = 100 }

// Describe implements Searcher.
func (r *RandomSearch) Describe() string {
	return fmt.Sprintf("random search over %d candidates where %s", r.opts.Candidates, r.opts.Constraints)
}

// The contributor's package registers its type from init; a main that
// imports that package (next to razor's built-ins) can then build it from
// any config by name, with or without an OpenMMLab-style scope.
func init() {
	registry.MustRegister(Searchers, "RandomSearch", func(o RandomSearchOptions) (Searcher, error) {
		if o.Candidates <= 0 {
			return nil, fmt.Errorf("candidates must be positive, got %d", o.Candidates)
		}
		return &RandomSearch{opts: o}, nil
	})
}

func Example_contributorRegistersAType() {
	cfg, err := config.FromMap(map[string]any{
		"searcher": map[string]any{"type": "mmrazor.RandomSearch", "constraints": "flops < 300e6"},
	})
	if err != nil {
		panic(err)
	}
	node, _ := cfg.Get("searcher")
	s, err := Searchers.Build(node, "searcher", nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Describe())

	_, err = Searchers.Build(map[string]any{"type": "RandomSearch", "candidate": 5}, "searcher", nil)
	fmt.Println(err)
	// Output:
	// random search over 100 candidates where flops < 300e6
	// searcher: unknown key "candidate" (did you mean "candidates"?); accepted keys: candidates, constraints
}
