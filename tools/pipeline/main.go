// Command pipeline runs a declarative multi-step experiment -- for SPOS:
// train the supernet, search it, retrain the best subnet, test it -- as
// its config lists the steps, and ends with a results table.
//
//	pipeline CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...] [--dry-run]
//
// Each step runs in <work_dir>/<step name>. A finished step (done.json in
// its work dir) is skipped when the pipeline runs again; an interrupted one
// resumes from its latest checkpoint. Steps refer to earlier steps' outputs
// with $(steps.NAME.OUTPUT): train gives checkpoint and best_checkpoint,
// search gives best_subnet and report, test gives metrics, and every step
// gives work_dir. The results go to <work_dir>/results.md and results.json.
//
// --cfg-options edits the pipeline config: cfg_options.KEY=VALUE reaches
// every step's config, steps.N.cfg_options.KEY=VALUE the step at index N
// (from 0), and a top-level variable such as seed=1 every place that reads
// it with ${ seed }. A finished or interrupted step whose command line has
// changed since is refused, naming the argument, rather than skipped or
// resumed with the wrong inputs.
package main

import (
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/tools/cli"
)

func main() { cli.Main("pipeline", cli.Pipeline) }
