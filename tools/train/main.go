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
	"os"
	"os/signal"
	"syscall"

	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/tools/cli"
)

func main() {
	cli.LimitMemory()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli.Train(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}
