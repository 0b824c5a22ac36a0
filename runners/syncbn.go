package runners

import (
	"fmt"
	"slices"
	"strings"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/dist"
)

// SyncBNNote is the one log line a run writes when its config asks for
// SyncBN anywhere (a norm_cfg of type SyncBN, with or without an OpenMMLab
// scope), or "" when it does not. In one process synchronised batch norm
// reduces to BN: the batch statistics come from this process's
// samples_per_gpu images, not from every GPU's as in a distributed
// reference run. Under --launcher mpi (dist.World of more than one rank)
// the training-mode statistics are reduced over every rank, forward and
// backward, as PyTorch's SyncBatchNorm does.
func SyncBNNote(cfg *config.Config) string {
	var paths []string
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch t := v.(type) {
		case map[string]any:
			if s, ok := t["type"].(string); ok && s[strings.LastIndex(s, ".")+1:] == "SyncBN" {
				paths = append(paths, path)
			}
			for k, e := range t {
				walk(e, joinKey(path, k))
			}
		case []any:
			for i, e := range t {
				walk(e, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(cfg.Tree(), "")
	if len(paths) == 0 {
		return ""
	}
	slices.Sort(paths)
	where := paths[0]
	if len(paths) > 1 {
		where = fmt.Sprintf("%s and %d more", where, len(paths)-1)
	}
	if n := dist.World().Size(); n > 1 {
		return fmt.Sprintf("SyncBN (%s): batch statistics are reduced over the %d ranks, data.samples_per_gpu images each", where, n)
	}
	return fmt.Sprintf("SyncBN (%s) runs as BN: razor trains in one process, where synchronised batch norm computes what BN computes, over this process's data.samples_per_gpu images per batch", where)
}

// joinKey appends key k to a dotted config path.
func joinKey(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
