package runners

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// LogBuffer averages logged values over the iterations since the last log
// line, weighting each by its sample count, as mmcv's LogBuffer does.
type LogBuffer struct {
	order []string
	sum   map[string]float64
	count map[string]int
}

// NewLogBuffer returns an empty buffer.
func NewLogBuffer() *LogBuffer {
	return &LogBuffer{sum: map[string]float64{}, count: map[string]int{}}
}

// Add records one value with its weight.
func (b *LogBuffer) Add(name string, v float64, n int) {
	if _, ok := b.count[name]; !ok {
		b.order = append(b.order, name)
	}
	b.sum[name] += v * float64(n)
	b.count[name] += n
}

// Averages returns the weighted mean of every value, in first-added order.
func (b *LogBuffer) Averages() []NamedValue {
	out := make([]NamedValue, 0, len(b.order))
	for _, k := range b.order {
		if b.count[k] > 0 {
			out = append(out, NamedValue{Name: k, Value: b.sum[k] / float64(b.count[k])})
		}
	}
	return out
}

// Clear empties the buffer.
func (b *LogBuffer) Clear() {
	b.order = nil
	b.sum = map[string]float64{}
	b.count = map[string]int{}
}

// Logger writes log lines to the terminal and `<timestamp>.log`, and
// records to `<timestamp>.log.json`, one JSON object a line, with mmcv's
// field names (mode, epoch, iter, lr, memory, data_time, time, and every loss
// term).
type Logger struct {
	mu       sync.Mutex
	out      io.Writer
	text     *os.File
	json     *os.File
	TextPath string
	JSONPath string
}

// NewLogger opens the log files for a run in workDir, named by the start
// time (`20261127_083015.log`), and echoes text lines to out.
func NewLogger(workDir string, start time.Time, out io.Writer) (*Logger, error) {
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating work dir %s: %w", workDir, err)
	}
	stamp := start.Format("20060102_150405")
	l := &Logger{out: out, TextPath: filepath.Join(workDir, stamp+".log"), JSONPath: filepath.Join(workDir, stamp+".log.json")}
	var err error
	if l.text, err = os.OpenFile(l.TextPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, fmt.Errorf("opening log %s: %w", l.TextPath, err)
	}
	if l.json, err = os.OpenFile(l.JSONPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		l.text.Close()
		return nil, fmt.Errorf("opening log %s: %w", l.JSONPath, err)
	}
	return l, nil
}

// Printf writes one timestamped line to the terminal and the text log.
func (l *Logger) Printf(format string, args ...any) {
	line := fmt.Sprintf("%s - razor - INFO - %s\n", time.Now().Format("2006-01-02 15:04:05,000"), fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.out != nil {
		io.WriteString(l.out, line)
	}
	if l.text != nil {
		l.text.WriteString(line)
	}
}

// Record appends one JSON object to the JSON log. Floats are rounded to 5
// decimals, as mmcv's TextLoggerHook does.
func (l *Logger) Record(fields []NamedValue, head map[string]any) error {
	var sb strings.Builder
	sb.WriteByte('{')
	first := true
	write := func(k string, v any) error {
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if !first {
			sb.WriteString(", ")
		}
		first = false
		sb.Write(kb)
		sb.WriteString(": ")
		sb.Write(vb)
		return nil
	}
	for _, k := range []string{"mode", "epoch", "iter", "lr", "memory"} {
		if v, ok := head[k]; ok {
			if err := write(k, v); err != nil {
				return err
			}
		}
	}
	for _, f := range fields {
		v := f.Value
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			v = math.Round(v*1e5) / 1e5
		}
		if err := write(f.Name, v); err != nil {
			return err
		}
	}
	sb.WriteString("}\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json == nil {
		return nil
	}
	_, err := l.json.WriteString(sb.String())
	return err
}

// RecordRaw appends an arbitrary JSON object (the run's meta line).
func (l *Logger) RecordRaw(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.json == nil {
		return nil
	}
	_, err = l.json.Write(append(b, '\n'))
	return err
}

// Close flushes and closes the log files.
func (l *Logger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, f := range []*os.File{l.text, l.json} {
		if f != nil {
			errs = append(errs, f.Sync(), f.Close())
		}
	}
	l.text, l.json = nil, nil
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// memoryMB is the Go heap in use, in MiB, the CPU stand-in for mmcv's
// torch.cuda.max_memory_allocated.
func memoryMB() int {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int(ms.HeapInuse >> 20)
}

// formatETA writes seconds like Python's str(timedelta): "1 day, 2:03:04".
func formatETA(sec float64) string {
	s := int64(sec)
	if s < 0 {
		s = 0
	}
	days := s / 86400
	s %= 86400
	hms := fmt.Sprintf("%d:%02d:%02d", s/3600, s%3600/60, s%60)
	switch days {
	case 0:
		return hms
	case 1:
		return "1 day, " + hms
	default:
		return fmt.Sprintf("%d days, %s", days, hms)
	}
}

// LoggerHook writes a log line every Interval iterations (and at the end of
// an epoch), with the averages of the values logged since the last line:
// to the terminal and the text log, and as a JSON line to the .log.json
// file, as mmcv's TextLoggerHook (the type name it is registered under).
type LoggerHook struct {
	Interval int `cfg:"interval"`
	// IgnoreLast skips the leftover iterations at the end of an epoch.
	IgnoreLast bool `cfg:"ignore_last"`

	start     time.Time
	startIter int

	// r is the runner of the run in progress, whose buffer State saves;
	// restored is what LoadState read from a checkpoint, for BeforeRun.
	r        *Runner
	restored *loggerState
}

// loggerState is what a checkpoint keeps of the logger: the values added
// since the last line, and whether a line was due at the checkpoint's
// iteration. The checkpoint hook saves before the logger writes (NORMAL
// before VERY_LOW priority), so a run killed between the two owes that
// line, and a resumed run would otherwise average the next line over
// fewer iterations than an uninterrupted one.
type loggerState struct {
	Order []string           `json:"order"`
	Sum   map[string]float64 `json:"sum"`
	Count map[string]int     `json:"count"`
	Due   bool               `json:"due,omitempty"`
}

// Name keys the hook's state in checkpoints.
func (h *LoggerHook) Name() string { return "LoggerHook" }

// State saves the values not yet logged and whether a line is due now.
func (h *LoggerHook) State() (json.RawMessage, error) {
	st := loggerState{Sum: map[string]float64{}, Count: map[string]int{}}
	if r := h.r; r != nil && r.Buffer != nil {
		st.Order = slices.Clone(r.Buffer.order)
		maps.Copy(st.Sum, r.Buffer.sum)
		maps.Copy(st.Count, r.Buffer.count)
		st.Due = h.due(r) && len(r.Buffer.order) > 0
	}
	return json.Marshal(st)
}

// LoadState keeps a checkpoint's logger state for BeforeRun.
func (h *LoggerHook) LoadState(b json.RawMessage) error {
	var st loggerState
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	h.restored = &st
	return nil
}

// Defaults log every 10 iterations, as mmcv's; unlike mmcv's default, the
// leftover iterations at the end of an epoch are logged too.
func (h *LoggerHook) Defaults() { h.Interval = 10 }

// Priority is VERY_LOW, as mmcv's logger hooks.
func (h *LoggerHook) Priority() int { return PriorityVeryLow }

// BeforeRun notes the start, for the ETA. A resumed run takes back the
// values its checkpoint had not logged yet, and writes the line the
// interrupted run owed at the checkpoint's iteration.
func (h *LoggerHook) BeforeRun(r *Runner) error {
	h.r = r
	h.start = time.Now()
	h.startIter = r.Iter
	st := h.restored
	h.restored = nil
	if st == nil || r.Buffer == nil {
		return nil
	}
	r.Buffer.Clear()
	for _, k := range st.Order {
		r.Buffer.order = append(r.Buffer.order, k)
		r.Buffer.sum[k], r.Buffer.count[k] = st.Sum[k], st.Count[k]
	}
	if !st.Due || r.Iter == 0 {
		return nil
	}
	// The line of the iteration the checkpoint ended: the counters as the
	// logger saw them then.
	inner := r.InnerIter
	if r.ByEpoch {
		r.InnerIter--
	}
	err := h.log(r, r.Iter-1)
	r.InnerIter = inner
	return err
}

// due reports whether a line is due after the iteration in progress.
func (h *LoggerHook) due(r *Runner) bool {
	n := max(1, h.Interval)
	if r.ByEpoch {
		return (r.InnerIter+1)%n == 0 || !h.IgnoreLast && r.InnerIter+1 == r.Task.BatchesPerEpoch()
	}
	return (r.Iter+1)%n == 0
}

// AfterTrainIter logs every Interval iterations.
func (h *LoggerHook) AfterTrainIter(r *Runner) error {
	if !h.due(r) {
		return nil
	}
	return h.log(r, r.Iter)
}

// AfterRun logs what is left in the buffer.
func (h *LoggerHook) AfterRun(r *Runner) error {
	if len(r.Buffer.Averages()) == 0 {
		return nil
	}
	return h.log(r, r.Iter-1)
}

// log writes the averages since the last line for iteration iter (0-based).
func (h *LoggerHook) log(r *Runner, iter int) error {
	avgs := r.Buffer.Averages()
	r.Buffer.Clear()
	lr := r.Optimizer.LR()
	var timeAvg float64
	var rest []NamedValue
	var dataTime float64
	for _, v := range avgs {
		switch v.Name {
		case "time":
			timeAvg = v.Value
		case "data_time":
			dataTime = v.Value
		default:
			rest = append(rest, v)
		}
	}
	done := iter + 1 - h.startIter
	elapsed := time.Since(h.start).Seconds()
	eta := 0.0
	if done > 0 {
		eta = elapsed / float64(done) * float64(r.MaxIters-iter-1)
	}
	mem := memoryMB()
	var sb strings.Builder
	if r.ByEpoch {
		fmt.Fprintf(&sb, "Epoch [%d][%d/%d]\t", r.Epoch+1, r.InnerIter+1, r.Task.BatchesPerEpoch())
	} else {
		fmt.Fprintf(&sb, "Iter [%d/%d]\t", iter+1, r.MaxIters)
	}
	fmt.Fprintf(&sb, "lr: %.3e, eta: %s, time: %.3f, data_time: %.3f, memory: %d", lr, formatETA(eta), timeAvg, dataTime, mem)
	for _, v := range rest {
		fmt.Fprintf(&sb, ", %s: %.4f", v.Name, v.Value)
	}
	r.Log.Printf("%s", sb.String())
	fields := append([]NamedValue{{Name: "data_time", Value: dataTime}}, rest...)
	fields = append(fields, NamedValue{Name: "time", Value: timeAvg})
	return r.Log.Record(fields, map[string]any{
		"mode": "train", "epoch": r.Epoch + 1, "iter": iterField(r, iter), "lr": roundLR(lr), "memory": mem,
	})
}

// iterField is mmcv's "iter" field: the iteration within the epoch for
// epoch-based runs, the global iteration otherwise (both 1-based).
func iterField(r *Runner, iter int) int {
	if r.ByEpoch {
		return r.InnerIter + 1
	}
	return iter + 1
}

func roundLR(lr float64) float64 { return math.Round(lr*1e5) / 1e5 }
