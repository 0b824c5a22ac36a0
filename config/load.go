package config

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Origin says where a value in a merged config came from: a line of a file,
// or a command-line override.
type Origin struct {
	File     string // the config file, as the user named it (empty for an override)
	Line     int    // 1-based line in File
	Override string // the KEY=VALUE pair that set the value, when set from the command line
	Via      string // the expression (and its place) that copied the value here, if any
	rank     int    // load order of the file (bases before children), overrides last
	column   int    // 1-based column, to order keys of one flow mapping
	// sortAt, when set, places the key for dumping instead of File/Line: a
	// value copied by an expression sits where the expression was written.
	sortAt *Origin
}

// String formats the origin as `file:line` or `--cfg-options KEY=VALUE`.
func (o Origin) String() string {
	var s string
	switch {
	case o.Override != "":
		s = "--cfg-options " + o.Override
	case o.File == "":
		s = "(set in code)"
	default:
		s = fmt.Sprintf("%s:%d", o.File, o.Line)
	}
	if o.Via != "" {
		s += " via " + o.Via
	}
	return s
}

// origins maps a dotted path to the origin of the value at that path.
type origins map[string]Origin

// dropUnder removes the origins of p and of everything below it.
func (o origins) dropUnder(p string) {
	for k := range o {
		if under(k, p) {
			delete(o, k)
		}
	}
}

// copyUnder copies the origins of everything at or below src in from into o,
// re-rooted at dst.
func (o origins) copyUnder(from origins, src, dst string) {
	for k, v := range from {
		if under(k, src) {
			o[dst+k[len(src):]] = v
		}
	}
}

// under reports whether path k is p or lies below p.
func under(k, p string) bool {
	if p == "" {
		return true
	}
	return k == p || strings.HasPrefix(k, p+".")
}

// join appends a key to a dotted path.
func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

var (
	predefinedRe = regexp.MustCompile(`\{\{\s*(fileDirname|fileBasename|fileBasenameNoExtension|fileExtname)\s*\}\}`)
	envRe        = regexp.MustCompile(`\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*(?::([^}]*))?\}\}`)
	baseRefRe    = regexp.MustCompile(`\{\{\s*_base_\.([A-Za-z0-9_.\[\]]+)\s*\}\}`)
	placeholder  = regexp.MustCompile(`__razor_base_ref_([0-9]+)__`)
	unknownVarRe = regexp.MustCompile(`\{\{[^}]*\}\}`)
)

// loader reads config files, following _base_ chains.
type loader struct {
	rank int // files finished so far; orders keys for dumping
}

// fileResult is one file with its bases merged in.
type fileResult struct {
	tree    map[string]any
	origins origins
}

// loadFile reads one config file and everything it inherits. chain holds the
// files being loaded above it, to report cycles.
func (l *loader) loadFile(name string, chain []string) (*fileResult, error) {
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	for i, c := range chain {
		if c == abs {
			cycle := append(append([]string{}, chain[i:]...), abs)
			for j := range cycle {
				cycle[j] = displayPath(cycle[j])
			}
			return nil, fmt.Errorf("config %s: _base_ cycle: %s", displayPath(abs), strings.Join(cycle, " -> "))
		}
	}
	chain = append(chain, abs)
	ext := strings.ToLower(filepath.Ext(abs))
	if ext != ".yaml" && ext != ".yml" && ext != ".json" {
		return nil, fmt.Errorf("config %s: unsupported file type %q; use .yaml, .yml or .json", name, ext)
	}
	raw, err := os.ReadFile(abs)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("config %s: file does not exist", displayPath(abs))
		}
		return nil, fmt.Errorf("config %s: %w", displayPath(abs), err)
	}
	text, refs, err := substituteText(string(raw), abs)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", displayPath(abs), err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("config %s: %s", displayPath(abs), strings.TrimPrefix(err.Error(), "yaml: "))
	}
	shown := displayPath(abs)
	conv := converter{file: shown, origins: origins{}}
	tree := map[string]any{}
	if doc.Kind != 0 && len(doc.Content) > 0 {
		v, err := conv.value(doc.Content[0], "")
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", shown, err)
		}
		m, ok := v.(map[string]any)
		if !ok && v != nil {
			return nil, fmt.Errorf("config %s: the top level must be a mapping, not %s", shown, kindName(v))
		}
		if m != nil {
			tree = m
		}
	}

	baseNames, err := baseList(tree, shown)
	if err != nil {
		return nil, err
	}
	delete(tree, "_base_")
	delete(conv.origins, "_base_")

	bases := &fileResult{tree: map[string]any{}, origins: origins{}}
	keyFile := map[string]string{}
	for _, b := range baseNames {
		bp := b
		if !filepath.IsAbs(bp) {
			bp = filepath.Join(filepath.Dir(abs), b)
		}
		br, err := l.loadFile(bp, chain)
		if err != nil {
			return nil, err
		}
		for _, k := range sortedKeys(br.tree) {
			if prev, dup := keyFile[k]; dup {
				return nil, fmt.Errorf("config %s: duplicate key %q among bases: set by both %s and %s", shown, k, prev, displayPath(bp))
			}
			keyFile[k] = displayPath(bp)
			bases.tree[k] = br.tree[k]
		}
		for k, o := range br.origins {
			bases.origins[k] = o
		}
	}

	l.rank++
	for k, o := range conv.origins {
		o.rank = l.rank
		conv.origins[k] = o
	}
	if len(refs) > 0 {
		v, err := resolveBaseRefs(tree, "", refs, bases, conv.origins, shown)
		if err != nil {
			return nil, err
		}
		tree = v.(map[string]any)
	}
	merged := bases.tree
	if err := mergeInto(merged, tree, "", bases.origins, conv.origins, shown); err != nil {
		return nil, err
	}
	return &fileResult{tree: merged, origins: bases.origins}, nil
}

// baseList reads the _base_ key: a path or a list of paths.
func baseList(tree map[string]any, file string) ([]string, error) {
	b, ok := tree["_base_"]
	if !ok || b == nil {
		return nil, nil
	}
	switch t := b.(type) {
	case string:
		return []string{t}, nil
	case []any:
		out := make([]string, 0, len(t))
		for i, e := range t {
			s, ok := e.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("config %s: _base_[%d] must be a file path, not %s", file, i, kindName(e))
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("config %s: _base_ must be a file path or a list of paths, not %s", file, kindName(b))
	}
}

// substituteText replaces the predefined file variables and environment
// variables in a file's text, and swaps each {{_base_.x}} reference for a
// placeholder that parses as a plain YAML scalar. It returns the dotted keys
// the placeholders stand for.
func substituteText(text, abs string) (string, []string, error) {
	base := filepath.Base(abs)
	ext := filepath.Ext(abs)
	vars := map[string]string{
		"fileDirname":             filepath.Dir(abs),
		"fileBasename":            base,
		"fileBasenameNoExtension": strings.TrimSuffix(base, ext),
		"fileExtname":             ext,
	}
	text = predefinedRe.ReplaceAllStringFunc(text, func(m string) string {
		return vars[predefinedRe.FindStringSubmatch(m)[1]]
	})
	var envErr error
	text = envRe.ReplaceAllStringFunc(text, func(m string) string {
		sm := envRe.FindStringSubmatch(m)
		if v, ok := os.LookupEnv(sm[1]); ok {
			return v
		}
		if strings.Contains(m, ":") {
			return sm[2]
		}
		if envErr == nil {
			envErr = fmt.Errorf("environment variable %s is not set and %s gives no default; write {{$%s:default}}", sm[1], m, sm[1])
		}
		return m
	})
	if envErr != nil {
		return "", nil, envErr
	}
	var refs []string
	text = baseRefRe.ReplaceAllStringFunc(text, func(m string) string {
		refs = append(refs, baseRefRe.FindStringSubmatch(m)[1])
		return fmt.Sprintf("__razor_base_ref_%d__", len(refs)-1)
	})
	if m := unknownVarRe.FindString(text); m != "" {
		return "", nil, fmt.Errorf("unknown variable %s; known: {{fileDirname}}, {{fileBasename}}, {{fileBasenameNoExtension}}, {{fileExtname}}, {{$ENV_NAME:default}}, {{_base_.key}}", m)
	}
	return text, refs, nil
}

// resolveBaseRefs replaces placeholder strings with the values they refer to
// in the merged bases. A whole-value reference keeps the value's type; a
// reference inside a longer string is formatted into it.
func resolveBaseRefs(v any, path string, refs []string, bases *fileResult, org origins, file string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(t) {
			nv, err := resolveBaseRefs(t[k], join(path, k), refs, bases, org, file)
			if err != nil {
				return nil, err
			}
			t[k] = nv
		}
		return t, nil
	case []any:
		for i := range t {
			nv, err := resolveBaseRefs(t[i], join(path, fmt.Sprint(i)), refs, bases, org, file)
			if err != nil {
				return nil, err
			}
			t[i] = nv
		}
		return t, nil
	case string:
		lookup := func(idx string) (any, string, error) {
			key := refs[atoi(idx)]
			p, err := ParsePath(key)
			if err != nil {
				return nil, "", fmt.Errorf("config %s: %s: {{_base_.%s}}: %w", file, path, key, err)
			}
			val, ok := Lookup(bases.tree, p)
			if !ok {
				return nil, "", fmt.Errorf("config %s: %s: {{_base_.%s}} names no key of the bases%s", file, path, key, suggestion(key, bases.tree))
			}
			return val, p.String(), nil
		}
		if m := placeholder.FindStringSubmatch(t); m != nil && m[0] == t {
			val, src, err := lookup(m[1])
			if err != nil {
				return nil, err
			}
			keep := org[path]
			org.dropUnder(path)
			org.copyUnder(bases.origins, src, path)
			if _, ok := org[path]; !ok {
				org[path] = keep
			}
			return DeepCopy(val), nil
		}
		var err error
		out := placeholder.ReplaceAllStringFunc(t, func(s string) string {
			val, _, e := lookup(placeholder.FindStringSubmatch(s)[1])
			if e != nil {
				err = e
				return s
			}
			switch val.(type) {
			case map[string]any, []any:
				err = fmt.Errorf("config %s: %s: {{_base_.%s}} is %s and cannot be part of a longer string; make it the whole value", file, path, refs[atoi(placeholder.FindStringSubmatch(s)[1])], kindName(val))
				return s
			}
			return fmt.Sprint(val)
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	default:
		return v, nil
	}
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}

// mergeInto merges src over dst in place: mappings merge key by key, other
// values replace. A mapping with `_delete_: true` replaces the base mapping.
func mergeInto(dst, src map[string]any, path string, dstOrg, srcOrg origins, file string) error {
	for _, k := range sortedKeys(src) {
		sv := src[k]
		p := join(path, k)
		sm, isMap := sv.(map[string]any)
		if !isMap {
			dst[k] = sv
			dstOrg.dropUnder(p)
			dstOrg.copyUnder(srcOrg, p, p)
			continue
		}
		del, err := takeDelete(sm, p, file)
		if err != nil {
			return err
		}
		dv, exists := dst[k]
		dm, dIsMap := dv.(map[string]any)
		switch {
		case del || !exists:
			if err := stripDelete(sm, p, file); err != nil {
				return err
			}
			dst[k] = sm
			dstOrg.dropUnder(p)
			dstOrg.copyUnder(srcOrg, p, p)
		case !dIsMap:
			return fmt.Errorf("config %s: %s is a mapping but the base value (%s) is %s; add `_delete_: true` to the mapping to replace it", file, p, dstOrg[p], kindName(dv))
		default:
			if err := mergeInto(dm, sm, p, dstOrg, srcOrg, file); err != nil {
				return err
			}
		}
	}
	return nil
}

// takeDelete removes and returns a mapping's `_delete_` flag.
func takeDelete(m map[string]any, path, file string) (bool, error) {
	d, ok := m["_delete_"]
	if !ok {
		return false, nil
	}
	delete(m, "_delete_")
	b, isBool := d.(bool)
	if !isBool {
		return false, fmt.Errorf("config %s: %s._delete_ must be true or false, not %s", file, path, kindName(d))
	}
	return b, nil
}

// stripDelete removes `_delete_` flags from a subtree that replaces or adds
// a value, where they have nothing left to delete.
func stripDelete(v any, path, file string) error {
	switch t := v.(type) {
	case map[string]any:
		if _, err := takeDelete(t, path, file); err != nil {
			return err
		}
		for k, e := range t {
			if err := stripDelete(e, join(path, k), file); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if err := stripDelete(e, join(path, fmt.Sprint(i)), file); err != nil {
				return err
			}
		}
	}
	return nil
}

// displayPath shows a path relative to the working directory when it lies
// below it, as users typed it.
func displayPath(abs string) string {
	wd, err := os.Getwd()
	if err != nil {
		return abs
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return abs
	}
	return rel
}

// converter turns a YAML node tree into a config tree, recording the line of
// every value.
type converter struct {
	file    string
	origins origins
	// values and depth count what has been converted, aliases expanded,
	// and how deep the current value is, against MaxValues and MaxDepth.
	values, depth int
}

// MaxValues bounds the values one config file may hold once its YAML
// aliases are expanded, and MaxDepth how deeply mappings and lists may
// nest (in a file or a --cfg-options value): nine lines of nested aliases
// (a "billion laughs") would otherwise expand without bound. mmdet's
// largest configs hold a few thousand values, ten levels deep.
const (
	MaxValues = 100_000
	MaxDepth  = 100
)

func (c *converter) value(n *yaml.Node, path string) (any, error) {
	if c.values++; c.values > MaxValues {
		return nil, fmt.Errorf("line %d: the file expands to more than %d values (through YAML aliases?); a config may hold at most that many", n.Line, MaxValues)
	}
	if n.Kind == yaml.AliasNode {
		return c.value(n.Alias, path)
	}
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		if c.depth++; c.depth > MaxDepth {
			return nil, fmt.Errorf("line %d: mappings and lists nest deeper than %d levels at %s; a config may nest at most that deep", n.Line, MaxDepth, orTop(path))
		}
		defer func() { c.depth-- }()
	}
	c.origins[path] = Origin{File: c.file, Line: n.Line, column: n.Column}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], path)
	case yaml.MappingNode:
		m := map[string]any{}
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if kn.Tag == "!!merge" {
				merges = append(merges, vn)
				continue
			}
			if kn.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a mapping key must be a plain scalar", kn.Line)
			}
			k := kn.Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: key %q is defined twice in %s", kn.Line, k, orTop(path))
			}
			v, err := c.value(vn, join(path, k))
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		for _, mn := range merges {
			src := mn
			if src.Kind == yaml.AliasNode {
				src = src.Alias
			}
			list := []*yaml.Node{src}
			if src.Kind == yaml.SequenceNode {
				list = src.Content
			}
			for _, one := range list {
				mv, err := c.value(one, path)
				if err != nil {
					return nil, err
				}
				mm, ok := mv.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("line %d: `<<` must merge a mapping", mn.Line)
				}
				for k, v := range mm {
					if _, has := m[k]; !has {
						m[k] = v
					}
				}
			}
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			v, err := c.value(e, join(path, fmt.Sprint(i)))
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %s", n.Line, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		nv, err := normalize(v)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return nv, nil
	default:
		return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
	}
}

func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}
