package config

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"
)

// YAML writes the config as YAML. Keys keep the order in which the files
// define them (bases first); keys set by overrides or code come last. With
// provenance, each leaf carries a comment naming the file and line, or the
// override, that set it.
func (c *Config) YAML(provenance bool) ([]byte, error) {
	n := c.node(c.tree, "", provenance)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("writing config as YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing config as YAML: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteFile dumps the config as YAML to path atomically (temp file, then
// rename), so a reader never sees half a file.
func (c *Config) WriteFile(path string) error {
	data, err := c.YAML(false)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, data)
}

// WriteFileAtomic writes data to a temp file beside path, syncs it and
// renames it over path.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	// CreateTemp makes the file private; the result is an ordinary file.
	cherr := f.Chmod(0o644)
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	for _, e := range []error{cherr, werr, serr, cerr} {
		if e != nil {
			os.Remove(tmp)
			return fmt.Errorf("writing %s: %w", path, e)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// node converts a tree value into a YAML node.
func (c *Config) node(v any, path string, provenance bool) *yaml.Node {
	switch t := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range c.orderedKeys(t, path) {
			kn := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}
			n.Content = append(n.Content, kn, c.node(t[k], join(path, k), provenance))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		flow := len(t) > 0 && !provenance
		for i, e := range t {
			switch e.(type) {
			case map[string]any, []any:
				flow = false
			}
			n.Content = append(n.Content, c.node(e, join(path, strconv.Itoa(i)), provenance))
		}
		if flow {
			n.Style = yaml.FlowStyle
		}
		if len(t) == 0 {
			n.Style = yaml.FlowStyle
			c.comment(n, path, provenance)
		}
		return n
	default:
		n := scalarNode(t)
		c.comment(n, path, provenance)
		return n
	}
}

func (c *Config) comment(n *yaml.Node, path string, provenance bool) {
	if !provenance {
		return
	}
	if o, ok := c.origins[path]; ok {
		n.LineComment = o.String()
	} else {
		n.LineComment = "(set in code)"
	}
}

// scalarNode writes a scalar so that it reads back with the same type.
func scalarNode(v any) *yaml.Node {
	switch t := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t)}
	case int:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(t)}
	case float64:
		var s string
		switch {
		case math.IsInf(t, 1):
			s = ".inf"
		case math.IsInf(t, -1):
			s = "-.inf"
		case math.IsNaN(t):
			s = ".nan"
		default:
			s = strconv.FormatFloat(t, 'g', -1, 64)
			if _, err := strconv.Atoi(s); err == nil {
				s += ".0"
			}
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}
	default:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: fmt.Sprint(t)}
	}
}

// orderedKeys sorts a mapping's keys by where they were first defined.
func (c *Config) orderedKeys(m map[string]any, path string) []string {
	keys := sortedKeys(m)
	type pos struct{ rank, line, col int }
	at := func(k string) pos {
		o, ok := c.origins[join(path, k)]
		if !ok {
			return pos{math.MaxInt, 0, 0}
		}
		if o.sortAt != nil {
			o = *o.sortAt
		}
		if o.Override != "" {
			return pos{math.MaxInt - 1, o.rank, 0}
		}
		return pos{o.rank, o.Line, o.column}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := at(keys[i]), at(keys[j])
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		if a.line != b.line {
			return a.line < b.line
		}
		return a.col < b.col
	})
	return keys
}
