package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// DecodeHook lets a caller build some Go types itself while decoding, the
// way the registry builds every field whose type has a registry. It returns
// handled=false to fall back to ordinary decoding.
type DecodeHook func(node any, path string, t reflect.Type) (v reflect.Value, handled bool, err error)

// Decode strictly decodes a config subtree into out, a non-nil pointer.
//
// Struct fields are matched by their `cfg:"name"` tag (the lower-cased field
// name when untagged; `cfg:"-"` skips a field). A key the struct does not
// accept is an error naming the path and listing the accepted keys; a field
// tagged `cfg:"name,required"` must be present. Fields absent from the
// subtree keep the value they had, so callers preset defaults. Ints accept
// whole floats (300e6), floats accept ints, `any` and map[string]any fields
// receive the raw subtree. path names the subtree in error messages.
func Decode(node any, path string, out any, hooks ...DecodeHook) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("config.Decode needs a non-nil pointer, got %T", out)
	}
	d := decoder{hooks: hooks}
	return d.decode(node, path, rv.Elem())
}

type decoder struct {
	hooks []DecodeHook
}

var anyType = reflect.TypeOf((*any)(nil)).Elem()

func (d *decoder) decode(node any, path string, dst reflect.Value) error {
	for _, h := range d.hooks {
		v, ok, err := h(node, path, dst.Type())
		if err != nil {
			return err
		}
		if ok {
			dst.Set(v)
			return nil
		}
	}
	if dst.Type() == anyType {
		if node == nil {
			dst.Set(reflect.Zero(dst.Type()))
		} else {
			dst.Set(reflect.ValueOf(DeepCopy(node)))
		}
		return nil
	}
	switch dst.Kind() {
	case reflect.Pointer:
		if node == nil {
			dst.Set(reflect.Zero(dst.Type()))
			return nil
		}
		if dst.IsNil() {
			dst.Set(reflect.New(dst.Type().Elem()))
		}
		return d.decode(node, path, dst.Elem())
	case reflect.Struct:
		m, ok := node.(map[string]any)
		if !ok {
			return fmt.Errorf("%s must be a mapping, not %s", orTop(path), describe(node))
		}
		return d.decodeStruct(m, path, dst)
	case reflect.Map:
		if node == nil {
			dst.Set(reflect.Zero(dst.Type()))
			return nil
		}
		m, ok := node.(map[string]any)
		if !ok {
			return fmt.Errorf("%s must be a mapping, not %s", orTop(path), describe(node))
		}
		if dst.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("%s: cannot decode into a map keyed by %s", orTop(path), dst.Type().Key())
		}
		out := reflect.MakeMapWithSize(dst.Type(), len(m))
		for _, k := range sortedKeys(m) {
			ev := reflect.New(dst.Type().Elem()).Elem()
			if err := d.decode(m[k], join(path, k), ev); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(dst.Type().Key()), ev)
		}
		dst.Set(out)
		return nil
	case reflect.Slice:
		if node == nil {
			dst.Set(reflect.Zero(dst.Type()))
			return nil
		}
		l, ok := node.([]any)
		if !ok {
			return fmt.Errorf("%s must be a list, not %s", orTop(path), describe(node))
		}
		out := reflect.MakeSlice(dst.Type(), len(l), len(l))
		for i, e := range l {
			if err := d.decode(e, join(path, strconv.Itoa(i)), out.Index(i)); err != nil {
				return err
			}
		}
		dst.Set(out)
		return nil
	case reflect.Array:
		l, ok := node.([]any)
		if !ok {
			return fmt.Errorf("%s must be a list of %d, not %s", orTop(path), dst.Len(), describe(node))
		}
		if len(l) != dst.Len() {
			return fmt.Errorf("%s must have exactly %d elements, not %d", orTop(path), dst.Len(), len(l))
		}
		for i, e := range l {
			if err := d.decode(e, join(path, strconv.Itoa(i)), dst.Index(i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		s, ok := node.(string)
		if !ok {
			return fmt.Errorf("%s must be a string, not %s", orTop(path), describe(node))
		}
		dst.SetString(s)
		return nil
	case reflect.Bool:
		b, ok := node.(bool)
		if !ok {
			return fmt.Errorf("%s must be true or false, not %s", orTop(path), describe(node))
		}
		dst.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := wholeNumber(node, path)
		if err != nil {
			return err
		}
		if dst.OverflowInt(i) {
			return fmt.Errorf("%s: %d does not fit in %s", orTop(path), i, dst.Type())
		}
		dst.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, err := wholeNumber(node, path)
		if err != nil {
			return err
		}
		if i < 0 || dst.OverflowUint(uint64(i)) {
			return fmt.Errorf("%s: %d is not a valid %s", orTop(path), i, dst.Type())
		}
		dst.SetUint(uint64(i))
		return nil
	case reflect.Float32, reflect.Float64:
		switch t := node.(type) {
		case int:
			dst.SetFloat(float64(t))
		case float64:
			dst.SetFloat(t)
		default:
			return fmt.Errorf("%s must be a number, not %s", orTop(path), describe(node))
		}
		return nil
	case reflect.Interface:
		return fmt.Errorf("%s: no registry builds %s; it cannot be decoded from a config", orTop(path), dst.Type())
	default:
		return fmt.Errorf("%s: cannot decode into %s", orTop(path), dst.Type())
	}
}

// wholeNumber accepts an int or a float with no fractional part.
func wholeNumber(node any, path string) (int64, error) {
	switch t := node.(type) {
	case int:
		return int64(t), nil
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<62 {
			return int64(t), nil
		}
	}
	return 0, fmt.Errorf("%s must be a whole number, not %s", orTop(path), describe(node))
}

// field is one decodable struct field.
type field struct {
	name     string
	index    []int
	required bool
}

// Fields lists the config keys a struct type accepts, in declaration order.
func Fields(t reflect.Type) []string {
	fs := structFields(t)
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.name
	}
	return out
}

func structFields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("cfg")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			for _, inner := range structFields(sf.Type) {
				inner.index = append([]int{i}, inner.index...)
				out = append(out, inner)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out = append(out, field{name: name, index: []int{i}, required: opts == "required"})
	}
	return out
}

func (d *decoder) decodeStruct(m map[string]any, path string, dst reflect.Value) error {
	fields := structFields(dst.Type())
	byName := make(map[string]field, len(fields))
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		byName[f.name] = f
		names = append(names, f.name)
	}
	for _, k := range sortedKeys(m) {
		if _, ok := byName[k]; !ok {
			accepted := append([]string(nil), names...)
			sort.Strings(accepted)
			hint := ""
			if c := Closest(k, names); c != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", c)
			}
			list := strings.Join(accepted, ", ")
			if list == "" {
				list = "none"
			}
			return fmt.Errorf("%s: unknown key %q%s; accepted keys: %s", orTop(path), k, hint, list)
		}
	}
	for _, f := range fields {
		v, ok := m[f.name]
		if !ok {
			if f.required {
				return fmt.Errorf("%s: missing required key %q", orTop(path), f.name)
			}
			continue
		}
		if err := d.decode(v, join(path, f.name), dst.FieldByIndex(f.index)); err != nil {
			return err
		}
	}
	return nil
}
