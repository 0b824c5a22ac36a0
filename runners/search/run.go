package search

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/runners"
)

// RunOptions are the command-line choices of a search.
type RunOptions struct {
	// WorkDir receives the state and every output.
	WorkDir string
	// Seed seeds a fresh search when Seeded; otherwise a random seed is
	// drawn and logged. A resumed search keeps its state's seed.
	Seed   uint64
	Seeded bool
	// ResumeFrom is a search_state.json to continue; AutoResume continues
	// the work dir's one when it exists.
	ResumeFrom string
	AutoResume bool
	// Checkpoint names the supernet weights alg holds, for the log.
	Checkpoint string
	// Out receives the log lines (the terminal).
	Out io.Writer
}

// Run searches alg's space (alg holds the trained supernet's weights) as
// cfg's `searcher:` mapping describes, and returns where the answer is.
func Run(ctx context.Context, cfg *config.Config, alg algorithms.Algorithm, opts RunOptions) (*Result, error) {
	node, ok := cfg.Get("searcher")
	if !ok || node == nil {
		return nil, fmt.Errorf("the config has no searcher; set searcher.type to one of: %s", strings.Join(Searchers.Names(), ", "))
	}
	s, err := Searchers.Build(node, "searcher", nil)
	if err != nil {
		return nil, err
	}
	oneShot, err := algorithms.AsOneShot(alg, "a search")
	if err != nil {
		return nil, err
	}
	if oneShot.Space() == nil {
		return nil, fmt.Errorf("the algorithm has nothing to search (no mutator, or retraining a fixed subnet); search a supernet config")
	}
	if oneShot.Subnet() != nil {
		return nil, fmt.Errorf("algorithm.mutable_cfg fixes a subnet, but a search scores subnets of the whole supernet; set algorithm.mutable_cfg to null")
	}
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	workDir := opts.WorkDir
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating work dir %s: %w", workDir, err)
	}
	comm := dist.World()
	log, err := runners.OpenRunLog(cfg, workDir, out, comm)
	if err != nil {
		return nil, err
	}
	defer log.Close()

	resume := opts.ResumeFrom
	if resume == "" && opts.AutoResume {
		if p := filepath.Join(workDir, StateFile); fileExists(p) {
			resume = p
		}
	}
	// Every rank continues the state rank 0 found, with rank 0's seed.
	if err := dist.BroadcastJSON(comm, &resume); err != nil {
		return nil, err
	}
	seed := opts.Seed
	var st *State
	if resume != "" {
		if st, err = LoadState(resume); err != nil {
			return nil, err
		}
		seed = st.Seed
		log.Printf("resuming the search from %s", resume)
	} else if !opts.Seeded {
		seed = rand.Uint64() >> 1
	}
	if err := dist.BroadcastJSON(comm, &seed); err != nil {
		return nil, err
	}
	if comm.Size() > 1 {
		log.Printf("Distributed search: %s; each scores its share of every group of candidates", comm.Name())
	}
	log.Printf("Set random seed to %d", seed)
	if note := runners.SyncBNNote(cfg); note != "" {
		log.Printf("%s", note)
	}
	scorer, err := NewScorer(cfg, alg, s.Evaluation(), seed)
	if err != nil {
		return nil, err
	}
	if opts.Checkpoint != "" {
		log.Printf("searching the supernet of %s", opts.Checkpoint)
	}
	log.Printf("scoring candidates by %s", scorer.Description)
	env := &Env{
		Space:   oneShot.Space(),
		Measure: func(sub mutables.Subnet) (Cost, error) { return measure(oneShot, sub) },
		Scorer:  scorer,
		WorkDir: workDir,
		Seed:    seed,
		Resume:  st,
		Log:     log,
		Comm:    comm,
	}
	return s.Search(ctx, env)
}

// measure counts sub over the algorithm's scope at its input_shape.
func measure(alg algorithms.OneShot, sub mutables.Subnet) (Cost, error) {
	c, err := alg.Complexity(sub, nil)
	if err != nil {
		return Cost{}, err
	}
	return Cost{FLOPs: c.FLOPs, Params: c.Params}, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
