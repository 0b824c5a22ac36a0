package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseValue parses the VALUE of a --cfg-options KEY=VALUE pair with mmcv's
// DictAction grammar, extended so spaces survive:
//
//   - `[a, b]` and `(a, b)` are lists (a tuple is a list here); brackets nest;
//     `[]` is an empty list;
//   - a top-level comma makes a list: `a,b,c`;
//   - a value in single or double quotes is that string, spaces, commas and
//     brackets included, and is never coerced;
//   - any other item is tried as an int, then a float, then `true`/`false` in
//     any case, then `None`/`null` (any case) as null, and is otherwise a
//     string with its surrounding spaces trimmed.
func ParseValue(raw string) (any, error) {
	p := &valueParser{s: raw}
	items, err := p.items(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.s) {
		return nil, fmt.Errorf("value %q: unexpected %q at position %d", raw, p.s[p.pos], p.pos+1)
	}
	if len(items) == 1 && !p.sawComma {
		return items[0], nil
	}
	return items, nil
}

type valueParser struct {
	s        string
	pos      int
	sawComma bool // a comma at the top level
}

// items reads comma-separated items until a closing bracket or the end.
func (p *valueParser) items(depth int) ([]any, error) {
	out := []any{}
	for {
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] == ']' || p.s[p.pos] == ')' {
			// An empty value is the empty string; a trailing comma, as in
			// Python's (1,), adds no item.
			if depth == 0 && len(out) == 0 && !p.sawComma {
				out = append(out, "")
			}
			return out, nil
		}
		item, err := p.item(depth)
		if err != nil {
			return nil, err
		}
		out = append(out, item)
		p.skipSpace()
		if p.pos < len(p.s) && p.s[p.pos] == ',' {
			if depth == 0 {
				p.sawComma = true
			}
			p.pos++
			continue
		}
		return out, nil
	}
}

// item reads one quoted string, bracketed list or bare scalar.
func (p *valueParser) item(depth int) (any, error) {
	c := p.s[p.pos]
	switch c {
	case '[', '(':
		closer := byte(']')
		if c == '(' {
			closer = ')'
		}
		start := p.pos
		if depth+1 > MaxDepth {
			return nil, fmt.Errorf("value %q: lists nest deeper than %d levels at position %d; a value may nest at most that deep", clip(p.s), MaxDepth, start+1)
		}
		p.pos++
		list, err := p.items(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.pos >= len(p.s) {
			return nil, fmt.Errorf("value %q: %q opened at position %d is never closed", p.s, c, start+1)
		}
		if p.s[p.pos] != closer {
			return nil, fmt.Errorf("value %q: %q opened at position %d is closed by %q", p.s, c, start+1, p.s[p.pos])
		}
		p.pos++
		return list, nil
	case '"', '\'':
		end := strings.IndexByte(p.s[p.pos+1:], c)
		if end < 0 {
			return nil, fmt.Errorf("value %q: quote %c at position %d is never closed", p.s, c, p.pos+1)
		}
		str := p.s[p.pos+1 : p.pos+1+end]
		p.pos += end + 2
		return str, nil
	case ']', ')':
		return nil, fmt.Errorf("value %q: %q at position %d closes nothing", p.s, c, p.pos+1)
	}
	start := p.pos
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ',', ']', ')':
			return scalar(strings.TrimSpace(p.s[start:p.pos])), nil
		case '[', '(', '"', '\'':
			return nil, fmt.Errorf("value %q: unexpected %q at position %d inside a bare item; quote the item", p.s, p.s[p.pos], p.pos+1)
		}
		p.pos++
	}
	return scalar(strings.TrimSpace(p.s[start:])), nil
}

// clip shortens a long value for an error message.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:60] + "..." + s[len(s)-10:]
}

func (p *valueParser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

// scalar coerces a bare item: int, float, bool, null, else string.
func scalar(s string) any {
	if i, err := strconv.Atoi(s); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "_xXpP") {
		return f
	}
	switch strings.ToLower(s) {
	case "true":
		return true
	case "false":
		return false
	case "none", "null":
		return nil
	}
	return s
}

// FormatValue writes a value in the --cfg-options grammar so that ParseValue
// reads it back unchanged. It fails for values the grammar cannot express: a
// mapping, or a string holding both kinds of quote.
func FormatValue(v any) (string, error) {
	switch t := v.(type) {
	case nil:
		return "None", nil
	case bool:
		return strconv.FormatBool(t), nil
	case int:
		return strconv.Itoa(t), nil
	case float64:
		if math.IsInf(t, 0) || math.IsNaN(t) {
			return strconv.FormatFloat(t, 'g', -1, 64), nil
		}
		s := strconv.FormatFloat(t, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return s, nil
	case string:
		if plain, ok := scalar(strings.TrimSpace(t)).(string); ok && plain == t && t != "" && !strings.ContainsAny(t, ",[]()'\"") {
			return t, nil
		}
		switch {
		case !strings.Contains(t, `"`):
			return `"` + t + `"`, nil
		case !strings.Contains(t, `'`):
			return `'` + t + `'`, nil
		}
		return "", fmt.Errorf("the string %q holds both kinds of quote", t)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			s, err := FormatValue(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, ",") + "]", nil
	default:
		return "", fmt.Errorf("%s cannot be written as an override value", kindName(v))
	}
}
