package checkpoint

import (
	"fmt"
	"io"
	"math/big"
	"os"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
	"gorgonia.org/tensor"
)

// Pth is what ReadPth finds in a PyTorch checkpoint file.
type Pth struct {
	// StateDict is the model's state dict. Float and half tensors become
	// float32, double float64, long int64 and int int32; every tensor is
	// copied into its own contiguous storage.
	StateDict map[string]*tensor.Dense
	// Meta is the mmcv checkpoint's "meta" dict converted to plain Go values
	// (map[string]any, []any, string, int, float64, bool, nil; a tensor
	// becomes *tensor.Dense and any other Python object a string naming its
	// class); nil for a bare state dict.
	Meta map[string]any
	// Optimizer holds the tensors of the mmcv checkpoint's "optimizer" state
	// dict, flattened to dotted keys such as "state.3.momentum_buffer"
	// (PyTorch keys optimizer state by parameter index, not by name); nil
	// when the file has none.
	Optimizer map[string]*tensor.Dense
}

// ReadPth reads a PyTorch checkpoint written by torch.save, in the zip format
// or the legacy one. The file may hold a bare state dict or an mmcv
// checkpoint dict with "state_dict" and optional "meta" and "optimizer".
// Keys are returned as stored; see Remap for mmcv's "module." stripping and
// other prefix changes.
func ReadPth(path string) (p *Pth, err error) {
	// gopickle panics on a few malformed inputs (for example an old tar
	// archive); a bad file must be an error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("read PyTorch checkpoint %s: unsupported or corrupt file: %v", path, r)
		}
	}()
	isZip, err := checkPthHeader(path)
	if err == nil {
		err = checkPthStorages(path, isZip)
	}
	if err != nil {
		return nil, fmt.Errorf("read PyTorch checkpoint %s: %w", path, err)
	}
	obj, err := pytorch.LoadWithUnpickler(path, func(r io.Reader) pickle.Unpickler {
		u := pickle.NewUnpickler(r)
		u.FindClass = findClass
		return u
	})
	if err != nil {
		return nil, fmt.Errorf("read PyTorch checkpoint %s: %w", path, err)
	}
	top, ok := dictEntries(obj)
	if !ok {
		return nil, fmt.Errorf("read PyTorch checkpoint %s: top level is %T, want a dict (a state dict or an mmcv checkpoint)", path, obj)
	}
	out := &Pth{}
	sdObj := obj
	if v, ok := lookup(top, "state_dict"); ok {
		sdObj = v
		if m, ok := lookup(top, "meta"); ok && m != nil {
			conv, ok := toGo(m).(map[string]any)
			if !ok {
				return nil, fmt.Errorf("read PyTorch checkpoint %s: \"meta\" is %T, want a dict", path, m)
			}
			out.Meta = conv
		}
		if o, ok := lookup(top, "optimizer"); ok && o != nil {
			out.Optimizer = map[string]*tensor.Dense{}
			if err := flattenTensors(o, "", out.Optimizer); err != nil {
				return nil, fmt.Errorf("read PyTorch checkpoint %s: optimizer: %w", path, err)
			}
		}
	}
	entries, ok := dictEntries(sdObj)
	if !ok {
		return nil, fmt.Errorf("read PyTorch checkpoint %s: state_dict is %T, want a dict of tensors", path, sdObj)
	}
	out.StateDict = make(map[string]*tensor.Dense, len(entries))
	for _, e := range entries {
		key, ok := e.Key.(string)
		if !ok {
			return nil, fmt.Errorf("read PyTorch checkpoint %s: state_dict key %v is %T, want a string", path, e.Key, e.Key)
		}
		t, ok := e.Value.(*pytorch.Tensor)
		if !ok {
			return nil, fmt.Errorf("read PyTorch checkpoint %s: state_dict entry %q is %T, want a tensor", path, key, e.Value)
		}
		d, err := toDense(t)
		if err != nil {
			return nil, fmt.Errorf("read PyTorch checkpoint %s: state_dict entry %q: %w", path, key, err)
		}
		out.StateDict[key] = d
	}
	return out, nil
}

// checkPthHeader accepts the two formats torch.save writes: a zip archive
// (since PyTorch 1.6) or a pickle stream (the legacy format, which starts
// with a pickled magic number, protocol 2). gopickle's legacy reader
// first tries the file as a tar archive and loops forever where the tar
// reader says end of archive (an empty file, or one of 1 KiB of zeros), so
// anything else is refused here.
func checkPthHeader(path string) (isZip bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0:
		return false, fmt.Errorf("the file is empty; torch.save writes a zip archive or a pickle")
	case n >= 4 && string(head) == "PK\x03\x04":
		return true, nil
	case head[0] == 0x80:
		return false, nil
	case err != nil && n < 4:
		return false, fmt.Errorf("the file holds only %d bytes (% x), not a zip archive or a pickle as torch.save writes", n, head[:n])
	}
	return false, fmt.Errorf("the file starts with bytes % x, not a zip archive (PK 03 04) or a pickle (80) as torch.save writes", head)
}

// findClass resolves the classes a checkpoint may reference beyond the ones
// gopickle's pytorch package knows. Parameters are rebuilt as their data
// tensor; anything else becomes a generic object, so meta entries of unknown
// classes (numpy scalars, config dicts) do not stop the import.
func findClass(module, name string) (any, error) {
	if module == "torch._utils" && name == "_rebuild_parameter" {
		return rebuildParameter{}, nil
	}
	return types.NewGenericClass(module, name), nil
}

// rebuildParameter stands for torch._utils._rebuild_parameter(data,
// requires_grad, backward_hooks): a Parameter is its data tensor.
type rebuildParameter struct{}

func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter called with no arguments")
	}
	return args[0], nil
}

// dictEntry is one key/value pair of a Python dict, in insertion order.
type dictEntry struct {
	Key, Value any
}

func dictEntries(v any) ([]dictEntry, bool) {
	switch d := v.(type) {
	case *types.Dict:
		out := make([]dictEntry, len(*d))
		for i, e := range *d {
			out[i] = dictEntry{e.Key, e.Value}
		}
		return out, true
	case *types.OrderedDict:
		out := make([]dictEntry, 0, d.Len())
		for el := d.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			out = append(out, dictEntry{e.Key, e.Value})
		}
		return out, true
	}
	return nil, false
}

func lookup(entries []dictEntry, key string) (any, bool) {
	for _, e := range entries {
		if k, ok := e.Key.(string); ok && k == key {
			return e.Value, true
		}
	}
	return nil, false
}

// flattenTensors walks nested dicts and lists and records every tensor under
// its dotted path.
func flattenTensors(v any, prefix string, out map[string]*tensor.Dense) error {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	if entries, ok := dictEntries(v); ok {
		for _, e := range entries {
			if err := flattenTensors(e.Value, join(fmt.Sprint(e.Key)), out); err != nil {
				return err
			}
		}
		return nil
	}
	switch x := v.(type) {
	case *pytorch.Tensor:
		d, err := toDense(x)
		if err != nil {
			return fmt.Errorf("%s: %w", prefix, err)
		}
		out[prefix] = d
	case *types.List:
		for i, e := range *x {
			if err := flattenTensors(e, join(fmt.Sprint(i)), out); err != nil {
				return err
			}
		}
	case *types.Tuple:
		for i, e := range *x {
			if err := flattenTensors(e, join(fmt.Sprint(i)), out); err != nil {
				return err
			}
		}
	}
	return nil
}

// toGo converts an unpickled value to plain Go values.
func toGo(v any) any {
	if entries, ok := dictEntries(v); ok {
		m := make(map[string]any, len(entries))
		for _, e := range entries {
			m[fmt.Sprint(toGo(e.Key))] = toGo(e.Value)
		}
		return m
	}
	switch x := v.(type) {
	case nil, string, int, float64, bool:
		return x
	case *big.Int:
		return x.String()
	case *types.List:
		return seqToGo(*x)
	case *types.Tuple:
		return seqToGo(*x)
	case *pytorch.Tensor:
		if d, err := toDense(x); err == nil {
			return d
		}
		return "<unreadable tensor>"
	case *types.GenericObject:
		return fmt.Sprintf("<%s.%s>", x.Class.Module, x.Class.Name)
	case *types.GenericClass:
		return fmt.Sprintf("<class %s.%s>", x.Module, x.Name)
	}
	return fmt.Sprintf("<%T>", v)
}

func seqToGo(s []any) []any {
	out := make([]any, len(s))
	for i, e := range s {
		out[i] = toGo(e)
	}
	return out
}

// toDense copies a (possibly strided, possibly offset) PyTorch tensor into a
// new contiguous dense tensor.
func toDense(t *pytorch.Tensor) (*tensor.Dense, error) {
	n := 1
	for _, d := range t.Size {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in size %v", t.Size)
		}
		n *= d
	}
	if len(t.Stride) != len(t.Size) {
		return nil, fmt.Errorf("size %v and stride %v differ in rank", t.Size, t.Stride)
	}
	idx, err := gatherIndex(t, n)
	if err != nil {
		return nil, err
	}
	var backing any
	switch s := t.Source.(type) {
	case *pytorch.FloatStorage:
		backing, err = gather(s.Data, idx)
	case *pytorch.HalfStorage:
		backing, err = gather(s.Data, idx)
	case *pytorch.BFloat16Storage:
		backing, err = gather(s.Data, idx)
	case *pytorch.DoubleStorage:
		backing, err = gather(s.Data, idx)
	case *pytorch.LongStorage:
		backing, err = gather(s.Data, idx)
	case *pytorch.IntStorage:
		backing, err = gather(s.Data, idx)
	default:
		return nil, fmt.Errorf("storage type %T is not supported; supported are float, half, bfloat16, double, long and int", t.Source)
	}
	if err != nil {
		return nil, err
	}
	return tensor.New(tensor.WithShape(t.Size...), tensor.WithBacking(backing)), nil
}

// gatherIndex lists, in row-major order, the storage index of every element.
func gatherIndex(t *pytorch.Tensor, n int) ([]int, error) {
	if t.StorageOffset < 0 {
		return nil, fmt.Errorf("negative storage offset %d", t.StorageOffset)
	}
	idx := make([]int, n)
	pos := make([]int, len(t.Size))
	for i := range idx {
		off := t.StorageOffset
		for d, p := range pos {
			off += p * t.Stride[d]
		}
		idx[i] = off
		for d := len(pos) - 1; d >= 0; d-- {
			pos[d]++
			if pos[d] < t.Size[d] {
				break
			}
			pos[d] = 0
		}
	}
	return idx, nil
}

func gather[T any](data []T, idx []int) ([]T, error) {
	out := make([]T, len(idx))
	for i, j := range idx {
		if j < 0 || j >= len(data) {
			return nil, fmt.Errorf("element %d lies at storage index %d, outside the storage of %d elements", i, j, len(data))
		}
		out[i] = data[j]
	}
	return out, nil
}
