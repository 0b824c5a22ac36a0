package logplot

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeLog(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "run.log.json")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// An epoch-based log (iter starts again each epoch; a validation line's iter
// is the epoch's last, as mmcv writes it, or the run's count, as razor
// does) and an iteration-based one (iter counts on while the data epoch
// changes).
const epochLog = `{"env_info": "skipped: no mode"}
{"mode": "train", "epoch": 1, "iter": 10, "lr": 0.02, "loss": 2.0, "loss_cls": 1.5, "time": 0.9}
{"mode": "train", "epoch": 1, "iter": 20, "lr": 0.02, "loss": 1.0, "loss_cls": 0.7, "time": 0.3}
{"mode": "val", "epoch": 1, "iter": 20, "lr": 0.02, "bbox_mAP": 0.1, "bbox_mAP_std": 0.01}
{"mode": "train", "epoch": 2, "iter": 10, "lr": 0.02, "loss": 0.8, "loss_cls": 0.5, "time": 0.8}
{"mode": "train", "epoch": 2, "iter": 20, "lr": 0.02, "loss": 0.6, "loss_cls": 0.4, "time": 0.5}
{"mode": "val", "epoch": 2, "iter": 40, "lr": 0.02, "bbox_mAP": 0.3}
`

const iterLog = `{"mode": "train", "epoch": 1, "iter": 50, "loss": 2.3, "time": 0.05}
{"mode": "train", "epoch": 2, "iter": 100, "loss": 2.1, "time": 0.06}
{"mode": "val", "epoch": 2, "iter": 100, "accuracy_top-1": 40}
`

func TestReadPlacesEntriesOnTheIterationAxis(t *testing.T) {
	l, err := Read(writeLog(t, epochLog))
	if err != nil {
		t.Fatal(err)
	}
	if l.EpochLen != 20 || len(l.Entries) != 6 {
		t.Fatalf("epoch length %d, %d entries; want 20 and 6 (the header skipped)", l.EpochLen, len(l.Entries))
	}
	xs, mode := l.Series("bbox_mAP")
	if mode != "val" || len(xs) != 2 || xs[0].X != 20 || xs[1].X != 40 || xs[1].Y != 0.3 {
		t.Fatalf("bbox_mAP series %v (%s), want (20, 0.1) and (40, 0.3) from val lines", xs, mode)
	}
	if xs, _ := l.Series("loss"); len(xs) != 4 || xs[2].X != 30 {
		t.Fatalf("loss series %v; epoch 2's iter 10 is iteration 30", xs)
	}
	train, val := l.Keys()
	if strings.Join(train, ",") != "loss,loss_cls" || strings.Join(val, ",") != "bbox_mAP" {
		t.Fatalf("keys %v / %v; lr, time and spreads are left out", train, val)
	}
	il, err := Read(writeLog(t, iterLog))
	if err != nil {
		t.Fatal(err)
	}
	if xs, _ := il.Series("loss"); il.EpochLen != 0 || xs[1].X != 100 {
		t.Fatalf("an iteration-based log: epoch length %d, loss %v; iter is already global", il.EpochLen, xs)
	}
}

func TestReadErrors(t *testing.T) {
	for _, c := range []struct{ text, frag string }{
		{"{\"mode\": \"train\", \"epoch\": 1, \"iter\": 1}\nnot json\n", "run.log.json:2: not a JSON log line"},
		{"{\"mode\": \"train\", \"iter\": 1}\n", "run.log.json:1: a train line without epoch and iter"},
		{"{\"env_info\": \"x\"}\n", "holds no log lines with a mode"},
	} {
		if _, err := Read(writeLog(t, c.text)); err == nil || !strings.Contains(err.Error(), c.frag) {
			t.Errorf("%q: error %v, want %q", c.text, err, c.frag)
		}
	}
}

func TestPlotCurves(t *testing.T) {
	a, err := Read(writeLog(t, epochLog))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Read(writeLog(t, epochLog))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "curves.png")
	if err := PlotCurves([]*Log{a, b}, PlotOptions{Legend: []string{"a", "b"}, Title: "two runs"}, out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	// Three panels (loss, loss_cls, bbox_mAP), each 2.2 inches high.
	if want := 3 * 2.2 / 7; math.Abs(float64(cfg.Height)/float64(cfg.Width)-want) > 0.01 {
		t.Fatalf("a %dx%d figure, want three panels of 7x2.2 inches", cfg.Width, cfg.Height)
	}
	err = PlotCurves([]*Log{a}, PlotOptions{Keys: []string{"mAP"}}, out)
	if err == nil || !strings.Contains(err.Error(), `no log holds "mAP"; the keys logged are bbox_mAP, loss, loss_cls`) {
		t.Fatalf("an unknown key: %v", err)
	}
	if err := PlotCurves([]*Log{a, b}, PlotOptions{Legend: []string{"a"}}, out); err == nil || !strings.Contains(err.Error(), "names 1 curves for 2 logs") {
		t.Fatalf("a short legend: %v", err)
	}
}

func TestCalTrainTime(t *testing.T) {
	l, err := Read(writeLog(t, epochLog))
	if err != nil {
		t.Fatal(err)
	}
	tt, err := CalTrainTime(l, false)
	if err != nil {
		t.Fatal(err)
	}
	// Without each epoch's first interval: epoch 1 0.3, epoch 2 0.5.
	if tt.Slowest != 2 || tt.Fastest != 1 || math.Abs(tt.MeanIter-0.4) > 1e-12 || math.Abs(tt.EpochStd-0.1) > 1e-12 {
		t.Fatalf("%+v", tt)
	}
	if tt, _ := CalTrainTime(l, true); math.Abs(tt.MeanIter-0.625) > 1e-12 {
		t.Fatalf("with outliers: mean %g, want 0.625", tt.MeanIter)
	}
}

// A resumed run's logs read as one: the second file repeats the lines
// after the resume point, which replace the first file's.
func TestReadRunMergesResumedLogs(t *testing.T) {
	dir := t.TempDir()
	first := `{"mode": "train", "epoch": 1, "iter": 10, "loss": 2.0}
{"mode": "train", "epoch": 1, "iter": 20, "loss": 1.0}
{"mode": "train", "epoch": 2, "iter": 10, "loss": 9.0}
`
	second := `{"mode": "train", "epoch": 2, "iter": 10, "loss": 0.8}
{"mode": "train", "epoch": 2, "iter": 20, "loss": 0.6}
`
	// A run killed before it logged, and one resumed at its very end, wrote
	// only the env header.
	header := `{"env_info": "razor", "seed": 1}
`
	for name, text := range map[string]string{"20261205_090000.log.json": header, "20261205_100000.log.json": first, "20261205_110000.log.json": second, "20261205_120000.log.json": header} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	xs, _ := l.Series("loss")
	if l.EpochLen != 20 || len(xs) != 4 || xs[2].X != 30 || xs[2].Y != 0.8 || xs[3].Y != 0.6 {
		t.Fatalf("merged loss %v (epoch length %d), want 2, 1, 0.8, 0.6 at 10, 20, 30, 40", xs, l.EpochLen)
	}
	if _, err := ReadRun(t.TempDir()); err == nil || !strings.Contains(err.Error(), "holds no *.log.json") {
		t.Fatalf("an empty dir: %v", err)
	}
	only := t.TempDir()
	if err := os.WriteFile(filepath.Join(only, "20261205_090000.log.json"), []byte(header), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRun(only); err == nil || !strings.Contains(err.Error(), "holds no log lines with a mode") {
		t.Fatalf("a dir of header-only logs: %v", err)
	}
}
