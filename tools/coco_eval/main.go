// Command coco_eval scores COCO-format detection results against COCO
// ground truth and prints pycocotools' 12 bbox summary lines.
//
// Usage:
//
//	coco_eval [--json] GT.json RESULTS.json
//
// GT.json is a COCO instances file; RESULTS.json is a list of
// {"image_id", "category_id", "bbox": [x, y, w, h], "score"}. With --json
// the 12 numbers are printed instead as one JSON object, named as mmdet
// names them (bbox_mAP, bbox_mAP_50, ..., bbox_AR_l@100). Bad input stops
// it with one line on stderr and exit status 1.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/razorgo/razor/datasets/metrics"
	"github.com/spf13/pflag"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = "usage: coco_eval [--json] GT.json RESULTS.json"

// run is the whole command, returning its exit status, so tests can drive it.
func run(args []string, stdout, stderr io.Writer) int {
	flags := pflag.NewFlagSet("coco_eval", pflag.ContinueOnError)
	flags.SetOutput(io.Discard)
	asJSON := flags.Bool("json", false, "print the 12 numbers as one JSON object instead of the summary lines")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(stdout, "%s\n\nFlags:\n%s", usage, flags.FlagUsages())
			return 0
		}
		fmt.Fprintf(stderr, "coco_eval: %v; %s\n", err, usage)
		return 1
	}
	if flags.NArg() != 2 {
		fmt.Fprintf(stderr, "coco_eval: got %d file arguments, want 2; %s\n", flags.NArg(), usage)
		return 1
	}
	ev, err := evaluate(flags.Arg(0), flags.Arg(1))
	if err != nil {
		fmt.Fprintf(stderr, "coco_eval: %v\n", err)
		return 1
	}
	if !*asJSON {
		fmt.Fprint(stdout, ev.Summary())
		return 0
	}
	out, err := json.Marshal(namedStats(ev.Stats(), metrics.DefaultParams().MaxDets))
	if err != nil {
		fmt.Fprintf(stderr, "coco_eval: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}

func evaluate(gtPath, resultsPath string) (*metrics.Eval, error) {
	gt, err := metrics.LoadCOCOGT(gtPath)
	if err != nil {
		return nil, err
	}
	dets, err := metrics.LoadResults(resultsPath, gt)
	if err != nil {
		return nil, err
	}
	return metrics.EvaluateBBox(gt, dets, metrics.DefaultParams())
}

// statNames are mmdet's names for pycocotools' 12 numbers, in order. mmdet
// writes the recall ones with its proposal limits (AR@100, AR@300,
// AR@1000); here they carry the limits actually used.
func statNames(maxDets [3]int) [12]string {
	return [12]string{
		"bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l",
		fmt.Sprintf("bbox_AR@%d", maxDets[0]), fmt.Sprintf("bbox_AR@%d", maxDets[1]), fmt.Sprintf("bbox_AR@%d", maxDets[2]),
		fmt.Sprintf("bbox_AR_s@%d", maxDets[2]), fmt.Sprintf("bbox_AR_m@%d", maxDets[2]), fmt.Sprintf("bbox_AR_l@%d", maxDets[2]),
	}
}

// orderedStats marshals as a JSON object whose keys keep pycocotools' order.
type orderedStats struct {
	names  [12]string
	values [12]float64
}

func namedStats(values [12]float64, maxDets [3]int) orderedStats {
	return orderedStats{names: statNames(maxDets), values: values}
}

// MarshalJSON writes {"bbox_mAP": v, ...} in stats order; a map would sort
// the keys and lose the order readers know from pycocotools' printout.
func (s orderedStats) MarshalJSON() ([]byte, error) {
	out := []byte{'{'}
	for i, name := range s.names {
		if i > 0 {
			out = append(out, ',')
		}
		key, err := json.Marshal(name)
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(s.values[i])
		if err != nil {
			return nil, err
		}
		out = append(append(append(out, key...), ':'), value...)
	}
	return append(out, '}'), nil
}
