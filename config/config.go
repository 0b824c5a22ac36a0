// Package config loads layered experiment configs: YAML or JSON files with
// `_base_` inheritance, `_delete_`, `{{...}}` variables, `${ expr }`
// expressions and `--cfg-options` overrides, with the semantics users know
// from mmcv/mmengine.
//
// A loaded Config is a tree of map[string]any, []any and the scalars int,
// float64, bool, string and nil, together with the origin (file and line, or
// override) of every value.
//
// config sits at the bottom of razor: it imports no razor package, only
// its YAML parser and expression engine, so every layer can read configs.
package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Config is a merged and resolved experiment config.
type Config struct {
	// File is the config file the tree was loaded from, as given to Load.
	File string
	// Warnings holds what loading noticed but accepted, such as an override
	// of a key that no file defines.
	Warnings []string

	tree    map[string]any
	origins origins
}

// Options tune Load.
type Options struct {
	// Overrides are --cfg-options pairs `KEY=VALUE`, applied in order after
	// inheritance.
	Overrides []string
	// Strict refuses an override of a key that no file defines, instead of
	// creating it with a warning.
	Strict bool
	// NoExpressions leaves `${ ... }` values unevaluated (print_config --raw).
	NoExpressions bool
}

// Load reads a config file with everything it inherits, applies the
// overrides and evaluates expressions.
func Load(file string, opts Options) (*Config, error) {
	l := &loader{}
	res, err := l.loadFile(file, nil)
	if err != nil {
		return nil, err
	}
	c := &Config{File: file, tree: res.tree, origins: res.origins}
	for _, kv := range opts.Overrides {
		if err := c.applyOverride(kv, opts.Strict, l.rank+1); err != nil {
			return nil, err
		}
	}
	if !opts.NoExpressions {
		if err := c.evalExpressions(); err != nil {
			return nil, fmt.Errorf("config %s: %w", file, err)
		}
	}
	return c, nil
}

// FromMap wraps a tree built in code. The tree is normalized and copied.
func FromMap(tree map[string]any) (*Config, error) {
	n, err := normalize(tree)
	if err != nil {
		return nil, err
	}
	c := &Config{tree: n.(map[string]any), origins: origins{}}
	if err := c.evalExpressions(); err != nil {
		return nil, err
	}
	return c, nil
}

// Tree returns the merged config tree. Callers must not modify it; use Set.
func (c *Config) Tree() map[string]any { return c.tree }

// Get returns the value at a dotted key (`a.b.0.c` or `a.b[0].c`).
func (c *Config) Get(key string) (any, bool) {
	p, err := ParsePath(key)
	if err != nil {
		return nil, false
	}
	return Lookup(c.tree, p)
}

// Has reports whether a dotted key exists.
func (c *Config) Has(key string) bool {
	_, ok := c.Get(key)
	return ok
}

// Sub returns the mapping at key, or an error naming the key when it is
// missing or not a mapping.
func (c *Config) Sub(key string) (map[string]any, error) {
	v, ok := c.Get(key)
	if !ok {
		return nil, fmt.Errorf("%s is not set%s", key, suggestion(key, c.tree))
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		return nil, fmt.Errorf("%s must be a mapping, not %s", key, kindName(v))
	}
	return m, nil
}

// String returns the string at key, or def when the key is absent.
func (c *Config) String(key, def string) (string, error) {
	v, ok := c.Get(key)
	if !ok || v == nil {
		return def, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", fmt.Errorf("%s must be a string, not %s", key, describe(v))
	}
	return s, nil
}

// Int returns the integer at key, or def when the key is absent. A float
// with no fractional part (300e6) counts as an integer.
func (c *Config) Int(key string, def int) (int, error) {
	v, ok := c.Get(key)
	if !ok || v == nil {
		return def, nil
	}
	switch t := v.(type) {
	case int:
		return t, nil
	case float64:
		if t == float64(int(t)) {
			return int(t), nil
		}
	}
	return 0, fmt.Errorf("%s must be a whole number, not %s", key, describe(v))
}

// Float returns the number at key, or def when the key is absent.
func (c *Config) Float(key string, def float64) (float64, error) {
	v, ok := c.Get(key)
	if !ok || v == nil {
		return def, nil
	}
	switch t := v.(type) {
	case int:
		return float64(t), nil
	case float64:
		return t, nil
	}
	return 0, fmt.Errorf("%s must be a number, not %s", key, describe(v))
}

// Bool returns the bool at key, or def when the key is absent.
func (c *Config) Bool(key string, def bool) (bool, error) {
	v, ok := c.Get(key)
	if !ok || v == nil {
		return def, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, fmt.Errorf("%s must be true or false, not %s", key, describe(v))
	}
	return b, nil
}

// Decode strictly decodes the subtree at key into out (a pointer to a
// struct, map, slice or scalar); see Decode for the rules.
func (c *Config) Decode(key string, out any) error {
	v, ok := c.Get(key)
	if !ok {
		return fmt.Errorf("%s is not set%s", key, suggestion(key, c.tree))
	}
	return Decode(v, key, out)
}

// Set stores value at a dotted key, creating mappings on the way, and records
// where it came from (empty means set in code).
func (c *Config) Set(key string, value any) error {
	p, err := ParsePath(key)
	if err != nil {
		return err
	}
	v, err := normalize(value)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	_, err = c.set(p, v, Origin{})
	return err
}

// Origin returns where the value at key was set.
func (c *Config) Origin(key string) (Origin, bool) {
	p, err := ParsePath(key)
	if err != nil {
		return Origin{}, false
	}
	o, ok := c.origins[p.String()]
	return o, ok
}

// set writes v at p. It reports whether the path existed before.
func (c *Config) set(p Path, v any, o Origin) (bool, error) {
	var cur any = c.tree
	existed := true
	for i, elem := range p {
		last := i == len(p)-1
		prefix := p[:i+1].String()
		switch t := cur.(type) {
		case map[string]any:
			next, ok := t[elem]
			if last {
				if !ok {
					existed = false
				}
				t[elem] = v
				break
			}
			if !ok || next == nil {
				existed = false
				next = map[string]any{}
				t[elem] = next
				c.origins[prefix] = o
			}
			cur = next
		case []any:
			idx, ok := isIndex(elem)
			if !ok {
				return false, fmt.Errorf("%s: %s is a list; address its elements by index (%s.0 or %s[0]), not %q", p, p[:i], p[:i], p[:i], elem)
			}
			if idx >= len(t) {
				return false, fmt.Errorf("%s: index %d is past the end of %s, which has %d element(s)", p, idx, p[:i], len(t))
			}
			if last {
				t[idx] = v
				break
			}
			cur = t[idx]
		default:
			return false, fmt.Errorf("%s: %s is %s, so it has no key %q", p, p[:i], describe(t), elem)
		}
	}
	c.origins.dropUnder(p.String())
	markOrigins(v, p.String(), o, c.origins)
	return existed, nil
}

// markOrigins records o for every value in v.
func markOrigins(v any, path string, o Origin, org origins) {
	org[path] = o
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			markOrigins(e, join(path, k), o, org)
		}
	case []any:
		for i, e := range t {
			markOrigins(e, join(path, strconv.Itoa(i)), o, org)
		}
	}
}

// applyOverride parses and applies one --cfg-options pair.
func (c *Config) applyOverride(kv string, strict bool, rank int) error {
	key, raw, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("--cfg-options %q: expected KEY=VALUE", kv)
	}
	key = strings.TrimSpace(key)
	p, err := ParsePath(key)
	if err != nil {
		return fmt.Errorf("--cfg-options %q: %w", kv, err)
	}
	v, err := ParseValue(raw)
	if err != nil {
		return fmt.Errorf("--cfg-options %q: %w", kv, err)
	}
	p = Regroup(c.tree, p)
	_, exists := Lookup(c.tree, p)
	if !exists {
		msg := fmt.Sprintf("--cfg-options %s: no config file sets %s; it will be created%s", kv, p, suggestion(p.String(), c.tree))
		if strict {
			return fmt.Errorf("%s (refused by --strict-overrides)", strings.Replace(msg, "; it will be created", "", 1))
		}
		c.Warnings = append(c.Warnings, msg)
	}
	if _, err := c.set(p, v, Origin{Override: kv, rank: rank}); err != nil {
		return fmt.Errorf("--cfg-options %q: %w", kv, err)
	}
	return nil
}

// describe names a value and its kind for error messages.
func describe(v any) string {
	switch t := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", t)
	case map[string]any, []any, nil:
		return kindName(v)
	default:
		return fmt.Sprintf("%s (%v)", kindName(v), v)
	}
}

// suggestion returns ` (did you mean "x"?)` naming the existing key closest
// to key, or "" when nothing is close.
func suggestion(key string, tree any) string {
	var paths []string
	allPaths(tree, nil, &paths)
	best := Closest(key, paths)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// Closest returns the candidate nearest to s by edit distance, or "" when
// none is within a third of s's length (at least 2 edits).
func Closest(s string, candidates []string) string {
	limit := len(s) / 3
	if limit < 2 {
		limit = 2
	}
	best, bestD := "", limit+1
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
