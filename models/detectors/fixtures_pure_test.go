//go:build !openblas

package detectors_test

// referenceFixtures are the reference images TestFasterRCNNMatchesReference
// runs. The pure-Go build's GEMM makes the 1333x800 case take minutes on
// two cores, so it runs in the OpenBLAS build (which CI runs too); this
// build checks the 480x320 image, which goes through the same code.
var referenceFixtures = []string{"frcnn_detnas_480x320.json"}

// runTrainReference says whether TestFasterRCNNTrainingMatchesReference
// runs: a full-width training step takes minutes with the pure-Go GEMM, so
// it runs in the OpenBLAS build.
const runTrainReference = false
