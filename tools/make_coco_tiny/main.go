// Command make_coco_tiny generates a small COCO-format detection set in
// COCO 2017's layout, with the real 80 categories and their ids, so the
// COCO configs run end to end without downloading COCO:
//
//	make_coco_tiny --out DIR [--train N] [--val M] [--min-side A] [--max-side B] [--max-boxes K] [--seed S]
//
// It writes DIR/train2017/*.jpg, DIR/val2017/*.jpg and
// DIR/annotations/instances_{train,val}2017.json: images of random size
// (landscape and portrait) with a few flat-coloured rectangles, one colour
// per category, some of them crowd regions. The same flags give the same
// bytes. Point a COCO config at it with
// `--cfg-options data_root=DIR/`.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	"github.com/razorgo/razor/tools/cli"

	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/datasets"
)

func main() {
	os.Exit(cli.ExitCode("make_coco_tiny", run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

const usage = "usage: make_coco_tiny --out DIR [--train N] [--val M] [--min-side A] [--max-side B] [--max-boxes K] [--seed S]"

func run(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("make_coco_tiny", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o := datasets.DefaultCocoTinyOptions()
	out := fs.String("out", "", "output folder (required)")
	fs.IntVar(&o.Train, "train", o.Train, "number of training images")
	fs.IntVar(&o.Val, "val", o.Val, "number of validation images")
	fs.IntVar(&o.MinSide, "min-side", o.MinSide, "smallest image width or height in pixels")
	fs.IntVar(&o.MaxSide, "max-side", o.MaxSide, "largest image width or height in pixels")
	fs.IntVar(&o.MaxBoxes, "max-boxes", o.MaxBoxes, "most objects per image")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "random seed; the same seed gives the same files")
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("--out is required and no positional arguments are accepted")
	}
	if err := datasets.GenerateCocoTiny(*out, o); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d training and %d validation images (%d to %d pixels a side, 80 COCO categories) to %s (seed %d)\n",
		o.Train, o.Val, o.MinSide, o.MaxSide, *out, o.Seed)
	return nil
}
