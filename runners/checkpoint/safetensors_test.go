package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"strings"
	"testing"

	ref "github.com/nlpodyssey/safetensors"
	"gorgonia.org/tensor"
)

func sampleTensors() map[string]*tensor.Dense {
	return map[string]*tensor.Dense{
		"a.weight":                 tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, -2, 3.5, float32(math.Inf(1)), 0, -0.125})),
		"a.bn.num_batches_tracked": tensor.New(tensor.WithShape(), tensor.WithBacking([]int64{1 << 40})),
		"b.double":                 tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{math.Pi, -1e300})),
		"c.int":                    tensor.New(tensor.WithShape(1, 1, 3), tensor.WithBacking([]int32{-7, 0, math.MaxInt32})),
		"d.odd":                    tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{1, 2, 3})),
		"e.empty":                  tensor.New(tensor.WithShape(0, 4), tensor.WithBacking([]float32{})),
	}
}

func encode(t *testing.T, ts map[string]*tensor.Dense, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sameTensor(a, b *tensor.Dense) bool {
	if a.Dtype() != b.Dtype() || a.IsScalar() != b.IsScalar() || (!a.IsScalar() && !a.Shape().Eq(b.Shape())) {
		return false
	}
	return bytes.Equal(encodeData(a), encodeData(b))
}

func TestSafetensorsRoundTrip(t *testing.T) {
	in := sampleTensors()
	data := encode(t, in, map[string]string{"format": "x"})
	out, meta, err := ReadSafetensors(data)
	if err != nil {
		t.Fatal(err)
	}
	if meta["format"] != "x" || len(meta) != 1 {
		t.Errorf("metadata = %v", meta)
	}
	if len(out) != len(in) {
		t.Fatalf("read %d tensors, wrote %d", len(out), len(in))
	}
	for k, v := range in {
		if !sameTensor(v, out[k]) {
			t.Errorf("%s: read %v %v, wrote %v %v", k, out[k].Shape(), out[k].Data(), v.Shape(), v.Data())
		}
	}
	if !out["a.bn.num_batches_tracked"].IsScalar() {
		t.Errorf("0-d tensor came back with shape %v", out["a.bn.num_batches_tracked"].Shape())
	}
}

func TestSafetensorsLayout(t *testing.T) {
	data := encode(t, sampleTensors(), nil)
	n := binary.LittleEndian.Uint64(data)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	var hdr map[string]headerEntry
	if err := json.Unmarshal(data[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	if _, ok := hdr[metadataKey]; ok {
		t.Errorf("empty metadata was written")
	}
	if got := hdr["a.bn.num_batches_tracked"]; got.Dtype != "I64" || got.Shape == nil || len(got.Shape) != 0 {
		t.Errorf("scalar entry = %+v, want dtype I64 and shape []", got)
	}
	if !strings.Contains(string(data[8:8+n]), `"shape":[]`) {
		t.Errorf("scalar shape not written as []: %s", data[8:8+n])
	}
	// 8-byte types first, then by name, each starting aligned to its size.
	order := []string{"a.bn.num_batches_tracked", "b.double", "a.weight", "c.int", "d.odd", "e.empty"}
	var at uint64
	for _, k := range order {
		e := hdr[k]
		if e.DataOffsets[0] != at {
			t.Errorf("%s starts at %d, want %d", k, e.DataOffsets[0], at)
		}
		size := map[string]uint64{"F32": 4, "F64": 8, "I32": 4, "I64": 8}[e.Dtype]
		if (8+n+e.DataOffsets[0])%size != 0 {
			t.Errorf("%s at file offset %d is not aligned to %d", k, 8+n+e.DataOffsets[0], size)
		}
		at = e.DataOffsets[1]
	}
	if int(8+n+at) != len(data) {
		t.Errorf("data ends at %d, file is %d bytes", 8+n+at, len(data))
	}
	// Same input, same bytes.
	if !bytes.Equal(data, encode(t, sampleTensors(), nil)) {
		t.Errorf("two writes of the same tensors differ")
	}
}

// TestSafetensorsInterop checks both directions against an independent
// implementation of the format (a Go port of the reference Rust crate).
func TestSafetensorsInterop(t *testing.T) {
	in := sampleTensors()
	st, err := ref.Deserialize(encode(t, in, map[string]string{"k": "v"}))
	if err != nil {
		t.Fatalf("reference reader refused our file: %v", err)
	}
	if st.Len() != len(in) {
		t.Errorf("reference reader saw %d tensors, want %d", st.Len(), len(in))
	}
	for k, v := range in {
		view, ok := st.Tensor(k)
		if !ok {
			t.Errorf("reference reader lacks %s", k)
			continue
		}
		if !bytes.Equal(view.Data(), encodeData(v)) || view.DType().String() != dtypes[v.Dtype()].name {
			t.Errorf("%s: reference reader got %s %v", k, view.DType(), view.Shape())
		}
	}

	// The port's NewTensorView counts a 0-d shape as 0 elements (the Rust
	// crate counts 1), so the scalar only goes one way.
	views := map[string]ref.TensorView{}
	for k, v := range in {
		if v.IsScalar() {
			continue
		}
		var shape []uint64
		for _, d := range shapeOf(v) {
			shape = append(shape, uint64(d))
		}
		dt, err := ref.ParseDType(dtypes[v.Dtype()].name)
		if err != nil {
			t.Fatal(err)
		}
		view, err := ref.NewTensorView(dt, shape, encodeData(v))
		if err != nil {
			t.Fatal(err)
		}
		views[k] = view
	}
	theirs, err := ref.Serialize(views, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	out, meta, err := ReadSafetensors(theirs)
	if err != nil {
		t.Fatalf("our reader refused the reference file: %v", err)
	}
	if meta["k"] != "v" {
		t.Errorf("metadata = %v", meta)
	}
	if len(out) != len(views) {
		t.Errorf("read %d tensors from the reference file, want %d", len(out), len(views))
	}
	for k := range views {
		if out[k] == nil || !sameTensor(in[k], out[k]) {
			t.Errorf("%s differs after reading the reference file", k)
		}
	}
}

func TestReadSafetensorsRefusesBadFiles(t *testing.T) {
	good := encode(t, map[string]*tensor.Dense{
		"x": tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2})),
		"y": tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{3})),
	}, nil)
	header := func(h string) []byte {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(len(h)))
		return append(b[:], h...)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "shorter than"},
		{"huge header length", append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, good[8:]...), "does not fit"},
		{"truncated data", good[:len(good)-2], "outside"},
		{"extra data", append(append([]byte{}, good...), 0, 0, 0, 0), "data section has"},
		{"not json", header("{nope"), "decode header"},
		{"not an object", header("[1]"), "does not start"},
		{"unknown dtype", append(header(`{"x":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}}`), 0, 0), `dtype "BF16"`},
		{"size mismatch", append(header(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`), 0, 0, 0, 0), "needs 8 bytes"},
		{"hole", append(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`), make([]byte, 8)...), `"x" starts at byte 4`},
		{"overlap", append(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`), make([]byte, 4)...), "covered exactly once"},
		{"unknown field", append(header(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"z":1}}`), make([]byte, 4)...), "bad header entry"},
		{"negative dim", header(`{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`), "negative"},
		{"bad metadata", header(`{"__metadata__":{"a":1}}`), "map strings to strings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadSafetensors(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteSafetensorsRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		ts   map[string]*tensor.Dense
		want string
	}{
		{"reserved name", map[string]*tensor.Dense{metadataKey: tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{1}))}, "reserved"},
		{"nil tensor", map[string]*tensor.Dense{"x": nil}, "nil"},
		{"bool dtype", map[string]*tensor.Dense{"x": tensor.New(tensor.WithShape(1), tensor.WithBacking([]bool{true}))}, "dtype bool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteSafetensors(&bytes.Buffer{}, tc.ts, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
