package hashfill

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// fixture is testdata/hashfill.json, written by scripts/fixtures/hashfill.py.
type fixture struct {
	Hashes []struct {
		Name  string   `json:"name"`
		FNV1a uint32   `json:"fnv1a"`
		Index []uint32 `json:"index"`
		Hash  []uint32 `json:"hash"`
	} `json:"hashes"`
	Tensors []struct {
		Name   string    `json:"name"`
		Shape  []int     `json:"shape"`
		Index  []int     `json:"index"`
		Sum    float64   `json:"sum"`
		SumSq  float64   `json:"sumsq"`
		Bits   []uint32  `json:"bits"`
		Values []float64 `json:"values"`
	} `json:"tensors"`
	Images []struct {
		H      int     `json:"h"`
		W      int     `json:"w"`
		Sum    int64   `json:"sum"`
		SumSq  int64   `json:"sumsq"`
		Index  []int   `json:"index"`
		Values []uint8 `json:"values"`
	} `json:"images"`
}

func load(t *testing.T) fixture {
	t.Helper()
	js, err := os.ReadFile(filepath.Join("testdata", "hashfill.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(js, &f); err != nil {
		t.Fatalf("testdata/hashfill.json: %v", err)
	}
	return f
}

func TestHashMatchesPython(t *testing.T) {
	f := load(t)
	if len(f.Hashes) == 0 {
		t.Fatal("no hash cases")
	}
	for _, c := range f.Hashes {
		if got := seed(c.Name); got != c.FNV1a {
			t.Errorf("seed(%q) = %d, want %d", c.Name, got, c.FNV1a)
		}
		for j, i := range c.Index {
			if got := hash32(seed(c.Name), i); got != c.Hash[j] {
				t.Errorf("hash32(%q, %d) = %d, want %d", c.Name, i, got, c.Hash[j])
			}
		}
	}
}

func TestDetectorTensorMatchesPython(t *testing.T) {
	f := load(t)
	if len(f.Tensors) == 0 {
		t.Fatal("no tensor cases")
	}
	for _, c := range f.Tensors {
		t.Run(c.Name, func(t *testing.T) {
			v := DetectorTensor(c.Name, c.Shape)
			var sum, sumsq float64
			for _, x := range v {
				sum += float64(x)
				sumsq += float64(x) * float64(x)
			}
			for j, i := range c.Index {
				if c.Bits != nil {
					if got := math.Float32bits(v[i]); got != c.Bits[j] {
						t.Errorf("[%d] = %v (bits %#08x), want %v (bits %#08x)", i, v[i], got, c.Values[j], c.Bits[j])
					}
				} else if float64(v[i]) != c.Values[j] {
					t.Errorf("[%d] = %v, want %v", i, v[i], c.Values[j])
				}
			}
			// Sums over every element catch a rule that is right only at the
			// sampled indices; the two sides add in different orders.
			if d := math.Abs(sum - c.Sum); d > 1e-9*(1+c.SumSq) {
				t.Errorf("sum = %v, want %v", sum, c.Sum)
			}
			if d := math.Abs(sumsq - c.SumSq); d > 1e-9*(1+c.SumSq) {
				t.Errorf("sum of squares = %v, want %v", sumsq, c.SumSq)
			}
		})
	}
}

func TestUniformRange(t *testing.T) {
	u := Uniform("range", 1<<16)
	lo, hi := float32(0), float32(0)
	for _, v := range u {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo < -1 || hi >= 1 || lo > -0.999 || hi < 0.999 {
		t.Errorf("Uniform spans [%v, %v], want nearly all of [-1, 1)", lo, hi)
	}
	if p := Uniform("range", 10); p[9] != u[9] {
		t.Errorf("a shorter fill is not a prefix: %v vs %v", p[9], u[9])
	}
}

func TestImageMatchesPython(t *testing.T) {
	f := load(t)
	if len(f.Images) == 0 {
		t.Fatal("no image cases")
	}
	for _, c := range f.Images {
		img := Image(c.H, c.W)
		if len(img) != c.H*c.W*3 {
			t.Fatalf("Image(%d, %d) has %d bytes, want %d", c.H, c.W, len(img), c.H*c.W*3)
		}
		var sum, sumsq int64
		for _, v := range img {
			sum += int64(v)
			sumsq += int64(v) * int64(v)
		}
		if sum != c.Sum || sumsq != c.SumSq {
			t.Errorf("Image(%d, %d): sum %d, sum of squares %d, want %d, %d", c.H, c.W, sum, sumsq, c.Sum, c.SumSq)
		}
		for j, i := range c.Index {
			if img[i] != c.Values[j] {
				t.Errorf("Image(%d, %d)[%d] = %d, want %d", c.H, c.W, i, img[i], c.Values[j])
			}
		}
	}
}

func TestDetectorTensorPanicsWithoutRule(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a 1-D weight outside a batch norm got a value, want a panic")
		}
	}()
	DetectorTensor("neck.ln.weight", []int{4})
}
