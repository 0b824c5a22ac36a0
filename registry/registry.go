// Package registry turns config mappings with a `type` key into Go values.
//
// Each kind of component (models, algorithms, mutables, datasets, runners,
// hooks ...) has one typed Registry, declared in the package that defines the
// kind. Implementations register themselves from init(), as image formats and
// database/sql drivers do, so the core never lists them: a contributor adds an
// algorithm in a package of their own and a main that imports it.
//
// A builder receives an options struct decoded strictly from the mapping's
// other keys (see config.Decode). A field whose type has a registry of its
// own (an interface such as a Backbone) is built from its nested `type:`
// mapping by that registry, so whole models build from one call.
//
// Of razor it imports only config (to decode options); the packages that
// declare a kind import registry, never the other way round.
package registry

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/razorgo/razor/config"
)

// Scopes are the OpenMMLab scope prefixes accepted in front of a type name
// (`mmcls.ImageClassifier`, `torch.SGD`), so configs translated from mmrazor
// read the same.
var Scopes = []string{"mmcls", "mmdet", "mmrazor", "mmcv", "mmengine", "mmpretrain", "razor", "torch"}

// Registry holds the named builders of one kind of component, T.
type Registry[T any] struct {
	kind    string
	mu      sync.RWMutex
	entries map[string]*entry[T]
	aliases map[string]string
}

type entry[T any] struct {
	name    string
	options reflect.Type // the options struct type, for listing its keys
	build   func(node map[string]any, path string) (T, error)
}

// builder is the type-erased view of a registry used to build nested fields.
type builder interface {
	kindName() string
	buildAny(node any, path string) (reflect.Value, error)
}

var (
	byTypeMu sync.RWMutex
	byType   = map[reflect.Type]builder{}
)

// New declares the registry of one kind. kind names it in messages
// ("backbone", "algorithm"). T is usually an interface; a struct field of
// type T (or []T, or map[string]T) is built by this registry when decoded.
// Declaring two registries for the same T panics: it is a programming error.
func New[T any](kind string) *Registry[T] {
	r := &Registry[T]{kind: kind, entries: map[string]*entry[T]{}, aliases: map[string]string{}}
	t := reflect.TypeOf((*T)(nil)).Elem()
	byTypeMu.Lock()
	defer byTypeMu.Unlock()
	if prev, ok := byType[t]; ok {
		panic(fmt.Sprintf("registry: %s already has the %s registry; declare one registry per type", t, prev.kindName()))
	}
	byType[t] = r
	return r
}

// Kind names what the registry holds.
func (r *Registry[T]) Kind() string { return r.kind }

// RegisterOption modifies one registration.
type RegisterOption func(*registration)

type registration struct {
	aliases []string
	force   bool
}

// Alias registers the builder under extra names too.
func Alias(names ...string) RegisterOption {
	return func(r *registration) { r.aliases = append(r.aliases, names...) }
}

// Force replaces an existing registration of the same name instead of
// failing; use it to swap a built-in implementation for your own.
func Force() RegisterOption {
	return func(r *registration) { r.force = true }
}

// Register adds a builder for type name to r. The builder's options type O
// is decoded strictly from the config mapping (every key but `type`). When O
// (or *O) has a method `Defaults()`, it is called on the fresh options value
// first, so absent keys keep those defaults. Registering a taken name is an
// error unless Force is given.
func Register[T, O any](r *Registry[T], name string, build func(opts O) (T, error), options ...RegisterOption) error {
	var reg registration
	for _, o := range options {
		o(&reg)
	}
	if name == "" || strings.ContainsAny(name, ". \t") {
		return fmt.Errorf("%s registry: invalid type name %q; use a plain identifier such as SearchableShuffleNetV2", r.kind, name)
	}
	e := &entry[T]{
		name:    name,
		options: reflect.TypeOf((*O)(nil)).Elem(),
		build: func(node map[string]any, path string) (T, error) {
			var zero T
			opts := new(O)
			if d, ok := any(opts).(interface{ Defaults() }); ok {
				d.Defaults()
			}
			args := make(map[string]any, len(node))
			for k, v := range node {
				if k != "type" {
					args[k] = v
				}
			}
			if err := config.Decode(args, path, opts, nestedHook); err != nil {
				return zero, err
			}
			v, err := build(*opts)
			if err != nil {
				return zero, fmt.Errorf("%s (%s %s): %w", orTop(path), r.kind, name, err)
			}
			return v, nil
		},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	names := append([]string{name}, reg.aliases...)
	if !reg.force {
		for _, n := range names {
			if _, taken := r.entries[n]; taken {
				return fmt.Errorf("%s registry: %q is already registered; pass registry.Force() to replace it", r.kind, n)
			}
			if target, taken := r.aliases[n]; taken {
				return fmt.Errorf("%s registry: %q is already an alias of %q; pass registry.Force() to replace it", r.kind, n, target)
			}
		}
	}
	r.entries[name] = e
	delete(r.aliases, name)
	for _, a := range reg.aliases {
		r.aliases[a] = name
		delete(r.entries, a)
	}
	return nil
}

// MustRegister is Register for init functions: a failure is a programming
// error and panics.
func MustRegister[T, O any](r *Registry[T], name string, build func(opts O) (T, error), options ...RegisterOption) {
	if err := Register(r, name, build, options...); err != nil {
		panic(err)
	}
}

// Names lists the registered type names (aliases excluded), sorted.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.entries))
	for n := range r.entries {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Has reports whether name (with or without a scope) is registered.
func (r *Registry[T]) Has(name string) bool {
	_, err := r.lookup(name, "")
	return err == nil
}

// Accepts lists the config keys type name accepts besides `type`.
func (r *Registry[T]) Accepts(name string) ([]string, error) {
	e, err := r.lookup(name, "")
	if err != nil {
		return nil, err
	}
	if e.options.Kind() != reflect.Struct {
		return nil, nil
	}
	return config.Fields(e.options), nil
}

// Build builds a T from a mapping with a `type` key. path names the mapping
// in error messages (e.g. "model.backbone"). defaults fill only the keys the
// mapping leaves out, as mmcv's default_args do.
func (r *Registry[T]) Build(node any, path string, defaults map[string]any) (T, error) {
	var zero T
	m, ok := node.(map[string]any)
	if !ok {
		return zero, fmt.Errorf("%s must be a mapping with a `type` key naming a %s, not %s", orTop(path), r.kind, kindOf(node))
	}
	if len(defaults) > 0 {
		merged := make(map[string]any, len(m)+len(defaults))
		for k, v := range defaults {
			merged[k] = v
		}
		for k, v := range m {
			merged[k] = v
		}
		m = merged
	}
	t, ok := m["type"]
	if !ok {
		return zero, fmt.Errorf("%s has no `type` key; set it to one of the %s types: %s", orTop(path), r.kind, strings.Join(r.Names(), ", "))
	}
	name, ok := t.(string)
	if !ok {
		return zero, fmt.Errorf("%s.type must be a string naming a %s, not %s", orTop(path), r.kind, kindOf(t))
	}
	e, err := r.lookup(name, path)
	if err != nil {
		return zero, err
	}
	return e.build(m, path)
}

// Supported checks the type a top-level section names (runner.type,
// optimizer.type) before it is built: a name nothing registers is one
// error saying so, with the registered names and the closest one. A node
// without a string type passes; Build reports it.
func (r *Registry[T]) Supported(node any, path string) error {
	m, _ := node.(map[string]any)
	name, ok := m["type"].(string)
	if !ok || r.Has(name) {
		return nil
	}
	names := r.Names()
	hint := ""
	if c := closestFold(name, names); c != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", c)
	}
	return fmt.Errorf("%s.type %q is not supported%s; use one of the registered %s types: %s", orTop(path), name, hint, r.kind, strings.Join(names, ", "))
}

// lookup resolves a possibly scoped name or alias to its entry.
func (r *Registry[T]) lookup(name, path string) (*entry[T], error) {
	bare := name
	if scope, rest, found := strings.Cut(name, "."); found {
		known := false
		for _, s := range Scopes {
			if s == scope {
				known = true
			}
		}
		if !known {
			return nil, fmt.Errorf("%s.type %q: unknown scope %q; known scopes: %s", orTop(path), name, scope, strings.Join(Scopes, ", "))
		}
		bare = rest
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if target, ok := r.aliases[bare]; ok {
		bare = target
	}
	if e, ok := r.entries[bare]; ok {
		return e, nil
	}
	names := make([]string, 0, len(r.entries)+len(r.aliases))
	for n := range r.entries {
		names = append(names, n)
	}
	for n := range r.aliases {
		names = append(names, n)
	}
	sort.Strings(names)
	hint := ""
	if c := closestFold(bare, names); c != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", c)
	}
	list := strings.Join(names, ", ")
	if list == "" {
		list = "none (is the package that registers it imported?)"
	}
	return nil, fmt.Errorf("%s.type: unknown %s type %q%s; registered: %s", orTop(path), r.kind, name, hint, list)
}

// closestFold suggests a name, ignoring case differences first.
func closestFold(s string, names []string) string {
	for _, n := range names {
		if strings.EqualFold(n, s) {
			return n
		}
	}
	return config.Closest(s, names)
}

func (r *Registry[T]) kindName() string { return r.kind }

func (r *Registry[T]) buildAny(node any, path string) (reflect.Value, error) {
	v, err := r.Build(node, path, nil)
	if err != nil {
		return reflect.Value{}, err
	}
	out := reflect.New(reflect.TypeOf((*T)(nil)).Elem()).Elem()
	rv := reflect.ValueOf(v)
	if rv.IsValid() {
		out.Set(rv)
	}
	return out, nil
}

// nestedHook builds struct fields whose type has a registry. A null value
// leaves the field at its zero value (an optional component).
func nestedHook(node any, path string, t reflect.Type) (reflect.Value, bool, error) {
	byTypeMu.RLock()
	b, ok := byType[t]
	byTypeMu.RUnlock()
	if !ok {
		return reflect.Value{}, false, nil
	}
	if node == nil {
		return reflect.Zero(t), true, nil
	}
	v, err := b.buildAny(node, path)
	if err != nil {
		return reflect.Value{}, true, err
	}
	return v, true, nil
}

func orTop(path string) string {
	if path == "" {
		return "config"
	}
	return path
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q", v)
	default:
		return fmt.Sprintf("%T %v", v, v)
	}
}
