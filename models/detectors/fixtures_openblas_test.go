//go:build openblas

package detectors_test

// referenceFixtures are the reference images TestFasterRCNNMatchesReference
// runs: both, the 1333x800 one at mmdet's test scale.
var referenceFixtures = []string{"frcnn_detnas_480x320.json", "frcnn_detnas_1333x800.json"}

// runTrainReference says whether TestFasterRCNNTrainingMatchesReference
// runs.
const runTrainReference = true
