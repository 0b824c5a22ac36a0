package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

// Main runs a long-running tool as its command: the soft memory limit (see
// LimitMemory), a context cancelled by Ctrl-C or SIGTERM, the arguments
// after the program name, and on error one line "name: error" and exit
// status 1.
func Main(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	LimitMemory()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if code := ExitCode(name, err, os.Stderr); code != 0 {
		os.Exit(code)
	}
}

// ExitCode is a command's exit status for the error its run returned: 0
// for none and for -h/--help (the flag set has printed the usage), else 1
// after the one line "name: error" on stderr.
func ExitCode(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, name+":", err)
	return 1
}
