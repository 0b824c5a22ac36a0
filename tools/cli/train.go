package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/runners"
)

// Train is the train command: it parses args (CONFIG and the run flags),
// builds the config's algorithm from every registered type and trains it.
// A contributor's main that blank-imports their own packages next to
// github.com/razorgo/razor/all calls it to train their algorithm.
func Train(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf RunFlags
	rf.Register(fs)
	noValidate := fs.Bool("no-validate", false, "do not evaluate during training")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: train CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--seed N] [--deterministic] [--resume-from CKPT] [--auto-resume] [--no-validate]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(ExpandArgs(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("expected one CONFIG file, got %d arguments", fs.NArg())
	}
	if err := rf.Validate(); err != nil {
		return err
	}
	cfg, err := rf.Load(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	workDir, err := rf.ResolveWorkDir(cfg)
	if err != nil {
		return err
	}
	end, err := rf.Start(workDir, "train", stderr)
	if err != nil {
		return err
	}
	defer func() { end(err) }()
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		return fmt.Errorf("config %s: %w", fs.Arg(0), err)
	}
	return runners.Train(ctx, cfg, alg, runners.TrainOptions{
		WorkDir: workDir, Seed: uint64(rf.Seed), Seeded: rf.Seeded, Deterministic: rf.Deterministic,
		ResumeFrom: rf.ResumeFrom, AutoResume: rf.AutoResume, NoValidate: *noValidate, Out: stdout,
	})
}
