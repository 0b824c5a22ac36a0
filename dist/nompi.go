//go:build !(mpi && cgo)

package dist

import "errors"

// MPIBuilt reports whether this binary carries the OpenMPI binding.
const MPIBuilt = false

// openMPI fails in a build without the OpenMPI binding.
func openMPI() (Comm, error) {
	return nil, errors.New("--launcher mpi: this binary was built without MPI; build it with `-tags mpi` (needs cgo and Debian's libopenmpi-dev, pkg-config ompi-c), e.g. `go build -tags mpi ./tools/train`")
}
