package config

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
)

// exprRe matches a whole string value of the form `${ EXPR }`.
var exprRe = regexp.MustCompile(`(?s)^\s*\$\{(.*)\}\s*$`)

// IsExpression reports whether a config value is a `${ ... }` expression and
// returns its source.
func IsExpression(v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		return "", false
	}
	m := exprRe.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return strings.TrimSpace(m[1]), true
}

// misplacedExpression explains a string value that holds "${" without
// being one whole `${ EXPR }` value: an unterminated expression, or one
// inside a longer string, which would otherwise stay a literal string
// without a word.
func misplacedExpression(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	i := strings.Index(s, "${")
	if i < 0 {
		return nil
	}
	if !strings.Contains(s[i:], "}") {
		return fmt.Errorf("%q opens an expression with ${ that no } closes; write ${ EXPR }", s)
	}
	return fmt.Errorf("%q has an expression inside a longer string; an expression must be the whole value: write the string as one, such as ${ 'dir/' + name }", s)
}

// pendingExpr is one `${ ... }` value waiting to be evaluated.
type pendingExpr struct {
	path Path
	code string
	refs []string // dotted paths the expression reads (static prefixes)
}

// evalExpressions evaluates every `${ EXPR }` value with the whole config as
// its environment. An expression that reads another expression's value is
// evaluated after it, so an override of a referenced key reaches every place
// that refers to it.
func (c *Config) evalExpressions() error {
	var pending []*pendingExpr
	var misplaced error
	var collect func(v any, p Path)
	collect = func(v any, p Path) {
		switch t := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(t) {
				collect(t[k], p.child(k))
			}
		case []any:
			for i, e := range t {
				collect(e, p.child(strconv.Itoa(i)))
			}
		default:
			if code, ok := IsExpression(v); ok {
				pending = append(pending, &pendingExpr{path: p, code: code})
			} else if err := misplacedExpression(v); err != nil && misplaced == nil {
				misplaced = fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	collect(c.tree, nil)
	if misplaced != nil {
		return misplaced
	}
	if len(pending) == 0 {
		return nil
	}
	byPath := map[string]*pendingExpr{}
	for _, e := range pending {
		tree, err := parser.Parse(e.code)
		if err != nil {
			return fmt.Errorf("%s: expression ${ %s }: %s", e.path, e.code, oneLine(err))
		}
		e.refs = references(&tree.Node)
		byPath[e.path.String()] = e
	}
	const (
		unvisited = iota
		running
		done
	)
	state := map[*pendingExpr]int{}
	var stack []string
	var eval func(e *pendingExpr) error
	eval = func(e *pendingExpr) error {
		switch state[e] {
		case done:
			return nil
		case running:
			i := 0
			for i < len(stack) && stack[i] != e.path.String() {
				i++
			}
			cycle := append(append([]string{}, stack[i:]...), e.path.String())
			return fmt.Errorf("%s: expressions refer to each other in a cycle: %s", e.path, strings.Join(cycle, " -> "))
		}
		state[e] = running
		stack = append(stack, e.path.String())
		for _, dep := range dependencies(e, pending) {
			if err := eval(dep); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		prog, err := expr.Compile(e.code, expr.Env(c.tree))
		if err != nil {
			return fmt.Errorf("%s: expression ${ %s }: %s", e.path, e.code, oneLine(err))
		}
		out, err := expr.Run(prog, c.tree)
		if err != nil {
			return fmt.Errorf("%s: expression ${ %s }: %s", e.path, e.code, oneLine(err))
		}
		v, err := normalize(out)
		if err != nil {
			return fmt.Errorf("%s: expression ${ %s }: %w", e.path, e.code, err)
		}
		keep := c.origins[e.path.String()]
		if _, err := c.set(e.path, DeepCopy(v), keep); err != nil {
			return err
		}
		if src, ok := pureReference(e); ok {
			// A plain reference copies a subtree: keep each value's own origin
			// (and so its key order), noting the expression that copied it.
			via := fmt.Sprintf("${ %s } at %s", e.code, keep)
			target := e.path.String()
			c.origins.dropUnder(target)
			for k, o := range c.origins {
				if under(k, src) {
					o.Via = via
					c.origins[target+k[len(src):]] = o
				}
			}
			if o, ok := c.origins[target]; ok {
				place := keep
				o.sortAt = &place
				c.origins[target] = o
			} else {
				c.origins[target] = keep
			}
		}
		state[e] = done
		return nil
	}
	for _, e := range pending {
		if err := eval(e); err != nil {
			return err
		}
	}
	return nil
}

// pureReference reports whether an expression is nothing but one config
// path (`${ norm_cfg }`, `${ data.train.pipeline }`) and returns it.
func pureReference(e *pendingExpr) (string, bool) {
	if len(e.refs) == 0 {
		return "", false
	}
	last := e.refs[len(e.refs)-1]
	for _, r := range e.refs {
		if len(r) > len(last) {
			last = r
		}
	}
	if strings.Join(strings.Fields(e.code), "") != last {
		return "", false
	}
	return last, true
}

// dependencies lists the pending expressions that e reads: those at, below
// or above a path e refers to.
func dependencies(e *pendingExpr, all []*pendingExpr) []*pendingExpr {
	var out []*pendingExpr
	for _, o := range all {
		op := o.path.String()
		for _, r := range e.refs {
			if under(op, r) || under(r, op) {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

// references returns the dotted config paths an expression reads: every
// chain of identifier and constant member accesses, cut at the first dynamic
// part.
func references(root *ast.Node) []string {
	v := &refVisitor{refs: map[ast.Node]string{}, inner: map[ast.Node]bool{}}
	ast.Walk(root, v)
	seen := map[string]bool{}
	var out []string
	for _, n := range v.order {
		if v.inner[n] || seen[v.refs[n]] {
			continue
		}
		seen[v.refs[n]] = true
		out = append(out, v.refs[n])
	}
	sort.Strings(out)
	return out
}

// refVisitor records the static path of every identifier and member chain.
// The inner links of a chain (`a` and `a.b` in `a.b.c`) are marked so that
// only whole chains count: an expression at a.c that reads a.b must not
// depend on all of a, which holds itself.
type refVisitor struct {
	refs  map[ast.Node]string
	inner map[ast.Node]bool
	order []ast.Node
}

func (v *refVisitor) Visit(node *ast.Node) {
	var parts []string
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		parts = []string{n.Value}
	case *ast.MemberNode:
		parts = memberChain(n)
		inner := n.Node
		if c, ok := inner.(*ast.ChainNode); ok {
			v.inner[c] = true
			inner = c.Node
		}
		v.inner[inner] = true
	case *ast.ChainNode:
		if _, ok := v.refs[n.Node]; ok {
			v.inner[n.Node] = true
			parts = strings.Split(v.refs[n.Node], ".")
		}
	default:
		return
	}
	if len(parts) == 0 {
		return
	}
	v.refs[*node] = strings.Join(parts, ".")
	v.order = append(v.order, *node)
}

// memberChain returns the static path of a member access such as
// `data.train.pipeline[1]`, or nil when it does not start at an identifier.
func memberChain(n *ast.MemberNode) []string {
	var base []string
	switch inner := n.Node.(type) {
	case *ast.IdentifierNode:
		base = []string{inner.Value}
	case *ast.MemberNode:
		base = memberChain(inner)
	case *ast.ChainNode:
		if m, ok := inner.Node.(*ast.MemberNode); ok {
			base = memberChain(m)
		}
	}
	if base == nil {
		return nil
	}
	switch prop := n.Property.(type) {
	case *ast.StringNode:
		return append(base, prop.Value)
	case *ast.IntegerNode:
		return append(base, strconv.Itoa(prop.Value))
	}
	return base
}

// oneLine keeps the first line of an expr-lang error (its later lines draw
// the source with a caret).
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
