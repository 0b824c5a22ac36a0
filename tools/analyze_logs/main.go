// Command analyze_logs reads the *.log.json files training writes, as
// mmdet's tools/analysis_tools/analyze_logs.py does:
//
//	analyze_logs plot_curve LOG.json [LOG.json ...] [--keys K ...] [--legend L ...] [--title T] [--out FILE.png]
//	analyze_logs cal_train_time LOG.json [LOG.json ...] [--include-outliers]
//
// plot_curve draws the logged losses and metrics against the iteration,
// one panel a key, one curve a log; cal_train_time prints the mean step
// time and the slowest and fastest epochs.
package main

import "github.com/razorgo/razor/tools/cli"

func main() { cli.Main("analyze_logs", cli.AnalyzeLogs) }
