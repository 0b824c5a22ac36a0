package dist

import (
	"bytes"
	"strings"
	"testing"
)

func TestSingleIsAWorldOfOne(t *testing.T) {
	c := World()
	if c.Rank() != 0 || c.Size() != 1 || Distributed() {
		t.Fatalf("default world: rank %d size %d", c.Rank(), c.Size())
	}
	buf := []float32{1, 2, 3}
	if err := AllReduceMean(c, buf); err != nil || buf[2] != 3 {
		t.Fatalf("mean of one rank: %v %v", buf, err)
	}
	got, err := c.AllGather([]byte("abc"))
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], []byte("abc")) {
		t.Fatalf("gather: %q %v", got, err)
	}
}

func TestLaunchChecksTheLauncher(t *testing.T) {
	for _, v := range rankVars {
		t.Setenv(v[0], "")
	}
	if _, err := Launch("pytorch"); err == nil || !strings.Contains(err.Error(), `"pytorch"`) {
		t.Errorf("unknown launcher: %v", err)
	}
	_, err := Launch("mpi")
	if err == nil || !strings.Contains(err.Error(), "not started by mpirun") {
		t.Errorf("mpi outside mpirun: %v", err)
	}
	t.Setenv("OMPI_COMM_WORLD_RANK", "x")
	if _, err := Launch("mpi"); err == nil || !strings.Contains(err.Error(), "OMPI_COMM_WORLD_RANK") {
		t.Errorf("bad rank variable: %v", err)
	}
	if c, err := Launch("none"); err != nil || c.Size() != 1 || World().Size() != 1 {
		t.Errorf("none: %v %v", c, err)
	}
}

func TestPieces(t *testing.T) {
	var got [][2]int
	pieces(10, 4, func(lo, hi int) error { got = append(got, [2]int{lo, hi}); return nil })
	if len(got) != 3 || got[2] != [2]int{8, 10} {
		t.Errorf("pieces: %v", got)
	}
}

// fakeWorld is a world of several ranks for the launcher's bookkeeping;
// its collectives are never called.
type fakeWorld struct {
	Single
	closed *int
}

func (fakeWorld) Size() int      { return 2 }
func (fakeWorld) Name() string   { return "fake" }
func (w fakeWorld) Close() error { *w.closed++; return nil }

// A command started inside a launched job (a pipeline step under
// --launcher mpi) joins the job instead of starting MPI again, and
// closing what it joined leaves the job running; --launcher none there is
// an error, not a silent second world.
func TestLaunchJoinsALaunchedWorld(t *testing.T) {
	closed := 0
	prev := SetWorld(fakeWorld{closed: &closed})
	defer SetWorld(prev)
	c, err := Launch("mpi")
	if err != nil || c.Size() != 2 {
		t.Fatalf("joining: %v %v", c, err)
	}
	if err := c.Close(); err != nil || closed != 0 {
		t.Errorf("closing a joined world closed the job (%d closes, %v)", closed, err)
	}
	if World().Size() != 2 {
		t.Errorf("the world changed to %s", World().Name())
	}
	if _, err := Launch("none"); err == nil || !strings.Contains(err.Error(), "rank 0 of 2 (fake)") {
		t.Errorf("none inside a job: %v", err)
	}
}
