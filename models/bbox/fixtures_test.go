package bbox

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadFixture decodes testdata/name, written by
// scripts/fixtures/bbox_fixtures.py.
func loadFixture(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("%v (regenerate with /usr/bin/python3 scripts/fixtures/bbox_fixtures.py)", err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func toBoxes(rows [][]float64) []Box {
	out := make([]Box, len(rows))
	for i, r := range rows {
		out[i] = Box{float32(r[0]), float32(r[1]), float32(r[2]), float32(r[3])}
	}
	return out
}

func toF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// closeTo reports whether got is within tol of want, relative to want's
// size when that exceeds 1.
func closeTo(got, want float32, tol float64) bool {
	return math.Abs(float64(got)-float64(want)) <= tol*math.Max(1, math.Abs(float64(want)))
}

func checkBoxes(t *testing.T, what string, got, want []Box, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d boxes, want %d", what, len(got), len(want))
	}
	for i := range got {
		for k := range 4 {
			if !closeTo(got[i][k], want[i][k], tol) {
				t.Fatalf("%s: box %d = %v, want %v", what, i, got[i], want[i])
			}
		}
	}
}

func containsKey(err error, key string) bool {
	return err != nil && strings.Contains(err.Error(), key)
}
