// Command test evaluates a trained checkpoint on the config's test split,
// as mmrazor's tools/test.py does.
//
//	test CONFIG CHECKPOINT [--metrics accuracy] [--out FILE] [--cfg-options KEY=VALUE ...]
//
// A supernet config without a subnet is scored over evaluation.num_subnets
// fixed, seeded subnets (mean and spread); pass
// --cfg-options algorithm.mutable_cfg=SUBNET.yaml to test one subnet.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/tools/cli"
)

func main() { cli.Main("test", cli.Test) }
