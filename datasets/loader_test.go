package datasets

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

// fakeDataset gives sample i as a 1 x (1 + i%3) gray image of value i with
// label i%5; its pipeline adds a random fraction and makes the image CHW.
type fakeDataset struct {
	n      int
	failAt int
}

func (d *fakeDataset) Len() int           { return d.n }
func (d *fakeDataset) Classes() []string  { return []string{"a", "b", "c", "d", "e"} }
func (d *fakeDataset) Pipeline() Pipeline { return Pipeline{&jitterTransform{failAt: d.failAt}} }
func (d *fakeDataset) Get(i int) (Sample, error) {
	w := 1 + i%3
	img := NewImageU8(1, w, 1)
	for k := range img.U8 {
		img.U8[k] = uint8(i)
	}
	return Sample{Index: i, Source: fmt.Sprintf("fake entry %d", i), Img: img, GTLabel: i % 5}, nil
}

type jitterTransform struct{ failAt int }

func (t *jitterTransform) Apply(s *Sample, rng *rand.Rand) error {
	if s.Index == t.failAt {
		return errors.New("cannot decode")
	}
	im := s.Img.Float32()
	for k := range im.F32 {
		im.F32[k] += float32(rng.Float64())
	}
	s.Img = im.ToCHW()
	return nil
}

func collect(t *testing.T, seq iter.Seq2[*Batch, error], limit int) []*Batch {
	t.Helper()
	var out []*Batch
	for b, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		if len(out) == limit {
			break
		}
	}
	return out
}

func newLoader(t *testing.T, ds Dataset, o LoaderOptions) *Loader {
	t.Helper()
	l, err := NewLoader(ds, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLoaderDeterministicAcrossWorkers(t *testing.T) {
	ds := &fakeDataset{n: 23, failAt: -1}
	var ref []*Batch
	for _, workers := range []int{0, 1, 3} {
		l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, WorkersPerGPU: workers, Shuffle: true, Seed: 11, WorldSize: 1, Prefetch: 1})
		got := append(collect(t, l.Epoch(context.Background(), 0), -1), collect(t, l.Epoch(context.Background(), 1), -1)...)
		if ref == nil {
			ref = got
			continue
		}
		if len(got) != len(ref) {
			t.Fatalf("%d workers: %d batches, want %d", workers, len(got), len(ref))
		}
		for i := range got {
			if !slices.Equal(got[i].Indices, ref[i].Indices) || !slices.Equal(got[i].Img, ref[i].Img) || got[i].Shape != ref[i].Shape {
				t.Fatalf("%d workers: batch %d differs: %v %v vs %v %v", workers, i, got[i].Indices, got[i].Img, ref[i].Indices, ref[i].Img)
			}
		}
	}
	var epoch0 []int
	for _, b := range ref[:6] {
		epoch0 = append(epoch0, b.Indices...)
	}
	sorted := slices.Sorted(slices.Values(epoch0))
	for i, v := range sorted {
		if v != i {
			t.Fatalf("epoch 0 is not a permutation of 0..22: %v", epoch0)
		}
	}
	var epoch1 []int
	for _, b := range ref[6:] {
		epoch1 = append(epoch1, b.Indices...)
	}
	if slices.Equal(epoch0, epoch1) {
		t.Fatal("shuffling gave the same order in epochs 0 and 1")
	}
	if ref[6].Epoch != 1 || ref[0].Epoch != 0 {
		t.Fatalf("batch epochs %d %d", ref[0].Epoch, ref[6].Epoch)
	}
	other := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, Shuffle: true, Seed: 12, WorldSize: 1})
	if slices.Equal(other.Indices(0), epoch0) {
		t.Fatal("seeds 11 and 12 gave the same order")
	}
	plain := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, WorldSize: 1})
	want := make([]int, 23)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(plain.Indices(3), want) {
		t.Fatalf("without shuffle the order is %v", plain.Indices(3))
	}
}

func TestLoaderCollate(t *testing.T) {
	ds := &fakeDataset{n: 3, failAt: -1}
	l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 3, WorldSize: 1, SizeDivisor: 4, PadValue: -1})
	b := collect(t, l.Epoch(context.Background(), 0), -1)[0]
	if b.Shape != [4]int{3, 1, 4, 4} || len(b.Img) != 48 {
		t.Fatalf("shape %v, want [3 1 4 4] (widths 1..3 padded to the size divisor)", b.Shape)
	}
	// Image 2 is 1x3 with value 2 + a fraction; the rest of its plane is -1.
	plane := b.Img[32:48]
	for x := range 3 {
		if plane[x] < 2 || plane[x] >= 3 {
			t.Fatalf("image 2 pixel %d = %v", x, plane[x])
		}
	}
	for _, v := range plane[3:] {
		if v != -1 {
			t.Fatalf("padding %v, want -1: %v", v, plane)
		}
	}
	if !slices.Equal(b.Labels, []int{0, 1, 2}) || !slices.Equal(b.Indices, []int{0, 1, 2}) || b.GT != nil || len(b.Metas) != 3 {
		t.Fatalf("labels %v indices %v gt %v metas %d", b.Labels, b.Indices, b.GT, len(b.Metas))
	}
}

func TestLoaderDropLastAndSharding(t *testing.T) {
	ds := &fakeDataset{n: 23, failAt: -1}
	keep := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, WorldSize: 1})
	drop := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, WorldSize: 1, DropLast: true})
	kb := collect(t, keep.Epoch(context.Background(), 0), -1)
	db := collect(t, drop.Epoch(context.Background(), 0), -1)
	if keep.Len() != 6 || len(kb) != 6 || kb[5].Len() != 3 || drop.Len() != 5 || len(db) != 5 || db[4].Len() != 4 {
		t.Fatalf("keep: Len %d, %d batches, last %d; drop: Len %d, %d batches", keep.Len(), len(kb), kb[5].Len(), drop.Len(), len(db))
	}
	seen := map[int]int{}
	for rank := range 3 {
		l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, WorldSize: 3, Rank: rank, Shuffle: true, Seed: 3})
		idx := l.Indices(2)
		if len(idx) != 8 || l.Len() != 2 {
			t.Fatalf("rank %d: %d samples, %d batches; want 8 and 2", rank, len(idx), l.Len())
		}
		var fromBatches []int
		for _, b := range collect(t, l.Epoch(context.Background(), 2), -1) {
			fromBatches = append(fromBatches, b.Indices...)
		}
		if !slices.Equal(fromBatches, idx) {
			t.Fatalf("rank %d batches %v, indices %v", rank, fromBatches, idx)
		}
		for _, i := range idx {
			seen[i]++
		}
	}
	dups := 0
	for i := range 23 {
		switch seen[i] {
		case 1:
		case 2:
			dups++
		default:
			t.Fatalf("index %d seen %d times across ranks", i, seen[i])
		}
	}
	if dups != 1 {
		t.Fatalf("%d indices repeated to pad 23 to 24, want 1", dups)
	}
}

func TestLoaderEndless(t *testing.T) {
	ds := &fakeDataset{n: 10, failAt: -1}
	l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, WorkersPerGPU: 2, WorldSize: 1, Shuffle: true, Seed: 9})
	batches := collect(t, l.Endless(context.Background(), 0), 10)
	var got []int
	for _, b := range batches {
		if b.Len() != 4 {
			t.Fatalf("endless batch of %d, want always 4", b.Len())
		}
		got = append(got, b.Indices...)
	}
	var want []int
	for e := range 4 {
		want = append(want, l.Indices(e)...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("endless order %v, want passes 0..3 in turn %v", got, want)
	}
	if batches[2].Epoch != 0 || batches[3].Epoch != 1 {
		t.Fatalf("batch 2 (samples 8..11) starts in pass 0, batch 3 in pass 1; got %d %d", batches[2].Epoch, batches[3].Epoch)
	}
	// The same index draws different random values in different passes.
	first := map[int]float32{}
	for _, b := range batches[:2] {
		for k, i := range b.Indices {
			first[i] = b.Img[k*b.Shape[3]]
		}
	}
	same := 0
	for _, b := range batches[3:5] {
		for k, i := range b.Indices {
			if v, ok := first[i]; ok && v == b.Img[k*b.Shape[3]] {
				same++
			}
		}
	}
	if same > 0 {
		t.Fatalf("%d samples repeated their random draw in the next pass", same)
	}
	next, stop := iter.Pull2(l.Endless(context.Background(), 5))
	b, err, ok := next()
	stop()
	if !ok || err != nil || b.Epoch != 5 || !slices.Equal(b.Indices, l.Indices(5)[:4]) {
		t.Fatalf("pull from pass 5: ok %v err %v batch %v", ok, err, b)
	}
}

func TestLoaderErrorsStopIteration(t *testing.T) {
	for _, workers := range []int{0, 2} {
		ds := &fakeDataset{n: 20, failAt: 9}
		l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, WorkersPerGPU: workers, WorldSize: 1})
		var good int
		var errs []error
		for b, err := range l.Epoch(context.Background(), 0) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if len(errs) > 0 {
				t.Fatalf("%d workers: a batch came after the error", workers)
			}
			good += b.Len()
		}
		if good != 8 || len(errs) != 1 {
			t.Fatalf("%d workers: %d good samples and %d errors, want 8 and 1", workers, good, len(errs))
		}
		wantErr(t, errs[0], "fake entry 9", "pipeline step 0 (jitterTransform)", "cannot decode")
	}
}

func TestLoaderStopsWorkers(t *testing.T) {
	ds := &fakeDataset{n: 1000, failAt: -1}
	l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 2, WorkersPerGPU: 4, WorldSize: 1})
	before := runtime.NumGoroutine()
	if got := collect(t, l.Endless(context.Background(), 0), 3); len(got) != 3 {
		t.Fatalf("%d batches", len(got))
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after stopping, %d before", n, before)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range l.Epoch(ctx, 0) {
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled context gave %v", err)
		}
		break
	}
}

func TestLoaderOptionErrors(t *testing.T) {
	ds := &fakeDataset{n: 3, failAt: -1}
	cases := []struct {
		o    LoaderOptions
		frag string
	}{
		{LoaderOptions{SamplesPerGPU: 0, WorldSize: 1}, "samples_per_gpu"},
		{LoaderOptions{SamplesPerGPU: 1, WorkersPerGPU: -1, WorldSize: 1}, "workers_per_gpu"},
		{LoaderOptions{SamplesPerGPU: 1, WorldSize: 2, Rank: 2}, "rank 2"},
		{LoaderOptions{SamplesPerGPU: 1, Rank: 1}, "rank 1 must be in [0, 1)"},
		{LoaderOptions{SamplesPerGPU: 1, WorldSize: -2}, "world_size -2"},
		{LoaderOptions{SamplesPerGPU: 4, WorldSize: 1, DropLast: true}, "drop_last"},
	}
	for _, c := range cases {
		_, err := NewLoader(ds, c.o)
		wantErr(t, err, c.frag)
	}
}

func TestLoaderMNISTPipeline(t *testing.T) {
	ds, err := Datasets.Build(map[string]any{"type": "MNIST", "test_mode": true, "pipeline": mnistPipeline()}, "data.val", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 8, WorkersPerGPU: 2, WorldSize: 1})
	b := collect(t, l.Epoch(context.Background(), 0), 1)[0]
	if b.Shape != [4]int{8, 3, 32, 32} || !slices.Equal(b.Labels[:3], []int{7, 2, 1}) {
		t.Fatalf("shape %v labels %v", b.Shape, b.Labels)
	}
	// The corners of MNIST digits are background: (0 - 33.46) / 78.87.
	if v := b.Img[0]; v > -0.42 || v < -0.43 {
		t.Fatalf("normalized background %v, want -0.4242", v)
	}
}

// mnistPipeline is mmcls's MNIST pipeline with a 3-channel stem.
func mnistPipeline() []any {
	return []any{
		map[string]any{"type": "Resize", "size": 32},
		map[string]any{"type": "GrayToColor"},
		map[string]any{"type": "Normalize", "mean": []any{33.46}, "std": []any{78.87}, "to_rgb": false},
		map[string]any{"type": "ImageToTensor", "keys": []any{"img"}},
		map[string]any{"type": "ToTensor", "keys": []any{"gt_label"}},
		map[string]any{"type": "Collect", "keys": []any{"img", "gt_label"}},
	}
}

// TestLoaderEndlessFrom: skipping k batches yields exactly batches k, k+1,
// ... of the uninterrupted stream, pixel for pixel, for every k across pass
// boundaries.
func TestLoaderEndlessFrom(t *testing.T) {
	ds := &fakeDataset{n: 10, failAt: -1}
	l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, WorkersPerGPU: 2, WorldSize: 1, Shuffle: true, Seed: 3})
	all := collect(t, l.Endless(context.Background(), 0), 12)
	for skip := 0; skip < 8; skip++ {
		got := collect(t, l.EndlessFrom(context.Background(), skip), 4)
		for k, b := range got {
			want := all[skip+k]
			if !slices.Equal(b.Indices, want.Indices) || !slices.Equal(b.Img, want.Img) || b.Epoch != want.Epoch {
				t.Fatalf("skip %d, batch %d: indices %v epoch %d, want %v epoch %d", skip, k, b.Indices, b.Epoch, want.Indices, want.Epoch)
			}
		}
	}
}

// groupedFake is fakeDataset with mmdet's aspect flag: sample i is
// landscape (group 1) when i%3 == 0.
type groupedFake struct{ fakeDataset }

func (d *groupedFake) AspectFlag(i int) int {
	if i%3 == 0 {
		return 1
	}
	return 0
}

func TestLoaderGroupsByAspectRatio(t *testing.T) {
	ds := &groupedFake{fakeDataset{n: 23, failAt: -1}}
	flags := AspectFlags(ds)
	if len(flags) != 23 || flags[0] != 1 || flags[1] != 0 || flags[21] != 1 {
		t.Fatalf("flags %v", flags)
	}
	opts := LoaderOptions{SamplesPerGPU: 4, WorkersPerGPU: 2, WorldSize: 1, Shuffle: true, Seed: 5, Groups: flags}
	l := newLoader(t, ds, opts)
	// 8 landscape samples make 2 batches; 15 others make 4, one sample
	// repeated: 24 samples, 6 batches, and nothing dropped.
	if l.Len() != 6 {
		t.Fatalf("Len %d, want 6", l.Len())
	}
	var epochs [][]int
	for e := range 2 {
		batches := collect(t, l.Epoch(context.Background(), e), -1)
		if len(batches) != 6 {
			t.Fatalf("epoch %d: %d batches", e, len(batches))
		}
		var order []int
		count := map[int]int{}
		for _, b := range batches {
			if b.Len() != 4 {
				t.Fatalf("epoch %d: a batch of %d", e, b.Len())
			}
			for _, i := range b.Indices {
				if flags[i] != flags[b.Indices[0]] {
					t.Fatalf("epoch %d: batch %v mixes landscape and portrait", e, b.Indices)
				}
				count[i]++
			}
			order = append(order, b.Indices...)
		}
		repeated := -1
		for i := range 23 {
			switch count[i] {
			case 1:
			case 2:
				repeated = i
			default:
				t.Fatalf("epoch %d: sample %d seen %d times", e, i, count[i])
			}
		}
		if repeated < 0 || flags[repeated] != 0 {
			t.Fatalf("epoch %d: the padding repeats sample %d, want one portrait sample", e, repeated)
		}
		// The repetition draws its own random values, as mmdet's second
		// visit of an image does.
		var draws []float32
		for _, b := range batches {
			for k, i := range b.Indices {
				if i == repeated {
					draws = append(draws, b.Img[k*b.Shape[2]*b.Shape[3]])
				}
			}
		}
		if draws[0] == draws[1] {
			t.Fatalf("epoch %d: both visits of sample %d drew %v", e, repeated, draws[0])
		}
		if !slices.Equal(order, l.Indices(e)) {
			t.Fatalf("epoch %d: batches %v, Indices %v", e, order, l.Indices(e))
		}
		epochs = append(epochs, order)
	}
	if slices.Equal(epochs[0], epochs[1]) {
		t.Fatal("epochs 0 and 1 have the same order")
	}
	again := newLoader(t, ds, opts)
	if !slices.Equal(again.Indices(1), epochs[1]) {
		t.Fatal("the same seed gave another order")
	}
	opts.Seed = 6
	if slices.Equal(newLoader(t, ds, opts).Indices(0), epochs[0]) {
		t.Fatal("seeds 5 and 6 gave the same order")
	}
	// Without groups, a shuffled batch does mix them (the check above has
	// teeth).
	plain := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, WorldSize: 1, Shuffle: true, Seed: 5})
	mixed := false
	idx := plain.Indices(0)
	for start := 0; start+4 <= len(idx); start += 4 {
		for _, i := range idx[start : start+4] {
			mixed = mixed || flags[i] != flags[idx[start]]
		}
	}
	if !mixed {
		t.Fatal("the ungrouped order never mixes groups; pick another seed")
	}
}

func TestLoaderGroupsAcrossRanks(t *testing.T) {
	ds := &groupedFake{fakeDataset{n: 23, failAt: -1}}
	flags := AspectFlags(ds)
	seen := map[int]int{}
	for rank := range 3 {
		l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 4, WorldSize: 3, Rank: rank, Shuffle: true, Seed: 2, Groups: flags})
		// Each group padded to whole batches on every rank: landscape 8 ->
		// 12 (one batch a rank), portrait 15 -> 24 (two a rank).
		idx := l.Indices(1)
		if len(idx) != 12 || l.Len() != 3 {
			t.Fatalf("rank %d: %d samples, %d batches; want 12 and 3", rank, len(idx), l.Len())
		}
		for start := 0; start < len(idx); start += 4 {
			for _, i := range idx[start : start+4] {
				if flags[i] != flags[idx[start]] {
					t.Fatalf("rank %d: batch %v mixes groups", rank, idx[start:start+4])
				}
			}
		}
		for _, i := range idx {
			seen[i]++
		}
	}
	for i := range 23 {
		if seen[i] == 0 {
			t.Fatalf("sample %d is on no rank", i)
		}
	}
}

// TestLoaderGroupedResume: a run resumed after k batches sees exactly the
// batches, pixel for pixel, an uninterrupted grouped run sees.
func TestLoaderGroupedResume(t *testing.T) {
	ds := &groupedFake{fakeDataset{n: 10, failAt: -1}}
	l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 3, WorkersPerGPU: 2, WorldSize: 1, Shuffle: true, Seed: 3, Groups: AspectFlags(ds)})
	all := collect(t, l.Endless(context.Background(), 0), 12)
	if l.Len() != 4 || all[4].Epoch != 1 || all[3].Epoch != 0 {
		t.Fatalf("Len %d; batch 3 in pass %d, batch 4 in pass %d: passes must end on batch boundaries", l.Len(), all[3].Epoch, all[4].Epoch)
	}
	for skip := range 9 {
		got := collect(t, l.EndlessFrom(context.Background(), skip), 3)
		for k, b := range got {
			want := all[skip+k]
			if !slices.Equal(b.Indices, want.Indices) || !slices.Equal(b.Img, want.Img) || b.Epoch != want.Epoch {
				t.Fatalf("skip %d, batch %d: indices %v epoch %d, want %v epoch %d", skip, k, b.Indices, b.Epoch, want.Indices, want.Epoch)
			}
		}
	}
}

func TestLoaderGroupErrors(t *testing.T) {
	ds := &fakeDataset{n: 3, failAt: -1}
	cases := []struct {
		o    LoaderOptions
		frag string
	}{
		{LoaderOptions{SamplesPerGPU: 2, WorldSize: 1, Shuffle: true, Groups: []int{0, 1}}, "2 group flags for 3 samples"},
		{LoaderOptions{SamplesPerGPU: 2, WorldSize: 1, Groups: []int{0, 1, 0}}, "needs shuffle"},
		{LoaderOptions{SamplesPerGPU: 2, WorldSize: 1, Shuffle: true, Groups: []int{0, -1, 0}}, "sample 1 has the negative group -1"},
	}
	for _, c := range cases {
		_, err := NewLoader(ds, c.o)
		wantErr(t, err, c.frag)
	}
	if AspectFlags(ds) != nil {
		t.Fatal("a dataset without flags has flags")
	}
	sub := &Subset{Dataset: &groupedFake{fakeDataset{n: 7, failAt: -1}}, Indices: []int{6, 1, 3}}
	if got := AspectFlags(sub); !slices.Equal(got, []int{1, 0, 1}) {
		t.Fatalf("subset flags %v, want [1 0 1]", got)
	}
}
