package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"

	"gorgonia.org/tensor"
)

// metadataKey is the reserved header entry that holds free-form string
// metadata in a safetensors file.
const metadataKey = "__metadata__"

// maxHeaderSize bounds the JSON header so a corrupt length field cannot make
// the reader allocate gigabytes before it notices the file is broken.
const maxHeaderSize = 100 << 20

// dtypeInfo pairs a safetensors dtype name with its element size.
type dtypeInfo struct {
	name string
	size int
}

var dtypes = map[tensor.Dtype]dtypeInfo{
	tensor.Float64: {"F64", 8},
	tensor.Int64:   {"I64", 8},
	tensor.Float32: {"F32", 4},
	tensor.Int32:   {"I32", 4},
}

func dtypeByName(name string) (tensor.Dtype, dtypeInfo, bool) {
	for dt, info := range dtypes {
		if info.name == name {
			return dt, info, true
		}
	}
	return tensor.Dtype{}, dtypeInfo{}, false
}

// headerEntry is one tensor's description in the safetensors JSON header.
type headerEntry struct {
	Dtype       string    `json:"dtype"`
	Shape       []int     `json:"shape"`
	DataOffsets [2]uint64 `json:"data_offsets"`
}

// WriteSafetensors writes tensors (F32, F64, I32 or I64) and optional string
// metadata to w in the safetensors format: an 8-byte little-endian header
// length, a JSON header padded with spaces to a multiple of 8 bytes, then the
// raw little-endian data of every tensor, back to back. Tensors are laid out
// with 8-byte types first and then by name, so every tensor starts aligned to
// its element size and the output is the same for the same input.
func WriteSafetensors(w io.Writer, tensors map[string]*tensor.Dense, metadata map[string]string) error {
	names := make([]string, 0, len(tensors))
	for name, t := range tensors {
		if name == metadataKey {
			return fmt.Errorf("write safetensors: tensor name %q is reserved for metadata", name)
		}
		if t == nil {
			return fmt.Errorf("write safetensors: tensor %q is nil", name)
		}
		if _, ok := dtypes[t.Dtype()]; !ok {
			return fmt.Errorf("write safetensors: tensor %q has dtype %v; supported are float32, float64, int32 and int64", name, t.Dtype())
		}
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		si, sj := dtypes[tensors[names[i]].Dtype()].size, dtypes[tensors[names[j]].Dtype()].size
		if si != sj {
			return si > sj
		}
		return names[i] < names[j]
	})

	header := make(map[string]any, len(names)+1)
	if len(metadata) > 0 {
		header[metadataKey] = metadata
	}
	var offset uint64
	for _, name := range names {
		t := tensors[name]
		info := dtypes[t.Dtype()]
		n := uint64(t.Shape().TotalSize()) * uint64(info.size)
		header[name] = headerEntry{Dtype: info.name, Shape: shapeOf(t), DataOffsets: [2]uint64{offset, offset + n}}
		offset += n
	}
	js, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("write safetensors: encode header: %w", err)
	}
	if pad := len(js) % 8; pad != 0 {
		js = append(js, bytes.Repeat([]byte{' '}, 8-pad)...)
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	if _, err := w.Write(js); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	for _, name := range names {
		if _, err := w.Write(encodeData(tensors[name])); err != nil {
			return fmt.Errorf("write safetensors: tensor %q: %w", name, err)
		}
	}
	return nil
}

// shapeOf returns a tensor's shape as a non-nil slice, so a scalar is written
// as the empty shape [] that PyTorch uses for 0-dimensional tensors.
func shapeOf(t *tensor.Dense) []int {
	s := make([]int, 0, t.Dims())
	if t.IsScalar() {
		return s
	}
	return append(s, t.Shape()...)
}

func encodeData(t *tensor.Dense) []byte {
	switch t.Dtype() {
	case tensor.Float32:
		v := t.Float32s()
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	case tensor.Float64:
		v := t.Float64s()
		b := make([]byte, 8*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
		}
		return b
	case tensor.Int32:
		v := t.Int32s()
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
		}
		return b
	default:
		v := t.Int64s()
		b := make([]byte, 8*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
		}
		return b
	}
}

// ReadSafetensors parses a whole safetensors file held in data. It checks
// that the header is well formed, that every dtype is one this package
// supports, that each tensor's byte range matches its shape, and that the
// ranges cover the data section exactly with no gaps or overlaps; a file that
// fails any check is refused with an error naming the offending tensor.
func ReadSafetensors(data []byte) (map[string]*tensor.Dense, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("safetensors: file is %d bytes, shorter than the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > maxHeaderSize || n > uint64(len(data)-8) {
		return nil, nil, fmt.Errorf("safetensors: header length %d does not fit in a %d-byte file", n, len(data))
	}
	hdr := data[8 : 8+n]
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, nil, fmt.Errorf("safetensors: header does not start with '{'")
	}
	body := data[8+n:]

	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, nil, fmt.Errorf("safetensors: decode header: %w", err)
	}
	var metadata map[string]string
	if m, ok := raw[metadataKey]; ok {
		if err := json.Unmarshal(m, &metadata); err != nil {
			return nil, nil, fmt.Errorf("safetensors: %s must map strings to strings: %w", metadataKey, err)
		}
		delete(raw, metadataKey)
	}

	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(raw))
	tensors := make(map[string]*tensor.Dense, len(raw))
	for name, msg := range raw {
		var e headerEntry
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, nil, fmt.Errorf("safetensors: tensor %q: bad header entry: %w", name, err)
		}
		dt, info, ok := dtypeByName(e.Dtype)
		if !ok {
			return nil, nil, fmt.Errorf("safetensors: tensor %q has dtype %q; supported are F32, F64, I32 and I64", name, e.Dtype)
		}
		count := uint64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("safetensors: tensor %q has negative dimension in shape %v", name, e.Shape)
			}
			count *= uint64(d)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if end < begin || end > uint64(len(body)) {
			return nil, nil, fmt.Errorf("safetensors: tensor %q has data offsets [%d, %d] outside the %d-byte data section (file truncated?)", name, begin, end, len(body))
		}
		if end-begin != count*uint64(info.size) {
			return nil, nil, fmt.Errorf("safetensors: tensor %q with shape %v and dtype %s needs %d bytes but its offsets span %d", name, e.Shape, e.Dtype, count*uint64(info.size), end-begin)
		}
		spans = append(spans, span{name, begin, end})
		tensors[name] = decodeData(dt, e.Shape, body[begin:end])
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var at uint64
	for _, s := range spans {
		if s.begin != at {
			return nil, nil, fmt.Errorf("safetensors: tensor %q starts at byte %d but the previous tensor ends at %d; the data section must be covered exactly once", s.name, s.begin, at)
		}
		at = s.end
	}
	if at != uint64(len(body)) {
		return nil, nil, fmt.Errorf("safetensors: tensors cover %d bytes but the data section has %d", at, len(body))
	}
	return tensors, metadata, nil
}

func decodeData(dt tensor.Dtype, shape []int, b []byte) *tensor.Dense {
	var backing any
	switch dt {
	case tensor.Float32:
		v := make([]float32, len(b)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		backing = v
	case tensor.Float64:
		v := make([]float64, len(b)/8)
		for i := range v {
			v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		backing = v
	case tensor.Int32:
		v := make([]int32, len(b)/4)
		for i := range v {
			v[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
		backing = v
	default:
		v := make([]int64, len(b)/8)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		backing = v
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(backing))
}
