// Package dist is razor's communicator: the few collective operations a
// data-parallel run needs (rank, size, allreduce of sums, broadcast,
// allgather, barrier), as mmcv's dist_utils and torch.distributed give a
// PyTorch run.
//
// A process has one world communicator, World. It is a single-process
// communicator (rank 0 of 1, every collective a no-op) unless a tool was
// started with --launcher mpi, which calls Launch and installs the OpenMPI
// communicator. That one exists only in builds with `-tags mpi` (a thin
// cgo binding to libmpi, pkg-config ompi-c); the default build has no MPI
// and needs no cgo for it. mpirun (or srun) starts the processes; razor
// never starts remote processes itself.
//
// dist imports only the standard library, so the kernels (models/ops, for
// SyncBN) and the runners can both use it.
package dist

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"
)

// Comm is a communicator over a fixed group of processes. Every collective
// must be called by all ranks in the same order with matching sizes; the
// call returns when this rank's part is done.
type Comm interface {
	// Rank is this process's index in [0, Size).
	Rank() int
	// Size is the number of processes.
	Size() int
	// LocalSize is the number of processes of the group on this machine.
	LocalSize() int
	// AllReduceFloat32 replaces buf, on every rank, by the element-wise sum
	// of every rank's buf.
	AllReduceFloat32(buf []float32) error
	// AllReduceFloat64 is AllReduceFloat32 for float64 values.
	AllReduceFloat64(buf []float64) error
	// Broadcast copies root's buf into every other rank's buf (of the same
	// length).
	Broadcast(buf []byte, root int) error
	// AllGather returns every rank's data, indexed by rank, on every rank;
	// the lengths may differ.
	AllGather(data []byte) ([][]byte, error)
	// Barrier returns when every rank has called it.
	Barrier() error
	// Abort ends every process of the group with the exit code, as
	// MPI_Abort does; a single process exits.
	Abort(code int)
	// Close ends the communicator (MPI_Finalize).
	Close() error
	// Name says what the communicator is, for logs ("single process",
	// "OpenMPI 4.1.4, 2 ranks").
	Name() string
}

// PieceBytes bounds one collective call on a large buffer: AllReduce and
// Broadcast cut bigger buffers into pieces of at most this size. On the
// machines razor is developed on, an OpenMPI allreduce of one 32 MiB buffer
// took 50-100x longer than the same data in 4-8 MiB pieces.
const PieceBytes = 4 << 20

var world atomic.Pointer[commBox]

type commBox struct{ c Comm }

// World is the process's world communicator: Single until Launch or
// SetWorld installs another.
func World() Comm {
	if b := world.Load(); b != nil {
		return b.c
	}
	return Single{}
}

// SetWorld installs c as the world communicator and returns the previous
// one (tests put a fake group in place and restore it).
func SetWorld(c Comm) Comm {
	old := World()
	world.Store(&commBox{c})
	return old
}

var step atomic.Pointer[commBox]

// BeginStep marks a data-parallel training step over c until the returned
// function is called: every rank runs the same graph in it, so the layers
// that communicate inside a step (SyncBN, a one-shot algorithm's path
// broadcast) reach their collectives in the same order on every rank. A
// runner wraps each training step in it. Evaluation, which rank 0 may run
// alone, is outside any step and stays local.
func BeginStep(c Comm) (end func()) {
	old := step.Swap(&commBox{c})
	return func() { step.Store(old) }
}

// Step is the communicator of the training step in progress (BeginStep),
// or Single outside one.
func Step() Comm {
	if b := step.Load(); b != nil {
		return b.c
	}
	return Single{}
}

// Distributed reports whether the world has more than one rank.
func Distributed() bool { return World().Size() > 1 }

// Single is the communicator of a process that runs alone: rank 0 of 1.
type Single struct{}

func (Single) Rank() int                            { return 0 }
func (Single) Size() int                            { return 1 }
func (Single) LocalSize() int                       { return 1 }
func (Single) AllReduceFloat32([]float32) error     { return nil }
func (Single) AllReduceFloat64([]float64) error     { return nil }
func (Single) Broadcast([]byte, int) error          { return nil }
func (Single) AllGather(d []byte) ([][]byte, error) { return [][]byte{append([]byte(nil), d...)}, nil }
func (Single) Barrier() error                       { return nil }
func (Single) Abort(code int)                       { os.Exit(code) }
func (Single) Close() error                         { return nil }
func (Single) Name() string                         { return "single process" }

// Launchers are the --launcher values.
var Launchers = []string{"none", "mpi"}

// Launch starts the communicator a --launcher value names and installs it
// as the world: "none" is a single process; "mpi" joins the job mpirun (or
// srun with PMIx/PMI) started. Under mpi it also sets GOMAXPROCS to this
// machine's cores shared among its ranks, unless GOMAXPROCS is set, so two
// ranks on two cores run one thread each instead of four on two.
func Launch(launcher string) (Comm, error) {
	if err := CheckLauncher(launcher); err != nil {
		return nil, err
	}
	_, alone := World().(Single)
	if launcher != "mpi" {
		if !alone {
			return nil, fmt.Errorf("--launcher %s in a process that already runs as rank %d of %d (%s); a command inside a job started with --launcher mpi runs with --launcher mpi", launcherName(launcher), World().Rank(), World().Size(), World().Name())
		}
		return Single{}, nil
	}
	if !alone {
		// A command run inside a job that is already launched (a pipeline
		// step under tools/pipeline --launcher mpi) joins it: MPI starts
		// once a process, and the job ends with the launcher that began it.
		return joined{World()}, nil
	}
	if err := checkMPIEnv(); err != nil {
		return nil, err
	}
	c, err := openMPI()
	if err != nil {
		return nil, err
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.NumCPU()/max(1, c.LocalSize())))
	}
	SetWorld(c)
	return c, nil
}

// joined is the world as a command that joined an already launched job
// sees it: closing it leaves the job to its launcher.
type joined struct{ Comm }

func (joined) Close() error { return nil }

func launcherName(l string) string {
	if l == "" {
		return "none"
	}
	return l
}

// CheckLauncher fails unless launcher is one of Launchers ("" is none).
func CheckLauncher(launcher string) error {
	if launcher == "" || slices.Contains(Launchers, launcher) {
		return nil
	}
	return fmt.Errorf("--launcher %q is not known; use one of %s", launcher, strings.Join(Launchers, ", "))
}

// rankVars are the environment variables that tell a process it was
// started as one rank of a job: OpenMPI's mpirun, PMIx launchers, and
// Slurm's srun or MPICH-style PMI.
var rankVars = [][2]string{
	{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
	{"PMIX_RANK", ""},
	{"PMI_RANK", "PMI_SIZE"},
}

// checkMPIEnv fails when no launcher started this process: MPI_Init outside
// mpirun quietly gives a world of one rank, which would train alone while
// the user believes the job is distributed.
func checkMPIEnv() error {
	for _, v := range rankVars {
		r := os.Getenv(v[0])
		if r == "" {
			continue
		}
		if _, err := strconv.Atoi(r); err != nil {
			return fmt.Errorf("--launcher mpi: %s=%q is not a rank number", v[0], r)
		}
		return nil
	}
	return errors.New("--launcher mpi: this process was not started by mpirun or srun (none of OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK is set); run it as `mpirun -np N <command> --launcher mpi` (as root add --allow-run-as-root; more ranks than cores need --oversubscribe), or use --launcher none for one process")
}

// AllReduceMean replaces buf on every rank by the element-wise mean of
// every rank's buf.
func AllReduceMean(c Comm, buf []float32) error {
	if c.Size() == 1 {
		return nil
	}
	if err := c.AllReduceFloat32(buf); err != nil {
		return err
	}
	inv := 1 / float32(c.Size())
	for i := range buf {
		buf[i] *= inv
	}
	return nil
}

// BroadcastFloat32 copies root's values into every rank's buf.
func BroadcastFloat32(c Comm, buf []float32, root int) error {
	if c.Size() == 1 || len(buf) == 0 {
		return nil
	}
	return c.Broadcast(unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), 4*len(buf)), root)
}

// BroadcastJSON sets *v on every rank to rank 0's value, sent as JSON.
func BroadcastJSON(c Comm, v any) error {
	if c.Size() == 1 {
		return nil
	}
	var data []byte
	if c.Rank() == 0 {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		data = b
	}
	n := make([]byte, 8)
	binary.LittleEndian.PutUint64(n, uint64(len(data)))
	if err := c.Broadcast(n, 0); err != nil {
		return err
	}
	size := binary.LittleEndian.Uint64(n)
	if size > math.MaxInt32 {
		return fmt.Errorf("broadcast of %d bytes", size)
	}
	if c.Rank() != 0 {
		data = make([]byte, size)
	}
	if size > 0 {
		if err := c.Broadcast(data, 0); err != nil {
			return err
		}
	}
	if c.Rank() == 0 {
		return nil
	}
	return json.Unmarshal(data, v)
}

// pieces calls f on consecutive pieces of at most per elements of n.
func pieces(n, per int, f func(lo, hi int) error) error {
	for lo := 0; lo < n; lo += per {
		if err := f(lo, min(n, lo+per)); err != nil {
			return err
		}
	}
	return nil
}
