//go:build mpi && cgo

package dist

import (
	"strings"
	"testing"

	"github.com/razorgo/razor/internal/mpitest"
)

// TestMPICollectives runs TestMPIWorker in 2 ranks under mpirun.
func TestMPICollectives(t *testing.T) {
	mpitest.Run(t, 2, "^TestMPIWorker$")
}

func TestMPIWorker(t *testing.T) {
	if !mpitest.IsWorker() {
		t.Skip("runs under mpirun, started by TestMPICollectives")
	}
	c, err := Launch("mpi")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, n := c.Rank(), c.Size()
	if n != 2 || World() != c {
		t.Fatalf("size %d", n)
	}
	// Larger than a piece, so the cut is exercised.
	big := make([]float32, PieceBytes/4+3)
	for i := range big {
		big[i] = float32(r + 1)
	}
	if err := c.AllReduceFloat32(big); err != nil {
		t.Fatal(err)
	}
	for i, v := range big {
		if v != 3 {
			t.Fatalf("allreduce[%d] = %g, want 3", i, v)
		}
	}
	d := []float64{float64(r), 0.5}
	if err := c.AllReduceFloat64(d); err != nil || d[0] != 1 || d[1] != 1 {
		t.Fatalf("allreduce float64: %v %v", d, err)
	}
	b := make([]float32, 5)
	if r == 1 {
		b = []float32{1, 2, 3, 4, 5}
	}
	if err := BroadcastFloat32(c, b, 1); err != nil || b[4] != 5 {
		t.Fatalf("broadcast: %v %v", b, err)
	}
	got, err := c.AllGather([]byte(strings.Repeat("x", r*3)))
	if err != nil || len(got) != 2 || len(got[0]) != 0 || string(got[1]) != "xxx" {
		t.Fatalf("allgather: %q %v", got, err)
	}
	if err := c.Barrier(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Name(), "Open MPI") {
		t.Errorf("name %q", c.Name())
	}
}
