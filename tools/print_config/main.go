// Command print_config prints a config with its bases merged, overrides
// applied and expressions evaluated, as YAML.
//
//	print_config CONFIG [--cfg-options KEY=VALUE ...] [--provenance] [--raw]
//
// With --provenance every value carries a comment naming the file and line,
// or the --cfg-options pair, that set it.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/tools/cli"
)

func main() {
	os.Exit(cli.ExitCode("print_config", run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("print_config", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf cli.ConfigFlags
	cf.Register(fs)
	provenance := fs.Bool("provenance", false, "show, for every value, the file and line or the override that set it")
	raw := fs.Bool("raw", false, "leave ${ expr } values unevaluated")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: print_config CONFIG [--cfg-options KEY=VALUE ...] [--provenance] [--raw]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(cli.ExpandArgs(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("expected one CONFIG file, got %d arguments", fs.NArg())
	}
	cfg, err := config.Load(fs.Arg(0), config.Options{Overrides: cf.CfgOptions, Strict: cf.StrictOverrides, NoExpressions: *raw})
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	out, err := cfg.YAML(*provenance)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
