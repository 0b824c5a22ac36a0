// Package contrib is what a contributor writes to extend razor without
// editing it: a differentiable NAS algorithm with architecture weights and
// an optimizer of its own (DiffNAS, over the MixedOpNet backbone), a hook
// (ParamNormHook), a metric (MeanClassAccuracy) and an optimizer (Signum).
// Each registers itself in init with razor's typed registries and uses only
// razor's exported API; cmd/train is the main that trains any of them with
// every flag of tools/train, and configs/ holds a config that uses all four.
//
// contrib may import any razor package; razor imports nothing of it.
package contrib
