// Command train trains an algorithm (a SPOS/DetNAS supernet, or a fixed
// subnet with retraining) as its config describes, as mmrazor's
// tools/train.py does.
//
//	train CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--seed N]
//	      [--deterministic] [--resume-from CKPT] [--auto-resume] [--no-validate]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/algorithms"
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/runners"
	"github.com/razorgo/razor/tools/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var rf cli.RunFlags
	rf.Register(fs)
	noValidate := fs.Bool("no-validate", false, "do not evaluate during training")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: train CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--seed N] [--deterministic] [--resume-from CKPT] [--auto-resume] [--no-validate]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(cli.ExpandArgs(args)); err != nil {
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
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		return fmt.Errorf("config %s: %w", fs.Arg(0), err)
	}
	return runners.Train(ctx, cfg, alg, runners.TrainOptions{
		WorkDir: workDir, Seed: uint64(rf.Seed), Seeded: rf.Seeded, Deterministic: rf.Deterministic,
		ResumeFrom: rf.ResumeFrom, AutoResume: rf.AutoResume, NoValidate: *noValidate, Out: stdout,
	})
}
