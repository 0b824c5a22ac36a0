package search

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Cost is what a subnet costs, counted over the algorithm's FLOPs scope at
// the config's input shape (algorithm.input_shape).
type Cost struct {
	// FLOPs counts multiply-adds, as mmcv's get_model_complexity_info.
	FLOPs int64 `json:"flops"`
	// Params counts the parameters the subnet uses in that scope.
	Params int64 `json:"params"`
}

// quantities are the names a constraint can bound, with how to read each
// from a Cost. A new estimator adds its name here.
var quantities = map[string]func(Cost) float64{
	"flops":  func(c Cost) float64 { return float64(c.FLOPs) },
	"params": func(c Cost) float64 { return float64(c.Params) },
}

func quantityNames() []string {
	names := make([]string, 0, len(quantities))
	for n := range quantities {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Constraint decides whether a subnet's cost is acceptable: every one of its
// conditions must hold. The zero Constraint accepts everything.
type Constraint struct {
	sources  []string
	programs []*vm.Program
	key      string
	// flopsBound is the tightest `flops < N` (or <=) that every accepted
	// subnet obeys, 0 when the conditions set none.
	flopsBound float64
}

// ParseConstraints reads a searcher's `constraints` value, found at key
// (for messages):
//
//   - null or an empty mapping: no constraint;
//   - mmrazor's mapping of upper bounds, {flops: 330e6}: flops < 330e6
//     (strictly below, as mmrazor's check), one bound per quantity;
//   - an expr-lang condition over flops and params,
//     "flops <= 330e6 && params < 4e6";
//   - a list of such conditions, all of which must hold.
func ParseConstraints(v any, key string) (*Constraint, error) {
	c := &Constraint{key: key}
	var sources []string
	switch t := v.(type) {
	case nil:
	case map[string]any:
		names := make([]string, 0, len(t))
		for n := range t {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if _, ok := quantities[n]; !ok {
				return nil, fmt.Errorf("%s.%s: unknown quantity; an upper bound can be set on %s", key, n, strings.Join(quantityNames(), ", "))
			}
			bound, ok := number(t[n])
			if !ok {
				return nil, fmt.Errorf("%s.%s must be a number (an upper bound such as 330e6), not %v", key, n, t[n])
			}
			sources = append(sources, n+" < "+strconv.FormatFloat(bound, 'g', -1, 64))
		}
	case string:
		sources = []string{t}
	case []any:
		for i, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s.%d must be a condition such as \"flops < 330e6\", not %v", key, i, e)
			}
			sources = append(sources, s)
		}
	default:
		return nil, fmt.Errorf("%s must be a mapping of upper bounds ({flops: 330e6}), a condition (\"flops < 330e6 && params < 4e6\") or a list of conditions, not %v", key, v)
	}
	env := map[string]any{}
	for n := range quantities {
		env[n] = 0.0
	}
	for i, src := range sources {
		if strings.TrimSpace(src) == "" {
			return nil, fmt.Errorf("%s: condition %d is empty; write one such as \"flops < 330e6\"", key, i)
		}
		p, err := expr.Compile(src, expr.Env(env), expr.AsBool())
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a valid condition (%s); write a true/false expression over %s such as \"flops < 330e6 && params < 4e6\"",
				key, src, oneLine(err), strings.Join(quantityNames(), ", "))
		}
		c.sources = append(c.sources, src)
		c.programs = append(c.programs, p)
		if tree, err := parser.Parse(src); err == nil {
			if b := flopsBound(tree.Node); b > 0 && (c.flopsBound == 0 || b < c.flopsBound) {
				c.flopsBound = b
			}
		}
	}
	return c, nil
}

// flopsBound finds `flops < N` or `flops <= N` in a condition, alone or as
// a term of a conjunction, and returns the smallest such N (0: none).
func flopsBound(n ast.Node) float64 {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return 0
	}
	switch b.Operator {
	case "&&", "and":
		l, r := flopsBound(b.Left), flopsBound(b.Right)
		if l == 0 || (r > 0 && r < l) {
			return r
		}
		return l
	case "<", "<=":
		id, ok := b.Left.(*ast.IdentifierNode)
		if !ok || id.Value != "flops" {
			return 0
		}
		switch v := b.Right.(type) {
		case *ast.FloatNode:
			return v.Value
		case *ast.IntegerNode:
			return float64(v.Value)
		}
	}
	return 0
}

// number reads an int or float config value.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case float64:
		return n, !math.IsNaN(n)
	}
	return 0, false
}

// oneLine keeps the first line of an expr-lang error, which otherwise
// carries a multi-line snippet with a caret.
func oneLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// Allows reports whether cost meets every condition.
func (c *Constraint) Allows(cost Cost) (bool, error) {
	if c == nil || len(c.programs) == 0 {
		return true, nil
	}
	env := make(map[string]any, len(quantities))
	for n, read := range quantities {
		env[n] = read(cost)
	}
	for i, p := range c.programs {
		out, err := expr.Run(p, env)
		if err != nil {
			return false, fmt.Errorf("%s: evaluating %q at flops %d, params %d: %s", c.key, c.sources[i], cost.FLOPs, cost.Params, oneLine(err))
		}
		if ok, _ := out.(bool); !ok {
			return false, nil
		}
	}
	return true, nil
}

// String is the conditions joined by &&, "none" without any.
func (c *Constraint) String() string {
	if c == nil || len(c.sources) == 0 {
		return "none"
	}
	if len(c.sources) == 1 {
		return c.sources[0]
	}
	parts := make([]string, len(c.sources))
	for i, s := range c.sources {
		parts[i] = "(" + s + ")"
	}
	return strings.Join(parts, " && ")
}

// FLOPsBound is the tightest upper bound the constraint sets on flops
// (a {flops: N} bound, or a flops < N or flops <= N condition or term of
// one joined by &&), for drawing it on the plot.
func (c *Constraint) FLOPsBound() (float64, bool) {
	if c == nil || c.flopsBound == 0 {
		return 0, false
	}
	return c.flopsBound, true
}
