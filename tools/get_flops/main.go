// Command get_flops counts the FLOPs and parameters of a config's model
// the way mmcv's get_model_complexity_info does, over the scope the
// config's algorithm uses (SPOS: the whole model; DetNAS: the backbone
// without its last layer, BN not counted).
//
//	get_flops CONFIG [--shape H W] [--scope algorithm|backbone|model] [--cfg-options KEY=VALUE ...] [--per-layer] [--json]
//
// --scope model counts the whole model whatever the algorithm's scope (a
// detector at mmdet's 1280x800 test shape, say), --scope backbone DetNAS's.
//
// A subnet config (algorithm.mutable_cfg) counts its subnet; a supernet
// config without one counts the whole supernet, every candidate op of
// every block, and says so. Select a subnet for any config with
// --cfg-options algorithm.mutable_cfg=SUBNET.yaml.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/models/nn"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/tools/cli"

	_ "github.com/razorgo/razor/all"
)

const usage = "usage: get_flops CONFIG [--shape H W] [--scope algorithm|backbone|model] [--cfg-options KEY=VALUE ...] [--per-layer] [--json]"

func main() {
	os.Exit(cli.ExitCode("get_flops", run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// scoped is an algorithm that counts over a scope other than its own (every
// algorithm built on algorithms.OneShotBase).
type scoped interface {
	ComplexityIn(scope algorithms.Scope, sub mutables.Subnet, shape []int) (*algorithms.Complexity, error)
}

// report is the --json output.
type report struct {
	FLOPs    int64   `json:"flops"`
	Params   int64   `json:"params"`
	Scope    string  `json:"scope"`
	Shape    []int   `json:"shape"`
	Supernet bool    `json:"supernet"`
	Layers   []layer `json:"layers,omitempty"`
}

type layer struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	FLOPs  int64  `json:"flops"`
	Params int64  `json:"params"`
}

func run(args []string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error while counting: %v", r)
		}
	}()
	fs := pflag.NewFlagSet("get_flops", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var cf cli.ConfigFlags
	cf.Register(fs)
	shape := fs.IntSlice("shape", nil, "input height and width (one value for a square); default: the algorithm's input_shape, 224 224")
	perLayer := fs.Bool("per-layer", false, "list every counted layer with its FLOPs and parameters")
	scope := fs.String("scope", "algorithm", "what to count: algorithm (the algorithm's own scope: DetNAS the backbone without BN, SPOS the whole model), backbone (DetNAS's scope for any config) or model (the whole model, a detector's second stage on 1000 proposals)")
	asJSON := fs.Bool("json", false, `print {"flops", "params", "scope", "shape", "supernet"} as JSON`)
	args, err = expandShape(cli.ExpandArgs(args))
	if err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil
		}
		return fmt.Errorf("%w (%s)", err, usage)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("expected one CONFIG file, got %d arguments (%s)", fs.NArg(), usage)
	}
	cfg, err := cf.Load(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	built, err := algorithms.FromConfig(cfg)
	if err != nil {
		return err
	}
	alg, err := algorithms.AsOneShot(built, "counting FLOPs")
	if err != nil {
		return err
	}
	var in []int
	if len(*shape) > 0 {
		if in, err = inputShape(alg, *shape); err != nil {
			return err
		}
	}
	var c *algorithms.Complexity
	switch *scope {
	case "algorithm":
		c, err = alg.Complexity(nil, in)
	case "backbone", "model":
		sc, ok := alg.(scoped)
		if !ok {
			return fmt.Errorf("--scope %s: the algorithm %T counts only its own scope; use --scope algorithm", *scope, alg)
		}
		c, err = sc.ComplexityIn(algorithms.Scope{BackboneOnly: *scope == "backbone"}, nil, in)
	default:
		return fmt.Errorf("--scope %q is not a scope; use algorithm, backbone or model", *scope)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		r := report{FLOPs: c.FLOPs, Params: c.Params, Scope: c.Scope, Shape: c.Shape, Supernet: c.Supernet}
		if *perLayer {
			for _, l := range c.Layers {
				r.Layers = append(r.Layers, layer{l.Path, l.Type, l.FLOPs, l.Params})
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	if *perLayer {
		printLayers(stdout, c.Layers, c.FLOPs)
	}
	printSummary(stdout, c, alg)
	return nil
}

// expandShape rewrites mmcv's `--shape H W` (one or two values after the
// flag) into `--shape=H,W`, which pflag reads.
func expandShape(args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			return append(out, args[i:]...), nil
		}
		if args[i] != "--shape" {
			out = append(out, args[i])
			continue
		}
		var vals []string
		for len(vals) < 2 && i+1 < len(args) {
			if _, err := strconv.Atoi(args[i+1]); err != nil {
				break
			}
			i++
			vals = append(vals, args[i])
		}
		if len(vals) == 0 {
			return nil, fmt.Errorf("--shape needs the input height and width, such as --shape 224 224")
		}
		out = append(out, "--shape="+strings.Join(vals, ","))
	}
	return out, nil
}

// inputShape turns --shape H W (or S) into (C, H, W) with the algorithm's
// channels.
func inputShape(alg algorithms.Algorithm, hw []int) ([]int, error) {
	if len(hw) == 1 {
		hw = []int{hw[0], hw[0]}
	}
	if len(hw) != 2 || hw[0] <= 0 || hw[1] <= 0 {
		return nil, fmt.Errorf("--shape %v must be a positive height and width (or one size for a square)", hw)
	}
	channels := 3
	if s, ok := alg.(interface{ InputShape() []int }); ok {
		channels = s.InputShape()[0]
	}
	shape := []int{channels, hw[0], hw[1]}
	if err := algorithms.CheckInputSize(shape, "--shape"); err != nil {
		return nil, err
	}
	return shape, nil
}

// flopsString is mmcv's flops_to_string in its default unit, GFLOPs.
func flopsString(f int64) string {
	return pyRound(float64(f)/1e9) + " GFLOPs"
}

// paramsString is mmcv's params_to_string: M, k or the plain count.
func paramsString(p int64) string {
	switch {
	case p >= 1e6:
		return pyRound(float64(p)/1e6) + " M"
	case p >= 1e3:
		return pyRound(float64(p)/1e3) + " k"
	}
	return strconv.FormatInt(p, 10)
}

// pyRound prints str(round(x, 2)) as Python does: x's exact binary value
// rounded to two decimals, printed without trailing zeros but with at
// least one decimal.
func pyRound(x float64) string {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 2, 64), 64)
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func printSummary(w io.Writer, c *algorithms.Complexity, alg algorithms.OneShot) {
	line := strings.Repeat("=", 30)
	fmt.Fprintln(w, line)
	fmt.Fprintf(w, "Input shape: (%d, %d, %d)\n", c.Shape[0], c.Shape[1], c.Shape[2])
	fmt.Fprintf(w, "Scope: %s\n", c.Scope)
	switch {
	case c.Supernet:
		fmt.Fprintf(w, "Model: the whole supernet, every candidate op of all %d searchable blocks (no subnet is set)\n", len(alg.Space().Blocks))
	case alg.Subnet() != nil && alg.Retraining():
		fmt.Fprintln(w, "Model: the subnet of algorithm.mutable_cfg (retraining: only its ops exist)")
	case alg.Subnet() != nil:
		fmt.Fprintln(w, "Model: the subnet of algorithm.mutable_cfg, on the supernet")
	}
	fmt.Fprintf(w, "Flops: %s (%d)\n", flopsString(c.FLOPs), c.FLOPs)
	fmt.Fprintf(w, "Params: %s (%d)\n", paramsString(c.Params), c.Params)
	fmt.Fprintln(w, line)
	if c.Supernet {
		fmt.Fprintln(w, "Note: these numbers are for the whole supernet, not for any one subnet. To count a subnet, pass --cfg-options algorithm.mutable_cfg=SUBNET.yaml (a subnet file the search wrote).")
	}
}

func printLayers(w io.Writer, layers []nn.Cost, total int64) {
	width := len("layer")
	for _, l := range layers {
		width = max(width, len(l.Path))
	}
	fmt.Fprintf(w, "%-*s  %-17s  %12s  %7s  %9s\n", width, "layer", "type", "FLOPs", "share", "params")
	for _, l := range layers {
		share := 0.0
		if total > 0 {
			share = 100 * float64(l.FLOPs) / float64(total)
		}
		fmt.Fprintf(w, "%-*s  %-17s  %12d  %6.2f%%  %9d\n", width, l.Path, l.Type, l.FLOPs, share, l.Params)
	}
}
