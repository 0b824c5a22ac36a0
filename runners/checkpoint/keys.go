package checkpoint

import (
	"fmt"
	"sort"
	"strings"

	"gorgonia.org/tensor"
)

// PrefixRule renames every key that starts with From so that it starts with
// To instead. An empty To strips the prefix; an empty From adds To to every
// key.
type PrefixRule struct {
	// From is the prefix to match.
	From string
	// To replaces it.
	To string
}

// Remap renames the keys of a state dict by the first rule whose From
// prefixes each key. Keys no rule matches are kept unchanged, or dropped when
// dropUnmatched is set (as when loading only a sub-model, for example taking
// "architecture.model.backbone." from a whole classifier). Two keys that end
// up with the same name are an error naming both.
//
// Examples: strip mmrazor's wrapper with {From: "architecture.model.", To: ""};
// load a plain backbone into an mmrazor-style model with
// {From: "backbone.", To: "architecture.model.backbone."}; strip
// DataParallel's wrapper, as mmcv always does, with {From: "module.", To: ""}.
func Remap(sd map[string]*tensor.Dense, rules []PrefixRule, dropUnmatched bool) (map[string]*tensor.Dense, error) {
	out := make(map[string]*tensor.Dense, len(sd))
	from := make(map[string]string, len(sd))
	for _, k := range sortedKeys(sd) {
		nk, matched := k, false
		for _, r := range rules {
			if rest, ok := strings.CutPrefix(k, r.From); ok {
				nk, matched = r.To+rest, true
				break
			}
		}
		if !matched && dropUnmatched {
			continue
		}
		if prev, dup := from[nk]; dup {
			return nil, fmt.Errorf("remap keys: %q and %q both become %q", prev, k, nk)
		}
		from[nk] = k
		out[nk] = sd[k]
	}
	return out, nil
}

// sortedKeys returns the keys of a tensor map in order, for stable results
// and messages.
func sortedKeys(m map[string]*tensor.Dense) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
