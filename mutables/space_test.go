package mutables

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var shuffleOps = []string{"shuffle_3x3", "shuffle_5x5", "shuffle_7x7", "shuffle_xception"}

// testSpace is the SearchableShuffleNetV2 space: 20 blocks, 4 ops each.
func testSpace(t testing.TB) *Space {
	t.Helper()
	var blocks []Block
	for s, n := range []int{4, 4, 8, 4} {
		for b := 0; b < n; b++ {
			blocks = append(blocks, Block{
				ID:      fmt.Sprintf("stage_%d_block_%d", s, b),
				Path:    fmt.Sprintf("backbone.layers.%d.%d", s, b),
				Choices: shuffleOps,
			})
		}
	}
	sp, err := NewSpace(blocks)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestSpaceSize(t *testing.T) {
	if got := testSpace(t).Size().String(); got != "1099511627776" { // 4^20
		t.Fatalf("size = %s", got)
	}
}

// chiSquare draws n subnets and returns the summed per-block chi-square
// statistic against the uniform distribution.
func chiSquare(sp *Space, n int, sample func() Subnet) float64 {
	counts := map[string]map[string]int{}
	for _, id := range sp.IDs() {
		counts[id] = map[string]int{}
	}
	for i := 0; i < n; i++ {
		for id, op := range sample() {
			counts[id][op]++
		}
	}
	chi := 0.0
	expected := float64(n) / 4
	for _, id := range sp.IDs() {
		for _, op := range shuffleOps {
			d := float64(counts[id][op]) - expected
			chi += d * d / expected
		}
	}
	return chi
}

// TestSampleUniform runs a chi-square test of uniformity per block: with
// 20 blocks x 3 degrees of freedom the summed statistic follows chi2(60),
// whose 0.999 quantile is 99.6. The seed is fixed, so the test is exact.
func TestSampleUniform(t *testing.T) {
	sp := testSpace(t)
	rng := rand.New(rand.NewPCG(1, 2))
	if chi := chiSquare(sp, 20000, func() Subnet { return sp.Sample(rng) }); chi > 99.6 {
		t.Fatalf("chi-square %.1f over 60 dof: sampling is not uniform", chi)
	}
	// The same test rejects a sampler that slightly under-draws one op of one block.
	biased := func() Subnet {
		sub := sp.Sample(rng)
		if sub["stage_1_block_2"] == "shuffle_xception" && rng.Float64() < 0.2 {
			sub["stage_1_block_2"] = "shuffle_3x3"
		}
		return sub
	}
	if chi := chiSquare(sp, 20000, biased); chi <= 99.6 {
		t.Fatalf("chi-square %.1f: the test cannot detect a biased sampler", chi)
	}
}

func TestSampleReproducible(t *testing.T) {
	sp := testSpace(t)
	a := sp.Sample(rand.New(rand.NewPCG(7, 7)))
	b := sp.Sample(rand.New(rand.NewPCG(7, 7)))
	c := sp.Sample(rand.New(rand.NewPCG(8, 7)))
	if sp.Key(a) != sp.Key(b) {
		t.Fatal("same seed, different subnets")
	}
	if sp.Key(a) == sp.Key(c) {
		t.Fatal("different seeds gave the same 20-block subnet")
	}
	if err := sp.Validate(a); err != nil {
		t.Fatal(err)
	}
}

func TestMutateAndCrossover(t *testing.T) {
	sp := testSpace(t)
	rng := rand.New(rand.NewPCG(3, 4))
	parent := sp.Sample(rng)
	if got := sp.Mutate(parent, 0, rng); sp.Key(got) != sp.Key(parent) {
		t.Fatal("mutation with prob 0 changed the subnet")
	}
	// With prob 1 every block is redrawn uniformly: about 3/4 of them change.
	changed := 0
	const trials = 500
	for i := 0; i < trials; i++ {
		m := sp.Mutate(parent, 1, rng)
		for id := range parent {
			if m[id] != parent[id] {
				changed++
			}
		}
	}
	if frac := float64(changed) / (trials * 20); frac < 0.72 || frac > 0.78 {
		t.Fatalf("prob-1 mutation changed %.3f of blocks, want about 0.75", frac)
	}
	// With prob 0.1, about 0.1*3/4 of the blocks change.
	changed = 0
	for i := 0; i < trials; i++ {
		m := sp.Mutate(parent, 0.1, rng)
		for id := range parent {
			if m[id] != parent[id] {
				changed++
			}
		}
	}
	if frac := float64(changed) / (trials * 20); frac < 0.06 || frac > 0.09 {
		t.Fatalf("prob-0.1 mutation changed %.3f of blocks, want about 0.075", frac)
	}
	if parent2 := sp.Sample(rng); true {
		fromB := 0
		for i := 0; i < trials; i++ {
			child := sp.Crossover(parent, parent2, rng)
			for id := range child {
				if child[id] != parent[id] && child[id] != parent2[id] {
					t.Fatalf("crossover invented op %s for %s", child[id], id)
				}
				if parent[id] != parent2[id] && child[id] == parent2[id] {
					fromB++
				}
			}
		}
		differing := 0
		for id := range parent {
			if parent[id] != parent2[id] {
				differing++
			}
		}
		if frac := float64(fromB) / float64(trials*differing); frac < 0.45 || frac > 0.55 {
			t.Fatalf("crossover took %.3f of differing blocks from parent 2, want 0.5", frac)
		}
	}
}

func TestNewSpaceErrors(t *testing.T) {
	cases := []struct {
		blocks []Block
		frag   string
	}{
		{[]Block{{ID: "a", Choices: []string{"x"}}, {ID: "a", Choices: []string{"x"}}}, `block id "a" appears twice`},
		{[]Block{{ID: "a"}}, "block a has no choices"},
		{[]Block{{ID: "a", Choices: []string{"x", "x"}}}, `names choice "x" twice`},
		{[]Block{{Choices: []string{"x"}}}, "block 0 has no id"},
		{[]Block{{ID: "a", Path: "p", Choices: []string{"x"}}, {ID: "b", Path: "p", Choices: []string{"x"}}}, `module path "p" appears twice`},
	}
	for _, tc := range cases {
		if _, err := NewSpace(tc.blocks); err == nil || !strings.Contains(err.Error(), tc.frag) {
			t.Errorf("NewSpace(%v) = %v, want %q", tc.blocks, err, tc.frag)
		}
	}
}

func TestSubnetFilesRoundTrip(t *testing.T) {
	sp := testSpace(t)
	want, err := os.ReadFile("testdata/subnet_v0x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := ReadSubnetFile("testdata/subnet_v0x.yaml", sp)
	if err != nil {
		t.Fatal(err)
	}
	if got := FormatSubnet(sub); string(got) != string(want) {
		t.Fatalf("writer differs from PyYAML's bytes:\n%s\nwant:\n%s", got, want)
	}
	v1, err := ReadSubnetFile("testdata/subnet_v1x.yaml", sp)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Key(v1) != sp.Key(sub) {
		t.Fatal("the 1.x file names a different subnet than the 0.x file")
	}
	out := filepath.Join(t.TempDir(), "best_subnet.yaml")
	if err := WriteSubnetFile(out, v1); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != string(want) {
		t.Fatal("written file differs from the reference bytes")
	}
}

func TestSubnetFileErrors(t *testing.T) {
	sp := testSpace(t)
	full := func(edit func(m map[string]string)) string {
		m := map[string]string{}
		for _, id := range sp.IDs() {
			m[id] = "shuffle_3x3"
		}
		edit(m)
		return string(FormatSubnet(m))
	}
	cases := []struct {
		body string
		frag []string
	}{
		{full(func(m map[string]string) { delete(m, "stage_2_block_7") }), []string{"no choice for block stage_2_block_7", "shuffle_3x3, shuffle_5x5, shuffle_7x7, shuffle_xception"}},
		{full(func(m map[string]string) { m["stage_4_block_0"] = "shuffle_3x3" }), []string{`block "stage_4_block_0" is not in the search space`, "did you mean"}},
		{full(func(m map[string]string) { m["stage_0_block_0"] = "shuffle_9x9" }), []string{`chooses "shuffle_9x9" for block stage_0_block_0`, "allowed: shuffle_3x3"}},
		{"stage_0_block_0:\n  chosen: [a, b]\n", []string{"exactly one op"}},
		{"stage_0_block_0:\n  pick: [a]\n", []string{"expected {chosen: [op]}"}},
		{"- a\n", []string{"must be a mapping"}},
		{"a: [\n", []string{"subnet file"}},
		{"stage_0_block_0: {chosen: [shuffle_3x3]}\nbackbone.layers.0.0: {chosen: shuffle_3x3}\n", []string{"given twice"}},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		p := filepath.Join(dir, fmt.Sprintf("s%d.yaml", i))
		os.WriteFile(p, []byte(tc.body), 0o644)
		_, err := ReadSubnetFile(p, sp)
		if err == nil {
			t.Errorf("case %d: expected an error", i)
			continue
		}
		for _, f := range append(tc.frag, p) {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("case %d: error %q lacks %q", i, err, f)
			}
		}
	}
	if _, err := ReadSubnetFile(filepath.Join(dir, "none.yaml"), sp); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
}
