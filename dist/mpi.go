//go:build mpi && cgo

package dist

/*
#cgo pkg-config: ompi-c
#include <mpi.h>
#include <stdlib.h>

// OpenMPI's handles are addresses of library globals, which cgo cannot
// read as constants; these return them.
static MPI_Comm razor_world(void) { return MPI_COMM_WORLD; }
static MPI_Datatype razor_float(void) { return MPI_FLOAT; }
static MPI_Datatype razor_double(void) { return MPI_DOUBLE; }
static MPI_Datatype razor_byte(void) { return MPI_BYTE; }
static MPI_Datatype razor_int(void) { return MPI_INT; }
static MPI_Op razor_sum(void) { return MPI_SUM; }
static void *razor_in_place(void) { return MPI_IN_PLACE; }

static int razor_init(int *provided) {
	int flag = 0;
	MPI_Initialized(&flag);
	if (flag) {
		return MPI_Query_thread(provided);
	}
	return MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
}

static int razor_errors_return(MPI_Comm c) { return MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN); }

static int razor_local_size(MPI_Comm c, int *n) {
	MPI_Comm local;
	int err = MPI_Comm_split_type(c, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
	if (err != MPI_SUCCESS) return err;
	err = MPI_Comm_size(local, n);
	MPI_Comm_free(&local);
	return err;
}

static int razor_version(char *buf, int *n) { return MPI_Get_library_version(buf, n); }
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// MPIBuilt reports whether this binary carries the OpenMPI binding.
const MPIBuilt = true

// mpiComm is MPI_COMM_WORLD. MPI is initialised with
// MPI_THREAD_SERIALIZED: any goroutine may call, one at a time (mu).
type mpiComm struct {
	mu         sync.Mutex
	comm       C.MPI_Comm
	rank, size int
	local      int
	version    string
	closed     bool
}

func openMPI() (Comm, error) {
	var provided C.int
	if rc := C.razor_init(&provided); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Init_thread: %s", mpiError(rc))
	}
	if provided < C.MPI_THREAD_SERIALIZED {
		return nil, fmt.Errorf("the MPI library gives thread level %d, razor needs MPI_THREAD_SERIALIZED (%d)", int(provided), int(C.MPI_THREAD_SERIALIZED))
	}
	c := &mpiComm{comm: C.razor_world()}
	C.razor_errors_return(c.comm)
	var r, s, l C.int
	if rc := C.MPI_Comm_rank(c.comm, &r); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Comm_rank: %s", mpiError(rc))
	}
	if rc := C.MPI_Comm_size(c.comm, &s); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Comm_size: %s", mpiError(rc))
	}
	if rc := C.razor_local_size(c.comm, &l); rc != C.MPI_SUCCESS {
		return nil, fmt.Errorf("MPI_Comm_split_type: %s", mpiError(rc))
	}
	c.rank, c.size, c.local = int(r), int(s), int(l)
	buf := make([]byte, C.MPI_MAX_LIBRARY_VERSION_STRING)
	var n C.int
	if C.razor_version((*C.char)(unsafe.Pointer(&buf[0])), &n) == C.MPI_SUCCESS {
		c.version = strings.TrimSpace(strings.SplitN(string(buf[:n]), ",", 2)[0])
	}
	return c, nil
}

// mpiError is the MPI library's text for an error code.
func mpiError(rc C.int) string {
	buf := make([]byte, C.MPI_MAX_ERROR_STRING)
	var n C.int
	if C.MPI_Error_string(rc, (*C.char)(unsafe.Pointer(&buf[0])), &n) != C.MPI_SUCCESS {
		return fmt.Sprintf("MPI error %d", int(rc))
	}
	return string(buf[:n])
}

func (c *mpiComm) Rank() int      { return c.rank }
func (c *mpiComm) Size() int      { return c.size }
func (c *mpiComm) LocalSize() int { return c.local }
func (c *mpiComm) Name() string {
	return fmt.Sprintf("%s, %d ranks", c.version, c.size)
}

func (c *mpiComm) check(what string, rc C.int) error {
	if rc == C.MPI_SUCCESS {
		return nil
	}
	return fmt.Errorf("rank %d: %s: %s", c.rank, what, mpiError(rc))
}

func (c *mpiComm) AllReduceFloat32(buf []float32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return pieces(len(buf), PieceBytes/4, func(lo, hi int) error {
		return c.check("MPI_Allreduce", C.MPI_Allreduce(C.razor_in_place(), unsafe.Pointer(&buf[lo]), C.int(hi-lo), C.razor_float(), C.razor_sum(), c.comm))
	})
}

func (c *mpiComm) AllReduceFloat64(buf []float64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return pieces(len(buf), PieceBytes/8, func(lo, hi int) error {
		return c.check("MPI_Allreduce", C.MPI_Allreduce(C.razor_in_place(), unsafe.Pointer(&buf[lo]), C.int(hi-lo), C.razor_double(), C.razor_sum(), c.comm))
	})
}

func (c *mpiComm) Broadcast(buf []byte, root int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return pieces(len(buf), PieceBytes, func(lo, hi int) error {
		return c.check("MPI_Bcast", C.MPI_Bcast(unsafe.Pointer(&buf[lo]), C.int(hi-lo), C.razor_byte(), C.int(root), c.comm))
	})
}

func (c *mpiComm) AllGather(data []byte) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := make([]C.int, c.size)
	mine := C.int(len(data))
	if err := c.check("MPI_Allgather", C.MPI_Allgather(unsafe.Pointer(&mine), 1, C.razor_int(), unsafe.Pointer(&counts[0]), 1, C.razor_int(), c.comm)); err != nil {
		return nil, err
	}
	displs := make([]C.int, c.size)
	total := 0
	for i, n := range counts {
		displs[i] = C.int(total)
		total += int(n)
	}
	// C memory: Go must not pass pointers into Go memory that hold Go
	// pointers, and a zero-length Go slice has no address to give.
	recv := C.malloc(C.size_t(max(1, total)))
	defer C.free(recv)
	send := C.malloc(C.size_t(max(1, len(data))))
	defer C.free(send)
	copy(unsafe.Slice((*byte)(send), max(1, len(data))), data)
	if err := c.check("MPI_Allgatherv", C.MPI_Allgatherv(send, mine, C.razor_byte(), recv, &counts[0], &displs[0], C.razor_byte(), c.comm)); err != nil {
		return nil, err
	}
	all := unsafe.Slice((*byte)(recv), max(1, total))
	out := make([][]byte, c.size)
	for i := range out {
		out[i] = append([]byte(nil), all[displs[i]:int(displs[i])+int(counts[i])]...)
	}
	return out, nil
}

func (c *mpiComm) Barrier() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.check("MPI_Barrier", C.MPI_Barrier(c.comm))
}

func (c *mpiComm) Abort(code int) {
	C.MPI_Abort(c.comm, C.int(code))
	os.Exit(code)
}

func (c *mpiComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.check("MPI_Finalize", C.MPI_Finalize())
}
