package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/runners/search"
)

// Search is the search command, as mmrazor's tools/search.py: it parses
// args (CONFIG, CHECKPOINT and the run flags), builds the config's
// algorithm, loads the trained supernet's weights from CHECKPOINT and runs
// the config's searcher, writing to the work dir what package search
// documents -- among them best_subnet.yaml (the answer, in mmrazor's
// mutable_cfg format) and search_report.json (its score, flops and params
// against random subnets under the same constraint).
//
// --resume-from takes a search_state.json; --auto-resume continues the
// work dir's one when there is one. A resumed search keeps its seed.
// A contributor's main that blank-imports their packages next to
// github.com/razorgo/razor/all calls it to search their algorithm.
func Search(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, err := SearchResult(ctx, args, stdout, stderr)
	return err
}

// SearchResult is Search returning where the search left its answer, for
// callers (a pipeline) that go on with it.
func SearchResult(ctx context.Context, args []string, stdout, stderr io.Writer) (_ *search.Result, err error) {
	fs := pflag.NewFlagSet("search", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf RunFlags
	rf.Register(fs)
	fs.Lookup("resume-from").Usage = "search state to resume from (a work dir's " + search.StateFile + ")"
	fs.Lookup("auto-resume").Usage = "resume the work dir's " + search.StateFile + ", if any"
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: search CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--seed N] [--deterministic] [--resume-from STATE] [--auto-resume]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(ExpandArgs(args)); err != nil {
		return nil, err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return nil, fmt.Errorf("expected CONFIG and CHECKPOINT, got %d arguments", fs.NArg())
	}
	if err := rf.Validate(); err != nil {
		return nil, err
	}
	cfgPath, ckpt := fs.Arg(0), fs.Arg(1)
	cfg, err := rf.Load(cfgPath, stderr)
	if err != nil {
		return nil, err
	}
	workDir, err := rf.ResolveWorkDir(cfg)
	if err != nil {
		return nil, err
	}
	end, err := rf.Start(workDir, "search", stderr)
	if err != nil {
		return nil, err
	}
	defer func() { end(err) }()
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", cfgPath, err)
	}
	if err := LoadWeights(ckpt, alg, stderr); err != nil {
		return nil, err
	}
	return search.Run(ctx, cfg, alg, search.RunOptions{
		WorkDir: workDir, Seed: uint64(rf.Seed), Seeded: rf.Seeded,
		ResumeFrom: rf.ResumeFrom, AutoResume: rf.AutoResume, Checkpoint: ckpt, Out: stdout,
	})
}
