// Command search runs an architecture search on a trained supernet, as
// mmrazor's tools/search.py does: the config's searcher (EvolutionSearcher)
// scores subnets of the CHECKPOINT's supernet and writes the best one.
//
//	search CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options KEY=VALUE ...]
//	       [--seed N] [--deterministic] [--resume-from STATE] [--auto-resume]
//
// In the work dir (the --work-dir flag, else the config's work_dir, else
// ./work_dirs/<config name>) it writes:
//
//   - best_subnet.yaml and final_subnet_<YYYYmmdd_HHMM>.yaml: the best
//     subnet in mmrazor's mutable_cfg format, for a subnet config's
//     algorithm.mutable_cfg;
//   - search_report.json: the best subnet's score, flops and params, the
//     final top-k, and the scores of searcher.random_baseline random subnets
//     under the same constraint (mean, std, min, max);
//   - search_candidates.jsonl: every evaluated subnet with its flops,
//     params, score, epoch and origin;
//   - search_scores.png: score against FLOPs, each epoch's top-k marked;
//   - search_state.json: the state to --resume-from (or --auto-resume)
//     after a kill, rewritten after every candidate;
//   - the merged config and the text log.
//
// As a command it may import any razor package; nothing imports it.
package main

import (
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/tools/cli"
)

func main() { cli.Main("search", cli.Search) }
