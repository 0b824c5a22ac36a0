package datasets

import (
	"fmt"
	"math"
)

// asInt reads a whole number from a config value.
func asInt(v any) (int, bool) {
	switch t := v.(type) {
	case int:
		return t, true
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<31 {
			return int(t), true
		}
	}
	return 0, false
}

// intPair reads an int (both elements equal) or a two-element list.
func intPair(v any, key string) ([2]int, error) {
	if n, ok := asInt(v); ok {
		return [2]int{n, n}, nil
	}
	if l, ok := v.([]any); ok && len(l) == 2 {
		a, ok1 := asInt(l[0])
		b, ok2 := asInt(l[1])
		if ok1 && ok2 {
			return [2]int{a, b}, nil
		}
	}
	return [2]int{}, fmt.Errorf("%s must be an integer or a list of two integers, not %v", key, v)
}

// pythonRound rounds half to even, as Python 3's round does.
func pythonRound(x float64) int { return int(math.RoundToEven(x)) }

// asFloat reads a number from a config value.
func asFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case int:
		return float64(t), true
	case float64:
		return t, true
	}
	return 0, false
}

// scaleList reads one (w, h) pair or a list of them.
func scaleList(v any, key string) ([][2]int, error) {
	if l, ok := v.([]any); ok && len(l) > 0 {
		if _, nested := l[0].([]any); nested {
			out := make([][2]int, len(l))
			for i, e := range l {
				p, err := intPair(e, fmt.Sprintf("%s[%d]", key, i))
				if err != nil {
					return nil, err
				}
				out[i] = p
			}
			return out, checkScales(out, key)
		}
	}
	p, err := intPair(v, key)
	if err != nil {
		return nil, err
	}
	return [][2]int{p}, checkScales([][2]int{p}, key)
}

func checkScales(scales [][2]int, key string) error {
	for _, s := range scales {
		if s[0] <= 0 || s[1] <= 0 {
			return fmt.Errorf("%s %v must be positive (w, h)", key, s)
		}
	}
	return nil
}
