// Command test evaluates a trained checkpoint on the config's test split,
// as mmrazor's tools/test.py does.
//
//	test CONFIG CHECKPOINT [--metrics accuracy] [--out FILE] [--cfg-options KEY=VALUE ...]
//
// A supernet config without a subnet is scored over evaluation.num_subnets
// fixed, seeded subnets (mean and spread); pass
// --cfg-options algorithm.mutable_cfg=SUBNET.yaml to test one subnet.
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
	if err := cli.Test(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "test:", err)
		os.Exit(1)
	}
}
