package mutables

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/razorgo/razor/config"
)

// ReadSubnetFile reads a subnet (`mutable_cfg`) file in either format mmrazor
// writes and checks it against the space:
//
//   - 0.x, keyed by space id, the chosen op in a one-element list:
//     `stage_0_block_0: {chosen: [shuffle_7x7]}`;
//   - 1.x, keyed by module path, the chosen op as a string:
//     `backbone.layers.0.0: {chosen: shuffle_7x7}`.
func ReadSubnetFile(path string, space *Space) (Subnet, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("subnet file %s does not exist", path)
		}
		return nil, fmt.Errorf("subnet file %s: %w", path, err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("subnet file %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	sub, err := ParseSubnet(doc, space)
	if err != nil {
		return nil, fmt.Errorf("subnet file %s: %w", path, err)
	}
	return sub, nil
}

// ParseSubnet reads a subnet from a decoded mapping in either file format
// (see ReadSubnetFile), as it appears inline in a config.
func ParseSubnet(doc any, space *Space) (Subnet, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a subnet must be a mapping from block to {chosen: op}, not %T", doc)
	}
	sub := Subnet{}
	for _, key := range sortedKeys(m) {
		blk, ok := space.Block(key)
		if !ok {
			hint := ""
			if c := config.Closest(key, append(space.IDs(), paths(space)...)); c != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", c)
			}
			return nil, fmt.Errorf("block %q is not in the search space%s; blocks are %s", key, hint, space.describeIDs())
		}
		if _, dup := sub[blk.ID]; dup {
			return nil, fmt.Errorf("block %s is given twice (by id and by module path)", blk.ID)
		}
		op, err := chosenOp(m[key])
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", key, err)
		}
		sub[blk.ID] = op
	}
	if err := space.Validate(sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// chosenOp reads `{chosen: [op]}`, `{chosen: op}` or a bare op name.
func chosenOp(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case map[string]any:
		c, ok := t["chosen"]
		if !ok {
			return "", fmt.Errorf("expected {chosen: [op]}, found keys %s", strings.Join(sortedKeys(t), ", "))
		}
		for k := range t {
			if k != "chosen" {
				return "", fmt.Errorf("unexpected key %q beside chosen", k)
			}
		}
		switch ct := c.(type) {
		case string:
			return ct, nil
		case []any:
			if len(ct) != 1 {
				return "", fmt.Errorf("chosen must name exactly one op for a one-shot block, got %d", len(ct))
			}
			s, ok := ct[0].(string)
			if !ok {
				return "", fmt.Errorf("chosen op must be a name, not %v", ct[0])
			}
			return s, nil
		}
		return "", fmt.Errorf("chosen must be an op name or a list of one, not %v", c)
	default:
		return "", fmt.Errorf("expected {chosen: [op]}, not %v", v)
	}
}

// FormatSubnet writes sub in mmrazor 0.x's format, byte for byte as its
// writer (PyYAML, block style, sorted keys) produces:
//
//	stage_0_block_0:
//	  chosen:
//	  - shuffle_7x7
func FormatSubnet(sub Subnet) []byte {
	var sb strings.Builder
	keys := make([]string, 0, len(sub))
	for k := range sub {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s:\n  chosen:\n  - %s\n", k, sub[k])
	}
	return []byte(sb.String())
}

// WriteSubnetFile writes sub in mmrazor 0.x's format atomically.
func WriteSubnetFile(path string, sub Subnet) error {
	return config.WriteFileAtomic(path, FormatSubnet(sub))
}

func paths(s *Space) []string {
	var out []string
	for _, b := range s.Blocks {
		if b.Path != "" {
			out = append(out, b.Path)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
