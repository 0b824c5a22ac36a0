package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/razorgo/razor/runners/logplot"
)

const analyzeUsage = `usage: analyze_logs plot_curve LOG.json [LOG.json ...] [--keys K ...] [--legend L ...] [--title T] [--out FILE.png]
       analyze_logs cal_train_time LOG.json [LOG.json ...] [--include-outliers]`

// AnalyzeLogs is tools/analyze_logs, mmdet's analyze_logs.py for razor's
// *.log.json files: plot_curve draws the logged numbers against the
// iteration (every training loss and validation metric unless --keys
// names some), one panel a key and one curve a log; cal_train_time prints
// each log's mean step time and its slowest and fastest epochs.
func AnalyzeLogs(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprintln(stdout, analyzeUsage)
		return nil
	}
	if len(args) == 0 || (args[0] != "plot_curve" && args[0] != "cal_train_time") {
		fmt.Fprintln(stderr, analyzeUsage)
		if len(args) == 0 {
			return errors.New("name a task: plot_curve or cal_train_time")
		}
		return fmt.Errorf("unknown task %q; the tasks are plot_curve and cal_train_time", args[0])
	}
	task := args[0]
	fs := pflag.NewFlagSet("analyze_logs "+task, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, analyzeUsage); fs.PrintDefaults() }
	keys := fs.StringSlice("keys", nil, "plot_curve: the logged numbers to draw, such as loss_cls,bbox_mAP (default: every training loss and validation metric)")
	legend := fs.StringSlice("legend", nil, "plot_curve: a name for each log's curves (default: the file names)")
	title := fs.String("title", "", "plot_curve: the figure's title")
	out := fs.String("out", "curves.png", "plot_curve: the PNG to write")
	outliers := fs.Bool("include-outliers", false, "cal_train_time: keep each epoch's first logged interval, which holds the data loader's start")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("give at least one *.log.json file")
	}
	var logs []*logplot.Log
	for _, p := range fs.Args() {
		l, err := logplot.Read(p)
		if err != nil {
			return err
		}
		logs = append(logs, l)
	}
	if task == "cal_train_time" {
		for _, l := range logs {
			tt, err := logplot.CalTrainTime(l, *outliers)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "-----Analyze train time of %s-----\n", l.Path)
			if l.EpochLen > 0 {
				fmt.Fprintf(stdout, "slowest epoch %d, average time is %.4f\n", tt.Slowest, tt.SlowestTime)
				fmt.Fprintf(stdout, "fastest epoch %d, average time is %.4f\n", tt.Fastest, tt.FastestTime)
				fmt.Fprintf(stdout, "time std over epochs is %.4f\n", tt.EpochStd)
			}
			fmt.Fprintf(stdout, "average iter time: %.4f s/iter\n", tt.MeanIter)
		}
		return nil
	}
	if err := logplot.PlotCurves(logs, logplot.PlotOptions{Keys: *keys, Legend: *legend, Title: *title}, *out); err != nil {
		return err
	}
	abs, _ := filepath.Abs(*out)
	fmt.Fprintf(stdout, "wrote %s\n", abs)
	return nil
}
