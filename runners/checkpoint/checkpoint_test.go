package checkpoint

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func sampleCheckpoint(iter int64, scale float32) *Checkpoint {
	return &Checkpoint{
		Model: map[string]*tensor.Dense{
			"backbone.conv1.conv.weight":            tensor.New(tensor.WithShape(2, 1, 1, 2), tensor.WithBacking([]float32{1 * scale, 2, 3, 4})),
			"backbone.conv1.bn.num_batches_tracked": tensor.New(tensor.WithShape(), tensor.WithBacking([]int64{iter})),
		},
		Optimizer: map[string]*tensor.Dense{
			"momentum_buffer/backbone.conv1.conv.weight": tensor.New(tensor.WithShape(2, 1, 1, 2), tensor.WithBacking([]float32{-1, -2, -3, -4 * scale})),
		},
		Meta: Meta{
			Iteration:    iter,
			Epoch:        iter / 10,
			Config:       "model:\n  type: ImageClassifier\n",
			Subnet:       map[string]string{"stage_0_block_0": "shuffle_7x7"},
			Optimizer:    json.RawMessage(`{"type":"SGD","lr":0.5}`),
			RNG:          map[string][]byte{"sampler": {1, 2, 3, 255}},
			RazorVersion: "0.1.0",
			Extra:        map[string]json.RawMessage{"best": json.RawMessage(`0.75`)},
		},
	}
}

func checkSame(t *testing.T, got, want *Checkpoint) {
	t.Helper()
	for _, part := range []struct {
		name      string
		got, want map[string]*tensor.Dense
	}{{"model", got.Model, want.Model}, {"optimizer", got.Optimizer, want.Optimizer}} {
		if len(part.got) != len(part.want) {
			t.Errorf("%s: %d tensors, want %d", part.name, len(part.got), len(part.want))
		}
		for k, w := range part.want {
			if g := part.got[k]; g == nil || !sameTensor(g, w) {
				t.Errorf("%s tensor %s = %v, want %v", part.name, k, g, w)
			}
		}
	}
	gm, _ := json.Marshal(got.Meta)
	wm, _ := json.Marshal(want.Meta)
	if !bytes.Equal(gm, wm) {
		t.Errorf("meta = %s, want %s", gm, wm)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := sampleCheckpoint(1000, 1)
	path, err := Save(dir, "iter_1000", want)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "iter_1000.json") {
		t.Errorf("Save returned %s", path)
	}
	for _, p := range []string{path, filepath.Join(dir, "iter_1000.safetensors"), filepath.Join(dir, "iter_1000")} {
		got, err := Load(p)
		if err != nil {
			t.Fatalf("Load(%s): %v", p, err)
		}
		checkSame(t, got, want)
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 2 {
		t.Errorf("directory holds %d entries after a save, want the 2 checkpoint files", len(des))
	}
}

func TestSaveRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	c := sampleCheckpoint(1, 1)
	for _, name := range []string{"", ".hidden", "a/b"} {
		if _, err := Save(dir, name, c); err == nil || !strings.Contains(err.Error(), "plain file name") {
			t.Errorf("Save(%q) error = %v", name, err)
		}
	}
	c.Model["bad/key"] = c.Model["backbone.conv1.conv.weight"]
	if _, err := Save(dir, "x", c); err == nil || !strings.Contains(err.Error(), `"bad/key"`) {
		t.Errorf("model key with '/': error = %v", err)
	}
	bad := sampleCheckpoint(1, 1)
	bad.Optimizer["bool"] = tensor.New(tensor.WithShape(1), tensor.WithBacking([]bool{true}))
	if _, err := Save(dir, "y", bad); err == nil || !strings.Contains(err.Error(), "dtype bool") {
		t.Errorf("bool tensor: error = %v", err)
	}
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("a failed save left %d files behind", len(des))
	}
}

// TestKillDuringSave stops a save after every one of its steps, leaving the
// files exactly as a kill at that moment would, and checks that the
// checkpoint never loads half written: it either loads complete (the old one
// or the new one) or is refused with a message saying why.
func TestKillDuringSave(t *testing.T) {
	old := sampleCheckpoint(10, 1)
	next := sampleCheckpoint(20, 7)
	for _, overwrite := range []bool{false, true} {
		steps, _, err := planSave(t.TempDir(), "ckpt", next)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < len(steps); k++ {
			dir := t.TempDir()
			if overwrite {
				if _, err := Save(dir, "ckpt", old); err != nil {
					t.Fatal(err)
				}
			}
			steps, _, err := planSave(dir, "ckpt", next)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range steps[:k] {
				if err := s.run(); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Load(filepath.Join(dir, "ckpt"))
			switch {
			case err == nil && overwrite:
				checkSame(t, got, old)
			case err == nil:
				t.Errorf("kill after %d steps: a checkpoint with no completed save loaded", k)
			case !overwrite && k < 2 && !strings.Contains(err.Error(), "no checkpoint at"):
				t.Errorf("kill after %d steps: error %q, want 'no checkpoint at'", k, err)
			case !overwrite && k >= 2 && !strings.Contains(err.Error(), "save was interrupted"):
				t.Errorf("kill after %d steps: error %q, want 'save was interrupted'", k, err)
			case overwrite && !strings.Contains(err.Error(), "interrupted save"):
				t.Errorf("kill after %d steps over an old checkpoint: error %q, want 'interrupted save'", k, err)
			}
			es, lerr := List(dir)
			if lerr != nil {
				t.Fatal(lerr)
			}
			for _, e := range es {
				if e.Iteration == 20 {
					t.Errorf("kill after %d steps: List offers the unfinished checkpoint", k)
				}
			}
		}
	}
}

func TestLoadRefusesDamagedCheckpoints(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(dir string)
		want   string
	}{
		{"meta missing", func(dir string) { os.Remove(filepath.Join(dir, "c.json")) }, "save was interrupted"},
		{"tensors missing", func(dir string) { os.Remove(filepath.Join(dir, "c.safetensors")) }, "tensors file"},
		{"tensors truncated", func(dir string) {
			p := filepath.Join(dir, "c.safetensors")
			st, _ := os.Stat(p)
			os.Truncate(p, st.Size()-3)
		}, "bytes but the meta file records"},
		{"tensors changed", func(dir string) {
			p := filepath.Join(dir, "c.safetensors")
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 1
			os.WriteFile(p, b, 0o644)
		}, "SHA-256"},
		{"meta not json", func(dir string) { os.WriteFile(filepath.Join(dir, "c.json"), []byte("{"), 0o644) }, "not valid JSON"},
		{"foreign json", func(dir string) { os.WriteFile(filepath.Join(dir, "c.json"), []byte(`{"a":1}`), 0o644) }, "not a razor checkpoint"},
		{"future version", func(dir string) { rewriteMeta(dir, func(m map[string]any) { m["format_version"] = 99 }) }, "format_version 99"},
		{"tensors file elsewhere", func(dir string) {
			rewriteMeta(dir, func(m map[string]any) { m["tensors_file"] = "../x.safetensors" })
		}, "plain NAME.safetensors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := Save(dir, "c", sampleCheckpoint(5, 1)); err != nil {
				t.Fatal(err)
			}
			tc.damage(dir)
			_, err := Load(filepath.Join(dir, "c.json"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func rewriteMeta(dir string, edit func(map[string]any)) {
	p := filepath.Join(dir, "c.json")
	b, _ := os.ReadFile(p)
	var m map[string]any
	json.Unmarshal(b, &m)
	edit(m)
	b, _ = json.Marshal(m)
	os.WriteFile(p, b, 0o644)
}

func TestListAndLatestSkipTempAndIncomplete(t *testing.T) {
	dir := t.TempDir()
	for _, it := range []int64{300, 100, 200} {
		if _, err := Save(dir, fmt.Sprintf("iter_%d", it/100), sampleCheckpoint(it, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// Leftovers of interrupted saves of a later checkpoint.
	os.WriteFile(filepath.Join(dir, ".iter_9.safetensors.tmp-123"), []byte("partial"), 0o644)
	os.WriteFile(filepath.Join(dir, ".iter_9.json.tmp-456"), []byte(`{"format":"razor-checkpoint"`), 0o644)
	steps, _, err := planSave(dir, "iter_8", sampleCheckpoint(800, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps[:2] {
		if err := s.run(); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "notes.json"), []byte(`{"x":1}`), 0o644)

	es, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var iters []int64
	for _, e := range es {
		iters = append(iters, e.Iteration)
	}
	if len(iters) != 3 || iters[0] != 100 || iters[1] != 200 || iters[2] != 300 {
		t.Errorf("List iterations = %v, want [100 200 300]", iters)
	}
	latest, err := Latest(dir)
	if err != nil || latest != filepath.Join(dir, "iter_3.json") {
		t.Errorf("Latest = %s, %v; want iter_3.json", latest, err)
	}
	if _, err := Latest(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no complete checkpoint") {
		t.Errorf("Latest of an empty dir: %v", err)
	}
}

func TestRemap(t *testing.T) {
	one := func(v float32) *tensor.Dense {
		return tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{v}))
	}
	sd := map[string]*tensor.Dense{
		"architecture.model.backbone.conv1.conv.weight": one(1),
		"architecture.model.head.fc.weight":             one(2),
		"module.neck.x":                                 one(3),
		"other":                                         one(4),
	}
	for _, tc := range []struct {
		name  string
		rules []PrefixRule
		drop  bool
		want  map[string]float32
	}{
		{"strip wrapper", []PrefixRule{{"architecture.model.", ""}, {"module.", ""}}, false,
			map[string]float32{"backbone.conv1.conv.weight": 1, "head.fc.weight": 2, "neck.x": 3, "other": 4}},
		{"backbone only", []PrefixRule{{"architecture.model.backbone.", "backbone."}}, true,
			map[string]float32{"backbone.conv1.conv.weight": 1}},
		{"first rule wins", []PrefixRule{{"architecture.model.head.", "h."}, {"architecture.", "a."}}, true,
			map[string]float32{"h.fc.weight": 2, "a.model.backbone.conv1.conv.weight": 1}},
		{"add prefix", []PrefixRule{{"", "p."}}, false,
			map[string]float32{"p.architecture.model.backbone.conv1.conv.weight": 1, "p.architecture.model.head.fc.weight": 2, "p.module.neck.x": 3, "p.other": 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Remap(sd, tc.rules, tc.drop)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("got keys %v, want %v", sortedKeys(got), tc.want)
			}
			for k, v := range tc.want {
				if got[k] == nil || got[k].Float32s()[0] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
	_, err := Remap(sd, []PrefixRule{{"architecture.model.", ""}, {"module.neck.x", "other"}}, false)
	if err == nil || !strings.Contains(err.Error(), `both become "other"`) {
		t.Errorf("collision error = %v", err)
	}
}

func TestReadPthRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "sys_info", Mode: 0o644, Size: 1})
	tw.Write([]byte{0})
	tw.Close()
	files := map[string][]byte{
		"garbage.pth": []byte("this is not a pickle"),
		"tar.pth":     tarBuf.Bytes(),
	}
	zipData, err := os.ReadFile(filepath.Join("testdata", "bare_zip.pth"))
	if err != nil {
		t.Fatal(err)
	}
	files["truncated_zip.pth"] = zipData[:len(zipData)/2]
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			os.WriteFile(p, data, 0o644)
			if _, err := ReadPth(p); err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("error = %v, want one naming %s", err, p)
			}
		})
	}
	if _, err := ReadPth(filepath.Join(dir, "missing.pth")); err == nil {
		t.Errorf("missing file read without error")
	}
}

func TestReadMetaReadsOnlyTheMetaFile(t *testing.T) {
	dir := t.TempDir()
	path, err := Save(dir, "iter_7", &Checkpoint{Model: map[string]*tensor.Dense{"w": tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2}))}, Meta: Meta{Iteration: 7}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "iter_7.safetensors")); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMeta(path)
	if err != nil || m.Iteration != 7 {
		t.Fatalf("ReadMeta = %+v, %v", m, err)
	}
	if _, err := Load(path); err == nil {
		t.Fatal("Load must still refuse the checkpoint without its tensors")
	}
}
