package checkpoint

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// The fuzz targets of the checkpoint readers: whatever the bytes, a read
// ends with a checkpoint or an error, never a panic, a hang or an
// allocation the file's size does not justify. Their seeds (the fixtures
// and testdata/fuzz/<target>) run with the ordinary tests; fuzz one with
// go test -run '^$' -fuzz '^FuzzReadPth$' -fuzztime 5m ./runners/checkpoint

func FuzzReadPth(f *testing.F) {
	for _, name := range []string{"bare_legacy.pth", "bare_zip.pth", "mmcv_legacy.pth", "mmcv_zip.pth", "param_zip.pth"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "x.pth")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		type result struct {
			p   *Pth
			err error
		}
		done := make(chan result, 1)
		go func() {
			p2, err := ReadPth(p)
			done <- result{p2, err}
		}()
		select {
		case r := <-done:
			if r.err == nil && r.p.StateDict == nil {
				t.Fatal("no error and no state dict")
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ReadPth of %d bytes still running after 10 s", len(data))
		}
	})
}

// safetensorsSeed is a small safetensors file with two tensors.
func safetensorsSeed(f *testing.F) []byte {
	var buf bytes.Buffer
	err := WriteSafetensors(&buf, map[string]*tensor.Dense{
		"a.weight": tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6})),
		"a.steps":  tensor.New(tensor.WithShape(), tensor.WithBacking([]int64{7})),
	}, map[string]string{"format": "pt"})
	if err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzReadSafetensors(f *testing.F) {
	f.Add(safetensorsSeed(f))
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, _, err := ReadSafetensors(data)
		if err != nil {
			return
		}
		var n int
		for _, d := range ts {
			n += d.Shape().TotalSize() * int(d.Dtype().Size())
		}
		if n > len(data) {
			t.Fatalf("%d bytes of tensors from a %d-byte file", n, len(data))
		}
	})
}

// FuzzLoad reads a razor checkpoint: its JSON meta and safetensors file.
func FuzzLoad(f *testing.F) {
	dir := f.TempDir()
	path, err := Save(dir, "seed", &Checkpoint{Model: map[string]*tensor.Dense{
		"architecture.model.fc.weight": tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 2, 3, 4})),
	}, Meta: Meta{Iteration: 3, Epoch: 1}})
	if err != nil {
		f.Fatal(err)
	}
	meta, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	st, err := os.ReadFile(basePath(path) + ".safetensors")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(meta, st)
	f.Add([]byte(`{"iter": -1}`), []byte{})
	work := f.TempDir()
	f.Fuzz(func(t *testing.T, meta, st []byte) {
		if err := os.WriteFile(filepath.Join(work, "c.json"), meta, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, "c.safetensors"), st, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = Load(filepath.Join(work, "c.json"))
		_, _ = ReadMeta(filepath.Join(work, "c.json"))
	})
}
