package checkpoint

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// expectedTensor is one entry of testdata/pth_expected.json.
type expectedTensor struct {
	Dtype  string    `json:"dtype"`
	Shape  []int     `json:"shape"`
	Values []float64 `json:"values"`
}

type expectedPth struct {
	StateDict map[string]expectedTensor `json:"state_dict"`
	Optimizer map[string]expectedTensor `json:"optimizer"`
}

func readExpected(t *testing.T) expectedPth {
	t.Helper()
	js, err := os.ReadFile(filepath.Join("testdata", "pth_expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expectedPth
	if err := json.Unmarshal(js, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

var torchDtypes = map[string]tensor.Dtype{
	"float32": tensor.Float32,
	"float64": tensor.Float64,
	"int64":   tensor.Int64,
	"int32":   tensor.Int32,
}

// checkExact asserts that got holds exactly the expected dtype, shape and
// values (float32 values compare bit for bit after the exact widening the
// fixture script did).
func checkExact(t *testing.T, key string, got *tensor.Dense, want expectedTensor) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: missing", key)
		return
	}
	if got.Dtype() != torchDtypes[want.Dtype] {
		t.Errorf("%s: dtype %v, want %s", key, got.Dtype(), want.Dtype)
		return
	}
	if !sameShape(got, want.Shape) {
		t.Errorf("%s: shape %v, want %v", key, got.Shape(), want.Shape)
		return
	}
	var vals []float64
	switch got.Dtype() {
	case tensor.Float32:
		for _, v := range got.Float32s() {
			vals = append(vals, float64(v))
		}
	case tensor.Float64:
		vals = append(vals, got.Float64s()...)
	case tensor.Int64:
		for _, v := range got.Int64s() {
			vals = append(vals, float64(v))
		}
	case tensor.Int32:
		for _, v := range got.Int32s() {
			vals = append(vals, float64(v))
		}
	}
	if len(vals) != len(want.Values) {
		t.Errorf("%s: %d values, want %d", key, len(vals), len(want.Values))
		return
	}
	for i := range vals {
		if vals[i] != want.Values[i] {
			t.Errorf("%s[%d] = %v, want %v", key, i, vals[i], want.Values[i])
		}
	}
}

func sameShape(t *tensor.Dense, shape []int) bool {
	if t.IsScalar() {
		return len(shape) == 0
	}
	got := t.Shape()
	if len(got) != len(shape) {
		return false
	}
	for i := range got {
		if got[i] != shape[i] {
			return false
		}
	}
	return true
}

func TestReadPthMatchesTorch(t *testing.T) {
	want := readExpected(t)
	for _, tc := range []struct {
		file   string
		prefix string
		mmcv   bool
	}{
		{"bare_zip.pth", "", false},
		{"bare_legacy.pth", "", false},
		{"mmcv_zip.pth", "architecture.model.", true},
		{"mmcv_legacy.pth", "architecture.model.", true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			p, err := ReadPth(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.StateDict) != len(want.StateDict) {
				t.Errorf("state dict has %d keys, want %d: %v", len(p.StateDict), len(want.StateDict), sortedKeys(p.StateDict))
			}
			for k, w := range want.StateDict {
				checkExact(t, tc.prefix+k, p.StateDict[tc.prefix+k], w)
			}
			if !tc.mmcv {
				if p.Meta != nil || p.Optimizer != nil {
					t.Errorf("bare state dict reported meta %v and optimizer %v", p.Meta, p.Optimizer)
				}
				return
			}
			if p.Meta["epoch"] != 2 || p.Meta["iter"] != 1000 || p.Meta["mmcv_version"] != "1.5.0" {
				t.Errorf("meta = %v", p.Meta)
			}
			if p.Meta["config"] != "model = dict(type='ImageClassifier')\n" {
				t.Errorf("meta config = %q", p.Meta["config"])
			}
			if hm, _ := p.Meta["hook_msgs"].(map[string]any); hm["best_score"] != 0.75 {
				t.Errorf("meta hook_msgs = %v", p.Meta["hook_msgs"])
			}
			if cl, _ := p.Meta["CLASSES"].([]any); len(cl) != 2 || cl[0] != "cat" || cl[1] != "dog" {
				t.Errorf("meta CLASSES = %v", p.Meta["CLASSES"])
			}
			for k, w := range want.Optimizer {
				checkExact(t, "optimizer "+k, p.Optimizer[k], w)
			}
			if len(p.Optimizer) != len(want.Optimizer) {
				t.Errorf("optimizer tensors %v, want %d", sortedKeys(p.Optimizer), len(want.Optimizer))
			}
		})
	}
}

// TestReadPthParameter reads a dict whose value is an nn.Parameter, which
// torch pickles through torch._utils._rebuild_parameter.
func TestReadPthParameter(t *testing.T) {
	p, err := ReadPth(filepath.Join("testdata", "param_zip.pth"))
	if err != nil {
		t.Fatal(err)
	}
	w := p.StateDict["w"]
	if w == nil || len(p.StateDict) != 1 || w.Float32s()[0] != 1.5 || w.Float32s()[1] != -2 {
		t.Errorf("state dict = %v", p.StateDict)
	}
}

// TestReadPthTruncatedOrEmpty reads every truncation of the fixtures, an
// empty file and files of zeros: each is one error naming the file, never
// a hang (a 0-byte file once made the legacy reader spin at end of file).
func TestReadPthTruncatedOrEmpty(t *testing.T) {
	dir := t.TempDir()
	type input struct {
		name string
		data []byte
	}
	inputs := []input{{"empty", nil}, {"zeros", make([]byte, 4096)}, {"one zero", []byte{0}}, {"text", []byte("state_dict")}}
	for _, f := range []string{"bare_legacy.pth", "mmcv_legacy.pth", "bare_zip.pth", "mmcv_zip.pth"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(b); n += 1 + n/8 {
			inputs = append(inputs, input{fmt.Sprintf("%s[:%d]", f, n), b[:n]})
		}
	}
	for i, in := range inputs {
		p := filepath.Join(dir, fmt.Sprintf("%d.pth", i))
		if err := os.WriteFile(p, in.data, 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := ReadPth(p)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("%s: error %v, want one naming %s", in.name, err, p)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: ReadPth still running after 10 s", in.name)
		}
	}
}

// TestReadPthDeclaredSizesAreBounded patches every offset of the fixtures
// with a huge number, which lands on every storage's declared size (the
// legacy format's 8-byte counts, the zip format's pickled sizes) among
// other places: no read may fill memory far beyond the file's size
// (gopickle fills a storage of the declared size before reading it). A
// pickle's own length prefixes make gopickle allocate up to 2 GB that it
// never touches; the process's peak resident memory shows what is filled.
func TestReadPthDeclaredSizesAreBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("reads the fixtures some 6500 times")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "x.pth")
	for _, c := range []struct {
		file  string
		patch []byte
	}{
		{"bare_legacy.pth", []byte{0, 0, 0, 0, 0x40, 0, 0, 0}}, // 2^38 little-endian
		{"bare_zip.pth", []byte{0xff, 0xff, 0xff, 0x7f}},       // BININT 2^31-1
	} {
		orig, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off+len(c.patch) <= len(orig); off++ {
			b := append([]byte(nil), orig...)
			copy(b[off:], c.patch)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _ = ReadPth(p)
			var ru syscall.Rusage
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
				t.Fatal(err)
			}
			if ru.Maxrss > 1<<20 { // KiB
				t.Fatalf("%s patched at %d: the process's resident memory reached %d MB", c.file, off, ru.Maxrss>>10)
			}
		}
	}
}
