// Command train trains an algorithm (a SPOS/DetNAS supernet, or a fixed
// subnet with retraining) as its config describes, as mmrazor's
// tools/train.py does.
//
//	train CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--seed N]
//	      [--deterministic] [--resume-from CKPT] [--auto-resume] [--no-validate]
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/tools/cli"
)

func main() { cli.Main("train", cli.Train) }
