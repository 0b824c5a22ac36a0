package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// A config tree is made of map[string]any (mappings), []any (lists) and the
// scalars int, float64, bool, string and nil. Every function in this package
// that accepts or returns a tree keeps to these types.

// Path is a parsed dotted key: each element is a mapping key or, where the
// element is all digits, a list index.
type Path []string

// ParsePath splits a dotted key such as `data.train.pipeline.1.flip_ratio` or
// `data.train.pipeline[1].flip_ratio` into its elements. Both spellings of a
// list index give the same Path.
func ParsePath(key string) (Path, error) {
	if strings.TrimSpace(key) == "" {
		return nil, fmt.Errorf("empty key")
	}
	var p Path
	for _, part := range strings.Split(key, ".") {
		name := part
		var idx []string
		if i := strings.IndexByte(part, '['); i >= 0 {
			name = part[:i]
			rest := part[i:]
			for rest != "" {
				if rest[0] != '[' {
					return nil, fmt.Errorf("key %q: unexpected %q after an index; write a[1].b or a.1.b", key, rest)
				}
				end := strings.IndexByte(rest, ']')
				if end < 0 {
					return nil, fmt.Errorf("key %q: missing ']'", key)
				}
				n := rest[1:end]
				if _, err := strconv.Atoi(n); err != nil {
					return nil, fmt.Errorf("key %q: list index %q is not a whole number", key, n)
				}
				idx = append(idx, n)
				rest = rest[end+1:]
			}
		}
		if name == "" && len(idx) == 0 {
			return nil, fmt.Errorf("key %q has an empty part", key)
		}
		if name != "" {
			p = append(p, name)
		}
		p = append(p, idx...)
	}
	return p, nil
}

// String joins the path back into dotted form.
func (p Path) String() string { return strings.Join(p, ".") }

// child returns p extended by one element, never aliasing p's storage.
func (p Path) child(elem string) Path {
	out := make(Path, len(p)+1)
	copy(out, p)
	out[len(p)] = elem
	return out
}

// isIndex reports whether a path element addresses a list element.
func isIndex(elem string) (int, bool) {
	if elem == "" {
		return 0, false
	}
	for _, r := range elem {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(elem)
	return n, err == nil
}

// Lookup walks tree along path and returns the value there.
func Lookup(tree any, path Path) (any, bool) {
	cur := tree
	for _, elem := range path {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[elem]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, ok := isIndex(elem)
			if !ok || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// Regroup rewrites path so that elements naming a literal dotted key of a
// mapping become that one key: a pipeline step's `cfg_options:
// {runner.max_epochs: 4}` is a mapping with the key "runner.max_epochs", and
// the override `steps.2.cfg_options.runner.max_epochs=2` means that key, not
// a new nested runner.max_epochs beside it. At each mapping the longest run
// of elements that is one of its keys wins; the rest of a path that leaves
// the tree is kept as it is.
func Regroup(tree any, path Path) Path {
	out := make(Path, 0, len(path))
	cur := tree
	for i := 0; i < len(path); {
		switch c := cur.(type) {
		case map[string]any:
			j := len(path)
			for ; j > i+1; j-- {
				if _, ok := c[strings.Join(path[i:j], ".")]; ok {
					break
				}
			}
			key := strings.Join(path[i:j], ".")
			v, ok := c[key]
			out = append(out, key)
			i = j
			if !ok {
				return append(out, path[i:]...)
			}
			cur = v
		case []any:
			idx, ok := isIndex(path[i])
			out = append(out, path[i])
			i++
			if !ok || idx >= len(c) {
				return append(out, path[i:]...)
			}
			cur = c[idx]
		default:
			return append(out, path[i:]...)
		}
	}
	return out
}

// DeepCopy returns a copy of a tree that shares no mappings or lists with it.
func DeepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = DeepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = DeepCopy(e)
		}
		return out
	default:
		return v
	}
}

// kindName names the kind of a tree value for error messages.
func kindName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case int:
		return "an integer"
	case float64:
		return "a number"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// sortedKeys returns the keys of m in lexical order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// allPaths lists every mapping key and list element path in tree, depth
// first, for suggestions.
func allPaths(tree any, prefix Path, out *[]string) {
	switch t := tree.(type) {
	case map[string]any:
		for _, k := range sortedKeys(t) {
			p := prefix.child(k)
			*out = append(*out, p.String())
			allPaths(t[k], p, out)
		}
	case []any:
		for i, e := range t {
			p := prefix.child(strconv.Itoa(i))
			*out = append(*out, p.String())
			allPaths(e, p, out)
		}
	}
}

// normalize converts values decoded by YAML or produced by expressions into
// the tree's value types (int, float64, bool, string, nil, []any,
// map[string]any).
func normalize(v any) (any, error) {
	switch t := v.(type) {
	case nil, bool, string, float64, int:
		return t, nil
	case int8:
		return int(t), nil
	case int16:
		return int(t), nil
	case int32:
		return int(t), nil
	case int64:
		return int(t), nil
	case uint:
		return int(t), nil
	case uint8:
		return int(t), nil
	case uint16:
		return int(t), nil
	case uint32:
		return int(t), nil
	case uint64:
		return int(t), nil
	case float32:
		return float64(t), nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = n
		}
		return out, nil
	case []string:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = e
		}
		return out, nil
	case []int:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = e
		}
		return out, nil
	case []float64:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = e
		}
		return out, nil
	default:
		return nil, fmt.Errorf("value of type %T cannot be stored in a config", v)
	}
}
