// Package logplot reads the JSON logs razor's runners write (one object a
// line, as mmcv's TextLoggerHook writes *.log.json) and draws their curves
// or sums up their step times, as mmdet's tools/analysis_tools/analyze_logs.py
// does with plot_curve and cal_train_time.
package logplot

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/razorgo/razor/config"
)

// Entry is one line of a log: mode (train or val), epoch, iter (within the
// epoch for an epoch-based runner, from the start for an iteration-based
// one) and the numbers logged.
type Entry struct {
	Mode        string
	Epoch, Iter int
	Values      map[string]float64
}

// Log is one log file's entries.
type Log struct {
	Path    string
	Entries []Entry
	// EpochLen is the iterations of an epoch for an epoch-based run (the
	// last iter logged in epoch 1, a validation line's at the epoch's
	// end), 0 for an iteration-based one, whose iter counts from the start.
	EpochLen int
}

// errNoEntries is Read's error for a log without a train or val line.
var errNoEntries = errors.New("holds no log lines with a mode (train or val); give the *.log.json a training run wrote")

// Read reads a JSON log. A line that is not a JSON object, or whose mode,
// epoch or iter is missing, is an error naming the file and line; lines
// without mode (mmcv's env_info header) are skipped.
func Read(path string) (*Log, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	l := &Log{Path: path}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(line, &obj); err != nil {
			return nil, fmt.Errorf("%s:%d: not a JSON log line (%v); give the *.log.json a training run wrote", path, n, err)
		}
		mode, ok := obj["mode"].(string)
		if !ok {
			continue
		}
		e := Entry{Mode: mode, Values: map[string]float64{}}
		ep, ok1 := obj["epoch"].(float64)
		it, ok2 := obj["iter"].(float64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s:%d: a %s line without epoch and iter", path, n, mode)
		}
		e.Epoch, e.Iter = int(ep), int(it)
		for k, v := range obj {
			if f, ok := v.(float64); ok && k != "epoch" && k != "iter" {
				e.Values[k] = f
			}
		}
		l.Entries = append(l.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(l.Entries) == 0 {
		return nil, fmt.Errorf("%s %w", path, errNoEntries)
	}
	// An epoch-based runner starts iter again each epoch; an
	// iteration-based one counts on across data epochs.
	reset, prev := false, 0
	for _, e := range l.Entries {
		if e.Mode == "train" {
			reset = reset || e.Iter < prev
			prev = e.Iter
		}
	}
	if reset {
		for _, e := range l.Entries {
			if e.Epoch == 1 && e.Mode == "train" {
				l.EpochLen = max(l.EpochLen, e.Iter)
			}
		}
	}
	return l, nil
}

// X is an entry's place on the iteration axis: iterations since the start.
func (l *Log) X(e Entry) float64 {
	switch {
	case l.EpochLen == 0:
		return float64(e.Iter)
	case e.Mode == "val":
		// Evaluation follows its epoch; its iter field is the epoch's last
		// (mmcv) or the run's count (razor), so it is not read.
		return float64(e.Epoch * l.EpochLen)
	}
	return float64((e.Epoch-1)*l.EpochLen + e.Iter)
}

// Keys lists the numbers logged, training ones then validation ones, each
// in name order, leaving out bookkeeping (lr, time, data_time, memory).
func (l *Log) Keys() (train, val []string) {
	seen := map[string]bool{}
	for _, e := range l.Entries {
		for k := range e.Values {
			id := e.Mode + "/" + k
			if seen[id] || skipKey(k) {
				continue
			}
			seen[id] = true
			if e.Mode == "val" {
				val = append(val, k)
			} else {
				train = append(train, k)
			}
		}
	}
	sort.Strings(train)
	sort.Strings(val)
	return train, val
}

func skipKey(k string) bool {
	switch k {
	case "lr", "time", "data_time", "memory", "num_subnets":
		return true
	}
	return strings.HasSuffix(k, "_std")
}

// Series is one key's points of one log, in log order.
func (l *Log) Series(key string) (xys plotter.XYs, mode string) {
	for _, e := range l.Entries {
		if v, ok := e.Values[key]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			xys = append(xys, plotter.XY{X: l.X(e), Y: v})
			mode = e.Mode
		}
	}
	return xys, mode
}

// palette colours one curve per log.
var palette = []color.RGBA{
	{R: 31, G: 119, B: 180, A: 255}, {R: 255, G: 127, B: 14, A: 255}, {R: 44, G: 160, B: 44, A: 255},
	{R: 214, G: 39, B: 40, A: 255}, {R: 148, G: 103, B: 189, A: 255}, {R: 140, G: 86, B: 75, A: 255},
}

// mainMetrics are the validation keys drawn by default: the ones a run is
// judged by (bbox_mAP, as mmdet's plot_curve defaults to; accuracy_top-1),
// else all of them.
func mainMetrics(val []string) []string {
	var out []string
	for _, k := range val {
		if k == "bbox_mAP" || k == "accuracy_top-1" {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return val
	}
	return out
}

// PlotOptions shape PlotCurves' figure.
type PlotOptions struct {
	// Keys are the numbers to draw, one panel each; empty: every training
	// number the first log holds (losses, accuracies) and its main
	// validation metric (bbox_mAP, accuracy_top-1; else every one).
	Keys []string
	// Legend names each log's curves; empty: the file names.
	Legend []string
	// Title heads the figure.
	Title string
}

// PlotCurves draws each key against the iteration, one panel a key
// stacked top to bottom, one curve a log (validation metrics as points
// joined by lines), and writes the PNG to out atomically.
func PlotCurves(logs []*Log, o PlotOptions, out string) error {
	if len(logs) == 0 {
		return fmt.Errorf("no logs to plot")
	}
	if len(o.Legend) != 0 && len(o.Legend) != len(logs) {
		return fmt.Errorf("--legend names %d curves for %d logs; give one name a log", len(o.Legend), len(logs))
	}
	keys := o.Keys
	if len(keys) == 0 {
		train, val := logs[0].Keys()
		keys = append(train, mainMetrics(val)...)
	}
	// Every panel spans the runs' iterations, so a metric logged once
	// lines up with the losses above it.
	var xMax float64
	for _, l := range logs {
		for _, e := range l.Entries {
			xMax = math.Max(xMax, l.X(e))
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("%s logs no numbers to plot", logs[0].Path)
	}
	var panels []*plot.Plot
	for _, k := range keys {
		p := plot.New()
		p.Y.Label.Text = k
		p.X.Label.Text = "iteration"
		p.X.Min, p.X.Max = 0, math.Max(xMax, 1)
		p.Add(plotter.NewGrid())
		found, metric := false, false
		for i, l := range logs {
			xys, mode := l.Series(k)
			metric = metric || mode == "val"
			if len(xys) == 0 {
				continue
			}
			found = true
			line, err := plotter.NewLine(xys)
			if err != nil {
				return fmt.Errorf("plotting %s of %s: %w", k, l.Path, err)
			}
			line.LineStyle.Color = palette[i%len(palette)]
			line.LineStyle.Width = vg.Points(1)
			p.Add(line)
			if mode == "val" {
				pts, err := plotter.NewScatter(xys)
				if err != nil {
					return err
				}
				pts.GlyphStyle.Color = palette[i%len(palette)]
				pts.GlyphStyle.Shape = draw.CircleGlyph{}
				pts.GlyphStyle.Radius = vg.Points(2.5)
				p.Add(pts)
			}
			if len(logs) > 1 {
				name := l.Path
				if len(o.Legend) > 0 {
					name = o.Legend[i]
				}
				p.Legend.Add(name, line)
			}
		}
		if !found {
			var have []string
			for _, l := range logs {
				tr, va := l.Keys()
				have = append(have, append(tr, va...)...)
			}
			slices.Sort(have)
			return fmt.Errorf("no log holds %q; the keys logged are %s", k, strings.Join(slices.Compact(have), ", "))
		}
		// Losses fall and metrics rise: the legend goes where the curve
		// is not.
		p.Legend.Top = !metric
		panels = append(panels, p)
	}
	if o.Title != "" {
		panels[0].Title.Text = o.Title
	}
	const w, h = 7 * vg.Inch, 2.2 * vg.Inch
	img := vgimg.New(w, h*vg.Length(len(panels)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadY: vg.Points(6), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
	grid := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		grid[i] = []*plot.Plot{p}
	}
	canvases := plot.Align(grid, tiles, dc)
	for i, p := range panels {
		p.Draw(canvases[i][0])
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return fmt.Errorf("drawing %s: %w", out, err)
	}
	return config.WriteFileAtomic(out, buf.Bytes())
}

// TrainTime is cal_train_time's answer for one log.
type TrainTime struct {
	Path string
	// MeanIter is the mean of the logged training step times (s/iter).
	MeanIter float64
	// Slowest and Fastest are epochs by their mean step time (epoch-based
	// runs; 0 otherwise), with their times; EpochStd is the spread of the
	// epochs' means.
	Slowest, Fastest         int
	SlowestTime, FastestTime float64
	EpochStd                 float64
}

// CalTrainTime averages a log's step times as mmdet's cal_train_time does,
// leaving out each epoch's first logged interval unless includeOutliers
// (it holds the data loader's start).
func CalTrainTime(l *Log, includeOutliers bool) (TrainTime, error) {
	byEpoch := map[int][]float64{}
	for _, e := range l.Entries {
		if e.Mode != "train" {
			continue
		}
		if t, ok := e.Values["time"]; ok {
			byEpoch[e.Epoch] = append(byEpoch[e.Epoch], t)
		}
	}
	if len(byEpoch) == 0 {
		return TrainTime{}, fmt.Errorf("%s logs no training step times", l.Path)
	}
	tt := TrainTime{Path: l.Path, SlowestTime: math.Inf(-1), FastestTime: math.Inf(1)}
	var all, means []float64
	for _, ep := range slices.Sorted(maps.Keys(byEpoch)) {
		ts := byEpoch[ep]
		if !includeOutliers && len(ts) > 1 {
			ts = ts[1:]
		}
		m := mean(ts)
		means = append(means, m)
		all = append(all, ts...)
		if m > tt.SlowestTime {
			tt.Slowest, tt.SlowestTime = ep, m
		}
		if m < tt.FastestTime {
			tt.Fastest, tt.FastestTime = ep, m
		}
	}
	tt.MeanIter = mean(all)
	mu := mean(means)
	for _, m := range means {
		tt.EpochStd += (m - mu) * (m - mu)
	}
	tt.EpochStd = math.Sqrt(tt.EpochStd / float64(len(means)))
	return tt, nil
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// ReadRun reads every *.log.json of a work dir as one log: a run resumed
// after a kill writes a new file from where it resumed, so the files are
// read in name (start time) order and a line logged again at the same
// mode, epoch and iteration replaces the earlier one.
func ReadRun(dir string) (*Log, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.log.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s holds no *.log.json", dir)
	}
	sort.Strings(paths)
	type at struct {
		mode        string
		epoch, iter int
	}
	run := &Log{Path: dir}
	index := map[at]int{}
	var empty error
	for _, p := range paths {
		l, err := Read(p)
		if errors.Is(err, errNoEntries) {
			// A run killed before its first log line, or resumed at its
			// very end, adds nothing.
			empty = err
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range l.Entries {
			k := at{e.Mode, e.Epoch, e.Iter}
			if i, ok := index[k]; ok {
				run.Entries[i] = e
				continue
			}
			index[k] = len(run.Entries)
			run.Entries = append(run.Entries, e)
		}
		run.EpochLen = max(run.EpochLen, l.EpochLen)
	}
	if len(run.Entries) == 0 {
		return nil, empty
	}
	return run, nil
}
