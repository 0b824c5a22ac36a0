// Command train is tools/train with the contrib package's components
// registered beside razor's built-ins: a contributor's own main.
package main

import (
	_ "github.com/razorgo/razor/all"
	_ "github.com/razorgo/razor/examples/contrib"
	"github.com/razorgo/razor/tools/cli"
)

func main() { cli.Main("train", cli.Train) }
