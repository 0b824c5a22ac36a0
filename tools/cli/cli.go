// Package cli holds the command-line flags every razor tool shares and the
// tools' entry points -- Train, Search, Test and Pipeline, with Main to run
// one as a program -- so that tools/train, tools/search, tools/test,
// tools/pipeline and the mains contributors build beside them all read
// configs, overrides and work dirs the same way. The pipeline engine is
// runners/pipeline; PipelineTools hands it the built-in tools.
package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/internal/worklock"
)

// ConfigFlags select a config and its overrides.
type ConfigFlags struct {
	// CfgOptions are the KEY=VALUE pairs of every --cfg-options flag, in order.
	CfgOptions []string
	// StrictOverrides refuses an override of a key no config file sets.
	StrictOverrides bool
}

// Register adds --cfg-options and --strict-overrides to fs.
func (c *ConfigFlags) Register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&c.CfgOptions, "cfg-options", nil,
		"override config keys: KEY=VALUE pairs, several per flag and the flag may repeat (a.b.1.c=2, a.b[1].c=2, lists as [1,2] or 1,2, quoted strings keep spaces)")
	fs.BoolVar(&c.StrictOverrides, "strict-overrides", false,
		"refuse an override of a key that no config file sets, instead of warning and creating it")
}

// Load reads the config file with the overrides, printing the loader's
// warnings to warn (stderr in the tools).
func (c *ConfigFlags) Load(path string, warn io.Writer) (*config.Config, error) {
	cfg, err := config.Load(path, config.Options{Overrides: c.CfgOptions, Strict: c.StrictOverrides})
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(warn, "warning:", w)
	}
	return cfg, nil
}

// RunFlags are the flags of tools that run an experiment (train, search).
type RunFlags struct {
	ConfigFlags
	// WorkDir overrides the config's work_dir.
	WorkDir string
	// Seed seeds every random source; Seeded reports whether it was given.
	Seed   int64
	Seeded bool
	// Deterministic asks for bit-identical runs with the same seed.
	Deterministic bool
	// ResumeFrom is a checkpoint to resume (weights, optimizer, iteration).
	ResumeFrom string
	// AutoResume resumes from the work dir's latest checkpoint when there is one.
	AutoResume bool
	// Launcher is the job launcher: none (one process) or mpi (one rank of
	// an mpirun or srun job; builds with -tags mpi).
	Launcher string

	fs *pflag.FlagSet
}

// Register adds the run flags (and the config flags) to fs.
func (r *RunFlags) Register(fs *pflag.FlagSet) {
	r.ConfigFlags.Register(fs)
	r.fs = fs
	fs.StringVar(&r.WorkDir, "work-dir", "", "directory for logs, checkpoints and outputs (default: the config's work_dir, else ./work_dirs/<config name>)")
	fs.Int64Var(&r.Seed, "seed", 0, "random seed for sampling, data order and initialisation")
	fs.BoolVar(&r.Deterministic, "deterministic", false, "make runs with the same seed produce identical results")
	fs.StringVar(&r.ResumeFrom, "resume-from", "", "checkpoint to resume from (weights, optimizer state, iteration)")
	fs.BoolVar(&r.AutoResume, "auto-resume", false, "resume from the latest checkpoint in the work dir, if any")
	fs.StringVar(&r.Launcher, "launcher", "none", "job launcher: none (one process) or mpi (data-parallel, one rank of `mpirun -np N`; needs a build with -tags mpi)")
}

// Validate checks the flag values after parsing.
func (r *RunFlags) Validate() error {
	if r.fs != nil {
		r.Seeded = r.fs.Changed("seed")
	}
	if err := dist.CheckLauncher(r.Launcher); err != nil {
		return err
	}
	if r.ResumeFrom != "" {
		if _, err := os.Stat(r.ResumeFrom); err != nil {
			return fmt.Errorf("--resume-from %s: %w", r.ResumeFrom, UnwrapPathError(err))
		}
	}
	return nil
}

// Start joins the job --launcher names (see Launch) and, on rank 0 (the
// only rank of a single process), takes the work dir's lock for the tool
// `what`. end(runErr) releases both.
func (r *RunFlags) Start(workDir, what string, stderr io.Writer) (end func(runErr error), err error) {
	comm, done, err := Launch(r.Launcher, what, stderr)
	if err != nil {
		return nil, err
	}
	var lock *worklock.Lock
	if comm.Rank() == 0 {
		if lock, err = worklock.Acquire(workDir, what); err != nil {
			done(err)
			return nil, err
		}
	}
	return func(runErr error) {
		lock.Release()
		done(runErr)
	}, nil
}

// Launch joins the job a --launcher value names (dist.Launch) and returns
// its communicator and the function that ends it: a rank of a job that
// ends with an error prints it to stderr and aborts the whole job
// (MPI_Abort) rather than finalizing, which would wait for ranks that are
// waiting for it.
func Launch(launcher, what string, stderr io.Writer) (dist.Comm, func(runErr error), error) {
	comm, err := dist.Launch(launcher)
	if err != nil {
		return nil, nil, err
	}
	return comm, func(runErr error) {
		if runErr != nil && comm.Size() > 1 {
			fmt.Fprintf(stderr, "%s: rank %d of %d: %v\n", what, comm.Rank(), comm.Size(), runErr)
			comm.Abort(1)
		}
		comm.Close()
	}, nil
}

// ResolveWorkDir picks the work dir as config.Config.WorkDir does, the
// --work-dir flag first, and stores the choice in the config's work_dir.
func (r *RunFlags) ResolveWorkDir(cfg *config.Config) (string, error) {
	dir, err := cfg.WorkDir(r.WorkDir)
	if err != nil {
		return "", err
	}
	if err := cfg.Set("work_dir", dir); err != nil {
		return "", err
	}
	return dir, nil
}

// ExpandArgs rewrites mmcv-style `--cfg-options a=1 b=2` (several pairs after
// one flag) into one `--cfg-options=PAIR` per pair, which pflag reads. A
// following argument counts as a pair when it does not start with "-" and
// contains "=".
func ExpandArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if a != "--cfg-options" && !strings.HasPrefix(a, "--cfg-options=") {
			out = append(out, a)
			continue
		}
		if a == "--cfg-options" {
			if i+1 >= len(args) {
				out = append(out, a)
				continue
			}
			i++
			out = append(out, "--cfg-options="+args[i])
		} else {
			out = append(out, a)
		}
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && strings.Contains(args[i+1], "=") {
			i++
			out = append(out, "--cfg-options="+args[i])
		}
	}
	return out
}
