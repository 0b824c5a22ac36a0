// Package all imports every built-in razor component for its registration
// side effects. Every tool imports it; a contributor's main imports it next
// to their own packages to get the built-ins and theirs. It may import any
// package that registers components; only commands (and tests) import it.
package all

import (
	// Algorithms (SPOS, DetNAS) and architectures.
	_ "github.com/razorgo/razor/algorithms"
	// Datasets and transforms.
	_ "github.com/razorgo/razor/datasets"
	// Networks and box machinery.
	_ "github.com/razorgo/razor/models/backbones"
	_ "github.com/razorgo/razor/models/bbox"
	_ "github.com/razorgo/razor/models/classifiers"
	_ "github.com/razorgo/razor/models/detectors"
	_ "github.com/razorgo/razor/models/heads"
	_ "github.com/razorgo/razor/models/losses"
	_ "github.com/razorgo/razor/models/necks"
	// Mutables and mutators.
	_ "github.com/razorgo/razor/mutables"
	// Searchers.
	_ "github.com/razorgo/razor/runners/search"
)
