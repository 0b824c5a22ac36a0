package simd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesAreCurrent regenerates every kernel file with its avo
// generator (the asmgen module) and compares it with the committed one, so
// an edit to a generator that was not followed by `go generate` fails here.
// The first line (the command, with its output paths) is not compared.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds avo")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	tmp := t.TempDir()
	for _, gen := range []string{"gemm", "depthwise", "batchnorm"} {
		asm, stubs := filepath.Join(tmp, gen+"_amd64.s"), filepath.Join(tmp, gen+"_amd64.go")
		cmd := exec.Command(goCmd, "run", "./"+gen, "-pkg", "simd", "-out", asm, "-stubs", stubs)
		cmd.Dir = filepath.Join("..", "asmgen")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s generator: %v\n%s", gen, err, out)
		}
		for _, f := range []string{asm, stubs} {
			want, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Base(f))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(afterFirstLine(got), afterFirstLine(want)) {
				t.Errorf("%s differs from what ../asmgen/%s generates; run go generate ./models/ops/internal/simd", filepath.Base(f), gen)
			}
		}
	}
}

func afterFirstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}
