// Package testkit holds what many packages' tests do alike: build the
// algorithm of a config and save a checkpoint of seeded initial weights
// for a tool to load. Only tests import it; the caller's test imports the
// registrations (github.com/razorgo/razor/all) the config needs.
package testkit

import (
	"math/rand/v2"
	"testing"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/runners/checkpoint"
)

// Build loads the config at path with overrides and builds its
// algorithm, failing t on any error.
func Build(t testing.TB, path string, overrides ...string) algorithms.Algorithm {
	t.Helper()
	cfg, err := config.Load(path, config.Options{Overrides: overrides})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return alg
}

// InitCheckpoint draws alg's initial weights from seed and saves them as
// the training checkpoint dir/name at iteration 1; it returns its path.
func InitCheckpoint(t testing.TB, alg algorithms.Algorithm, seed uint64, dir, name string) string {
	t.Helper()
	if err := alg.InitWeights(rand.New(rand.NewPCG(seed, seed+1))); err != nil {
		t.Fatal(err)
	}
	path, err := checkpoint.SaveTraining(dir, name, alg, nil, checkpoint.Meta{Iteration: 1})
	if err != nil {
		t.Fatal(err)
	}
	return path
}
