// Package nn holds the Module abstraction and the layers models are built
// from, on top of gorgonia.
//
// A module is a tree node: it owns parameters (trainable float32 tensors)
// and buffers (running statistics, counters) under local names, and child
// modules under names, so every tensor's full name is its path from the root,
// exactly as in a PyTorch state_dict ("backbone.layers.0.1.choices.
// shuffle_3x3.branch2.0.conv.weight"). Tensors live in the modules, not in a
// graph. A training step builds a fresh graph for the path in use:
//
//	b := nn.NewBinding()                     // a new *gorgonia.ExprGraph
//	x := b.Input("x", images)
//	logits, err := model.Forward(b, x)       // nodes only for the sampled path
//	loss := ...                              // a scalar node
//	err = b.Backward(loss)                   // symbolic gradients of used params
//	err = b.Run()                            // run; add gradients to Param grads
//	...                                      // read the loss and what else is needed
//	b.Release()                              // results' buffers back to the pool
//	opt.Step()                               // steps params that have a gradient
//	opt.ZeroGrad(false)                      // zero-filled, as mmcv 1.x on torch 1.x
//
// Parameters off the sampled path get no node and no gradient of their own;
// with zero-filled gradients those that took a step before keep moving with
// their momentum, with ZeroGrad(true) they are left as they are.
// A module type embeds Base, registers its parameters, buffers and children
// in its constructor, and implements Forward.
//
// Of razor it imports only models/ops. Placeholder, the marker of a
// searchable block, lives here too, so that backbones declare a search
// space without importing mutables above them.
package nn

import (
	"fmt"
	"sort"
	"strings"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Module is anything built on Base: a node of the module tree. Every
// method comes from the embedded Base.
type Module interface {
	base() *Base
	Path() string
	Training() bool
	SetTraining(on bool)
	NamedParameters() []*Param
	NamedBuffers() []*Buffer
	StateDict() map[string]*tensor.Dense
	LoadStateDict(sd map[string]*tensor.Dense, strict bool) (LoadReport, error)
}

// Layer is a module with one input and one output, which Sequential chains.
type Layer interface {
	Module
	Forward(b *Binding, x *gorgonia.Node) (*gorgonia.Node, error)
}

// Base holds a module's parameters, buffers, children, name and mode. Embed
// it in every module type; its methods then apply to the whole subtree.
type Base struct {
	path     string
	eval     bool
	params   []*Param
	buffers  []*Buffer
	children []namedChild
}

type namedChild struct {
	name string
	m    Module
}

func (b *Base) base() *Base { return b }

// Path is the module's full dotted name from the root ("" for the root).
func (b *Base) Path() string { return b.path }

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// CheckName reports whether name can name a parameter, buffer or child:
// non-empty and without '.' (which separates path components) or '/' (which
// checkpoints reserve). Constructors that take names from a config must call
// it before AddChild, which panics on a bad name.
func CheckName(name string) error {
	if name == "" || strings.ContainsAny(name, "./") {
		return fmt.Errorf("module name %q must be non-empty and contain neither '.' nor '/'", name)
	}
	return nil
}

func (b *Base) mustBeFree(name string) {
	if err := CheckName(name); err != nil {
		panic(err)
	}
	for _, p := range b.params {
		if p.local == name {
			panic(fmt.Sprintf("nn: %q is already a parameter of %q", name, b.path))
		}
	}
	for _, x := range b.buffers {
		if x.local == name {
			panic(fmt.Sprintf("nn: %q is already a buffer of %q", name, b.path))
		}
	}
	for _, c := range b.children {
		if c.name == name {
			panic(fmt.Sprintf("nn: %q is already a child of %q", name, b.path))
		}
	}
}

// AddParam registers a new zero-filled float32 parameter of the given shape
// under name and returns it. It panics if name is invalid or taken, which is
// a bug in the module's constructor.
func (b *Base) AddParam(name string, kind Kind, shape ...int) *Param {
	b.mustBeFree(name)
	p := newParam(name, kind, shape)
	p.name = join(b.path, name)
	b.params = append(b.params, p)
	return p
}

// AddBuffer registers t as a buffer under name and returns it; the module
// keeps using t, so updates to it show in the state dict. It panics if name
// is invalid or taken.
func (b *Base) AddBuffer(name string, t *tensor.Dense) *Buffer {
	b.mustBeFree(name)
	x := &Buffer{local: name, name: join(b.path, name), value: t}
	b.buffers = append(b.buffers, x)
	return x
}

// AddCounter registers the int64 that v points to as a 0-d int64 buffer
// under name, for counters a layer keeps outside any tensor (such as
// ops.BatchNormState.NumBatchesTracked). The state dict reads the counter
// and loading a state dict writes it. It panics if name is invalid or taken.
func (b *Base) AddCounter(name string, v *int64) *Buffer {
	b.mustBeFree(name)
	x := &Buffer{local: name, name: join(b.path, name), value: tensor.New(tensor.WithShape(), tensor.WithBacking([]int64{*v})), counter: v}
	b.buffers = append(b.buffers, x)
	return x
}

// AddChild registers m under name and renames every tensor in m's subtree
// to its full path. It panics if name is invalid or taken.
func (b *Base) AddChild(name string, m Module) {
	b.mustBeFree(name)
	b.children = append(b.children, namedChild{name, m})
	m.base().setPath(join(b.path, name))
}

// ReplaceChild puts m in place of the child called name, keeping its
// position, as a mutator does when it turns a placeholder into a searchable
// op. Containers that run their registered children (Sequential,
// ModuleDict users) see the change; a module that also keeps the old child
// in a typed field of its own must update that field itself.
func (b *Base) ReplaceChild(name string, m Module) error {
	for i := range b.children {
		if b.children[i].name == name {
			b.children[i].m = m
			m.base().setPath(join(b.path, name))
			return nil
		}
	}
	return fmt.Errorf("module %q has no child %q (children: %s)", b.path, name, strings.Join(b.ChildNames(), ", "))
}

// RemoveChild drops the child called name and all its tensors, as
// retraining does with the ops a subnet did not choose.
func (b *Base) RemoveChild(name string) error {
	for i := range b.children {
		if b.children[i].name == name {
			b.children = append(b.children[:i], b.children[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("module %q has no child %q (children: %s)", b.path, name, strings.Join(b.ChildNames(), ", "))
}

// Child returns the child called name, or nil.
func (b *Base) Child(name string) Module {
	for _, c := range b.children {
		if c.name == name {
			return c.m
		}
	}
	return nil
}

// ChildNames lists the children's names in registration order.
func (b *Base) ChildNames() []string {
	out := make([]string, len(b.children))
	for i, c := range b.children {
		out[i] = c.name
	}
	return out
}

func (b *Base) setPath(path string) {
	b.path = path
	for _, p := range b.params {
		p.name = join(path, p.local)
	}
	for _, x := range b.buffers {
		x.name = join(path, x.local)
	}
	for _, c := range b.children {
		c.m.base().setPath(join(path, c.name))
	}
}

// Training reports whether the module is in training mode (the default).
func (b *Base) Training() bool { return !b.eval }

// SetTraining puts the module and its whole subtree in training mode (true)
// or evaluation mode (false), as PyTorch's train(mode).
func (b *Base) SetTraining(on bool) {
	b.eval = !on
	for _, c := range b.children {
		c.m.base().SetTraining(on)
	}
}

// Walk calls visit for m and every module below it, depth first in
// registration order, with each module's path relative to m.
func Walk(m Module, visit func(path string, m Module)) {
	var rec func(prefix string, m Module)
	rec = func(prefix string, m Module) {
		visit(prefix, m)
		for _, c := range m.base().children {
			rec(join(prefix, c.name), c.m)
		}
	}
	rec("", m)
}

// walk visits the subtree depth first, a module's own tensors before its
// children's, which is PyTorch's state_dict order.
func (b *Base) walk(prefix string, visit func(prefix string, m *Base)) {
	visit(prefix, b)
	for _, c := range b.children {
		c.m.base().walk(join(prefix, c.name), visit)
	}
}

// NamedParameters returns every parameter of the subtree in PyTorch's order;
// each carries its full name (Param.Name).
func (b *Base) NamedParameters() []*Param {
	var out []*Param
	b.walk("", func(_ string, m *Base) { out = append(out, m.params...) })
	return out
}

// NamedBuffers returns every buffer of the subtree in PyTorch's order.
func (b *Base) NamedBuffers() []*Buffer {
	var out []*Buffer
	b.walk("", func(_ string, m *Base) { out = append(out, m.buffers...) })
	return out
}

// StateDict maps the name of every parameter and buffer, relative to this
// module (full names when called on the root), to its tensor. Parameter and
// tensor-buffer entries alias the module's tensors (clone them to keep a
// snapshot); counter entries are snapshots.
func (b *Base) StateDict() map[string]*tensor.Dense {
	out := map[string]*tensor.Dense{}
	for _, e := range b.stateEntries() {
		out[e.name] = e.value
	}
	return out
}

// stateEntry is one tensor of the state dict and, for buffers, the buffer
// to notify after loading into it.
type stateEntry struct {
	name  string
	value *tensor.Dense
	buf   *Buffer
}

func (b *Base) stateEntries() []stateEntry {
	var out []stateEntry
	b.walk("", func(prefix string, m *Base) {
		for _, p := range m.params {
			out = append(out, stateEntry{join(prefix, p.local), p.value, nil})
		}
		for _, x := range m.buffers {
			out = append(out, stateEntry{join(prefix, x.local), x.Value(), x})
		}
	})
	return out
}

// LoadReport lists what LoadStateDict loaded and what it could not match.
type LoadReport struct {
	// Loaded are the keys whose values were copied into the module, in
	// order; none when a strict load failed.
	Loaded []string
	// Missing are the module's keys the state dict lacks.
	Missing []string
	// Unexpected are the state dict's keys the module lacks.
	Unexpected []string
	// Mismatched describes keys present on both sides whose shape or dtype
	// differ; those tensors are left as they were.
	Mismatched []string
}

// Clean reports whether every key matched.
func (r LoadReport) Clean() bool {
	return len(r.Missing) == 0 && len(r.Unexpected) == 0 && len(r.Mismatched) == 0
}

// String summarises the report in one line per kind of problem.
func (r LoadReport) String() string {
	var parts []string
	if len(r.Missing) > 0 {
		parts = append(parts, "missing keys: "+strings.Join(r.Missing, ", "))
	}
	if len(r.Unexpected) > 0 {
		parts = append(parts, "unexpected keys: "+strings.Join(r.Unexpected, ", "))
	}
	if len(r.Mismatched) > 0 {
		parts = append(parts, "mismatched: "+strings.Join(r.Mismatched, "; "))
	}
	if len(parts) == 0 {
		return "all keys matched"
	}
	return strings.Join(parts, "\n")
}

// brief says what did not match in one line of bounded length however
// many keys there are (String lists every key: a checkpoint of another
// width lists hundreds), keys grouped as GroupKeys does.
func (r LoadReport) brief() string {
	group := func(keys []string) string {
		gs := strings.Split(GroupKeys(keys, "", 2), ", ")
		if len(gs) > 6 {
			return strings.Join(gs[:6], ", ") + fmt.Sprintf(" and %d more", len(gs)-6)
		}
		return strings.Join(gs, ", ")
	}
	var parts []string
	if n := len(r.Mismatched); n > 0 {
		names := make([]string, n)
		for i, m := range r.Mismatched {
			names[i], _, _ = strings.Cut(m, ": ")
		}
		parts = append(parts, fmt.Sprintf("%d tensors of another shape or dtype, in %s, such as %s", n, group(names), r.Mismatched[0]))
	}
	if n := len(r.Missing); n > 0 {
		parts = append(parts, fmt.Sprintf("%d of the model's tensors missing from the state dict: %s", n, group(r.Missing)))
	}
	if n := len(r.Unexpected); n > 0 {
		parts = append(parts, fmt.Sprintf("%d tensors of the state dict that the model lacks: %s", n, group(r.Unexpected)))
	}
	if len(parts) == 0 {
		return "all keys matched"
	}
	return strings.Join(parts, "; ") + " (a checkpoint of another model, width, num_classes or subnet?)"
}

// LoadStateDict copies the values of sd into the module's parameters and
// buffers with the same names (relative to this module). Shapes must match
// exactly, except that a 0-d scalar and a one-element tensor are
// interchangeable; dtypes must match. It returns what did not match. In
// strict mode any missing, unexpected or mismatched key is an error and
// nothing is copied; otherwise the matching tensors are copied and the rest
// reported, as mmcv's load_checkpoint(strict=False) does.
func (b *Base) LoadStateDict(sd map[string]*tensor.Dense, strict bool) (LoadReport, error) {
	entries := b.stateEntries()
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	own := make(map[string]bool, len(entries))
	var rep LoadReport
	var matched []stateEntry
	for _, e := range entries {
		own[e.name] = true
		src, ok := sd[e.name]
		if !ok {
			rep.Missing = append(rep.Missing, e.name)
			continue
		}
		if why := mismatch(e.value, src); why != "" {
			rep.Mismatched = append(rep.Mismatched, e.name+": "+why)
			continue
		}
		matched = append(matched, e)
	}
	for _, k := range sortedKeys(sd) {
		if !own[k] {
			rep.Unexpected = append(rep.Unexpected, k)
		}
	}
	if strict && !rep.Clean() {
		return rep, fmt.Errorf("load state dict (strict): %s", rep.brief())
	}
	for _, e := range matched {
		rep.Loaded = append(rep.Loaded, e.name)
		copyInto(e.value, sd[e.name])
		if e.buf != nil {
			e.buf.stored()
		}
	}
	return rep, nil
}

func mismatch(dst, src *tensor.Dense) string {
	if dst.Dtype() != src.Dtype() {
		return fmt.Sprintf("dtype %v in the state dict, %v in the model", src.Dtype(), dst.Dtype())
	}
	ds, ss := dims(dst), dims(src)
	if len(ds) == len(ss) {
		same := true
		for i := range ds {
			same = same && ds[i] == ss[i]
		}
		if same {
			return ""
		}
	}
	if dst.Shape().TotalSize() == 1 && src.Shape().TotalSize() == 1 && (len(ds) == 0 || len(ss) == 0) {
		return ""
	}
	return fmt.Sprintf("shape %v in the state dict, %v in the model", ss, ds)
}

// dims is a tensor's shape with a 0-d scalar as the empty shape.
func dims(t *tensor.Dense) []int {
	if t.IsScalar() {
		return []int{}
	}
	return t.Shape()
}

func copyInto(dst, src *tensor.Dense) {
	switch dst.Dtype() {
	case tensor.Float32:
		copy(dst.Float32s(), src.Float32s())
	case tensor.Float64:
		copy(dst.Float64s(), src.Float64s())
	case tensor.Int64:
		copy(dst.Int64s(), src.Int64s())
	case tensor.Int32:
		copy(dst.Int32s(), src.Int32s())
	}
}

func sortedKeys(m map[string]*tensor.Dense) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Summary says what a non-strict load did in one line however many keys
// there are: the keys skipped and lacked, grouped by module as GroupKeys
// does. A classifier checkpoint loaded into a detector reads "skipped 8
// checkpoint tensors the model lacks: backbone.layers.4.* (6), head.fc.* (2);
// lacked 60 of the model's tensors, ...: neck.* (32), rpn_head.* (6), ...".
func (r LoadReport) Summary(prefix string, depth int) string {
	group := func(keys []string) string { return GroupKeys(keys, prefix, depth) }
	var parts []string
	if len(r.Unexpected) > 0 {
		parts = append(parts, fmt.Sprintf("skipped %d checkpoint tensors the model lacks: %s", len(r.Unexpected), group(r.Unexpected)))
	}
	if len(r.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("lacked %d of the model's tensors, which keep their initial values: %s", len(r.Missing), group(r.Missing)))
	}
	if len(r.Mismatched) > 0 {
		parts = append(parts, fmt.Sprintf("left %d tensors of another shape as they were, such as %s", len(r.Mismatched), r.Mismatched[0]))
	}
	if len(parts) == 0 {
		return "all keys matched"
	}
	return strings.Join(parts, "; ")
}

// GroupKeys names a list of state-dict keys in a few words however many
// there are, for messages about a load: prefix is trimmed, the keys are
// grouped by their first depth path components, and each group is named by
// the deepest module that holds all of its keys, with their count, in the
// order of first appearance ("neck.* (32), roi_head.bbox_head.* (22)"). The
// deepest module matters when a group is part of a module that otherwise
// loaded: a classifier's last layer reads "backbone.layers.4.* (6)", not
// "backbone.* (6)". A group of one key is named by the key.
func GroupKeys(keys []string, prefix string, depth int) string {
	type group struct {
		name   string
		module []string // the path components every key of the group shares, leaf excluded
		first  string
		count  int
	}
	var groups []*group
	at := map[string]*group{}
	for _, k := range keys {
		k = strings.TrimPrefix(k, prefix)
		parts := strings.Split(k, ".")
		dir := parts[:len(parts)-1]
		name := strings.Join(parts[:min(depth, len(parts))], ".")
		g, ok := at[name]
		if !ok {
			g = &group{name: name, module: dir, first: k}
			at[name] = g
			groups = append(groups, g)
		}
		g.count++
		n := 0
		for n < len(g.module) && n < len(dir) && g.module[n] == dir[n] {
			n++
		}
		g.module = g.module[:n]
	}
	out := make([]string, len(groups))
	for i, g := range groups {
		if g.count == 1 {
			out[i] = g.first
			continue
		}
		module := strings.Join(g.module, ".")
		if module == "" {
			module = g.name
		}
		out[i] = fmt.Sprintf("%s.* (%d)", module, g.count)
	}
	return strings.Join(out, ", ")
}
