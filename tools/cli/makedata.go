package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/datasets"
)

// MakeMNISTDet is tools/make_mnist_det: it writes the digits detection set
// (datasets.GenerateMNISTDet) under --out. The pipeline runs it as its
// make_mnist_det tool, a step with no config.
func MakeMNISTDet(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("make_mnist_det", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	o := datasets.DefaultMNISTDetOptions()
	out := fs.String("out", "", "output folder (required)")
	mnist := fs.String("mnist", "", "folder with the MNIST idx files (default: the GoMNIST module's data/ in the Go module cache)")
	fs.IntVar(&o.Train, "train", o.Train, "number of training images")
	fs.IntVar(&o.Val, "val", o.Val, "number of validation images")
	fs.IntVar(&o.Search, "search", o.Search, "number of held-out images made from training digits, for scoring subnets in a search (annotations/instances_search.json)")
	fs.IntVar(&o.Size, "size", o.Size, "canvas side in pixels (256 gives small, medium and large COCO boxes)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "random seed; the same seed gives the same files")
	fs.IntVar(&o.MaxDigits, "max-digits", o.MaxDigits, "most digits per image")
	fs.IntVar(&o.MaxFragments, "max-fragments", o.MaxFragments, "most unannotated digit fragments per image")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: make_mnist_det --out DIR [--train N] [--val M] [--search K] [--size S] [--seed K] [--mnist DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("--out is required and no positional arguments are accepted")
	}
	dir := *mnist
	if dir == "" {
		d, err := datasets.MNISTDir()
		if err != nil {
			return err
		}
		dir = d
	}
	var train, val *datasets.Digits
	var err error
	if o.Train+o.Search > 0 {
		if train, err = datasets.ReadDigits(dir, false); err != nil {
			return err
		}
	}
	if o.Val > 0 {
		if val, err = datasets.ReadDigits(dir, true); err != nil {
			return err
		}
	}
	if err := datasets.GenerateMNISTDet(*out, train, val, o); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d training, %d validation and %d held-out search images of %dx%d to %s (seed %d)\n", o.Train, o.Val, o.Search, o.Size, o.Size, *out, o.Seed)
	return nil
}
