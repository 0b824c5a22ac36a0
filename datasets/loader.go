package datasets

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// LoaderOptions configure a Loader, with mmcv's data config keys where mmcv
// has them.
type LoaderOptions struct {
	// SamplesPerGPU is the batch size (per rank).
	SamplesPerGPU int `cfg:"samples_per_gpu"`
	// WorkersPerGPU goroutines prepare samples in parallel; 0 prepares them
	// in the iterating goroutine.
	WorkersPerGPU int `cfg:"workers_per_gpu"`
	// Shuffle draws a new order every epoch from (Seed, epoch).
	Shuffle bool `cfg:"shuffle"`
	// DropLast drops an epoch's last, incomplete batch.
	DropLast bool `cfg:"drop_last"`
	// Seed seeds the order and every sample's random transforms.
	Seed uint64 `cfg:"seed"`
	// Rank and WorldSize shard each epoch across processes as PyTorch's
	// DistributedSampler does: the order is padded by repetition to a
	// multiple of WorldSize and rank r takes positions r, r+WorldSize, ...
	// A WorldSize of 0 means 1 (no sharding).
	Rank      int `cfg:"rank"`
	WorldSize int `cfg:"world_size"`
	// SizeDivisor rounds the padded batch height and width up to a multiple
	// of it (0 or 1: the largest image's size).
	SizeDivisor int `cfg:"size_divisor"`
	// PadValue fills the padding of smaller images in a batch.
	PadValue float64 `cfg:"pad_value"`
	// Prefetch is how many batches per worker may be prepared ahead.
	Prefetch int `cfg:"prefetch"`
	// Groups, one entry per sample (see AspectFlags), makes a shuffling
	// loader batch each group apart, as mmdet's GroupSampler and
	// DistributedGroupSampler do: every batch is from one group, each
	// group is padded to whole batches (on every rank) with repeated
	// samples, and the batches come in random order. DropLast has no
	// effect then: no batch is incomplete.
	Groups []int `cfg:"-"`
}

// Defaults sets a batch of one, one shard and mmcv's prefetch factor 2; call
// it before decoding a config into the options.
func (o *LoaderOptions) Defaults() {
	o.SamplesPerGPU = 1
	o.WorldSize = 1
	o.Prefetch = 2
}

// Loader batches a dataset's prepared samples. The batches of an epoch, and
// every image in them, depend only on the dataset, the options and the
// epoch number -- not on the number of workers or their timing.
type Loader struct {
	ds   Dataset
	opts LoaderOptions
}

// NewLoader checks the options.
func NewLoader(ds Dataset, o LoaderOptions) (*Loader, error) {
	if o.WorldSize == 0 {
		o.WorldSize = 1
	}
	switch {
	case ds == nil:
		return nil, errors.New("loader: no dataset")
	case ds.Len() == 0:
		return nil, errors.New("loader: the dataset is empty")
	case o.SamplesPerGPU < 1:
		return nil, fmt.Errorf("loader: samples_per_gpu %d must be at least 1", o.SamplesPerGPU)
	case o.WorkersPerGPU < 0:
		return nil, fmt.Errorf("loader: workers_per_gpu %d must not be negative", o.WorkersPerGPU)
	case o.WorldSize < 1:
		return nil, fmt.Errorf("loader: world_size %d must be at least 1", o.WorldSize)
	case o.Rank < 0 || o.Rank >= o.WorldSize:
		return nil, fmt.Errorf("loader: rank %d must be in [0, %d)", o.Rank, o.WorldSize)
	case o.SizeDivisor < 0:
		return nil, fmt.Errorf("loader: size_divisor %d must not be negative", o.SizeDivisor)
	case o.Groups != nil && len(o.Groups) != ds.Len():
		return nil, fmt.Errorf("loader: %d group flags for %d samples", len(o.Groups), ds.Len())
	case o.Groups != nil && !o.Shuffle:
		return nil, errors.New("loader: grouping by aspect ratio needs shuffle, as mmdet groups only its shuffled training loader")
	}
	for i, g := range o.Groups {
		if g < 0 {
			return nil, fmt.Errorf("loader: sample %d has the negative group %d", i, g)
		}
	}
	o.Prefetch = max(o.Prefetch, 1)
	l := &Loader{ds: ds, opts: o}
	if l.Len() == 0 {
		return nil, fmt.Errorf("loader: with drop_last, %d samples per rank make no batch of %d", l.perRank(), o.SamplesPerGPU)
	}
	return l, nil
}

// Dataset is the dataset being loaded.
func (l *Loader) Dataset() Dataset { return l.ds }

// Options are the loader's options.
func (l *Loader) Options() LoaderOptions { return l.opts }

// perRank is the number of samples each rank sees per epoch.
func (l *Loader) perRank() int {
	if l.opts.Groups != nil {
		return groupedPerRank(l.opts.Groups, l.opts.SamplesPerGPU, l.opts.WorldSize)
	}
	return (l.ds.Len() + l.opts.WorldSize - 1) / l.opts.WorldSize
}

// Len is the number of batches per epoch on this rank.
func (l *Loader) Len() int {
	n, b := l.perRank(), l.opts.SamplesPerGPU
	if l.opts.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// Indices is this rank's order of dataset indices for an epoch, before
// batching.
func (l *Loader) Indices(epoch int) []int {
	items := l.order(epoch)
	out := make([]int, len(items))
	for k, it := range items {
		out[k] = it.index
	}
	return out
}

// order is this rank's samples of an epoch. A sample the order repeats
// (padding to whole batches or to every rank) gets a random stream of its
// own for each repetition, as a repeated draw does in mmdet.
func (l *Loader) order(epoch int) []item {
	n := l.ds.Len()
	world := l.opts.WorldSize
	var mine []int // positions in the epoch's full order
	var full []int
	if l.opts.Groups != nil {
		full = groupedOrder(l.opts.Groups, l.opts.SamplesPerGPU, world, l.opts.Seed, epoch)
		per := len(full) / world
		for p := l.opts.Rank * per; p < (l.opts.Rank+1)*per; p++ {
			mine = append(mine, p)
		}
	} else {
		order := make([]int, n)
		if l.opts.Shuffle {
			order = rand.New(rand.NewPCG(l.opts.Seed, mix64(uint64(epoch)))).Perm(n)
		} else {
			for i := range order {
				order[i] = i
			}
		}
		total := l.perRank() * world
		full = make([]int, total)
		for p := range total {
			full[p] = order[p%n]
		}
		for p := l.opts.Rank; p < total; p += world {
			mine = append(mine, p)
		}
	}
	seen := make(map[int]int, n)
	keys := make([]int, len(full))
	for p, i := range full {
		keys[p] = i + seen[i]*n
		seen[i]++
	}
	out := make([]item, len(mine))
	for k, p := range mine {
		out[k] = item{index: full[p], epoch: epoch, key: keys[p]}
	}
	return out
}

// item is one sample to prepare: its dataset index, the pass it is in, and
// the key of its random stream in that pass (the index, unless the pass
// repeats the sample).
type item struct{ index, epoch, key int }

// Epoch yields the batches of one pass over the data. Stopping the range
// early stops the workers. The first error ends the iteration.
func (l *Loader) Epoch(ctx context.Context, epoch int) iter.Seq2[*Batch, error] {
	return l.run(ctx, func(yield func([]item) bool) {
		idx := l.order(epoch)
		b := l.opts.SamplesPerGPU
		for start := 0; start < len(idx); start += b {
			end := min(start+b, len(idx))
			if end-start < b && l.opts.DropLast {
				return
			}
			if !yield(idx[start:end:end]) {
				return
			}
		}
	})
}

// Endless yields full batches forever, for iteration-based training: the
// passes over the data follow each other with a new order each (epoch
// startEpoch, startEpoch+1, ...) and a batch may span two passes, as mmdet's
// infinite samplers do. Pull from it with iter.Pull2 and stop it when done.
func (l *Loader) Endless(ctx context.Context, startEpoch int) iter.Seq2[*Batch, error] {
	return l.endless(ctx, startEpoch, 0)
}

// EndlessFrom is Endless from epoch 0 with the first skip batches left out:
// it yields exactly what Endless(ctx, 0) yields after its first skip
// batches, without preparing them, so a resumed run sees the data an
// uninterrupted one would.
func (l *Loader) EndlessFrom(ctx context.Context, skip int) iter.Seq2[*Batch, error] {
	per := l.perRank()
	if per == 0 {
		return l.endless(ctx, 0, 0)
	}
	start := skip * l.opts.SamplesPerGPU
	return l.endless(ctx, start/per, start%per)
}

// endless yields full batches from position offset of pass startEpoch on.
func (l *Loader) endless(ctx context.Context, startEpoch, offset int) iter.Seq2[*Batch, error] {
	return l.run(ctx, func(yield func([]item) bool) {
		b := l.opts.SamplesPerGPU
		items := make([]item, 0, b)
		for epoch := startEpoch; ; epoch++ {
			idx := l.order(epoch)
			if len(idx) == 0 {
				return
			}
			if epoch == startEpoch {
				idx = idx[offset:]
			}
			for _, it := range idx {
				items = append(items, it)
				if len(items) == b {
					if !yield(items) {
						return
					}
					items = make([]item, 0, b)
				}
			}
		}
	})
}

// job is one batch being prepared.
type job struct {
	items   []item
	samples []Sample
	errs    []error
	pending atomic.Int32
	done    chan struct{}
	batch   *Batch
	err     error
}

// finish collates the job once its last sample is ready.
func (j *job) finish(l *Loader) {
	for _, err := range j.errs {
		if err != nil {
			j.err = err
			break
		}
	}
	if j.err == nil {
		j.batch, j.err = collate(j.samples, l.opts.SizeDivisor, float32(l.opts.PadValue))
		if j.batch != nil {
			j.batch.Epoch = j.items[0].epoch
		}
	}
	j.samples = nil
	close(j.done)
}

func (l *Loader) prepare(j *job, k int) {
	it := j.items[k]
	j.samples[k], j.errs[k] = Prepare(l.ds, it.index, SampleRNG(l.opts.Seed, it.epoch, it.key))
	if j.pending.Add(-1) == 0 {
		j.finish(l)
	}
}

func newJob(items []item) *job {
	j := &job{items: items, samples: make([]Sample, len(items)), errs: make([]error, len(items)), done: make(chan struct{})}
	j.pending.Store(int32(len(items)))
	return j
}

// run prepares the batches batches yields, in order, with the configured
// number of workers.
func (l *Loader) run(ctx context.Context, batches iter.Seq[[]item]) iter.Seq2[*Batch, error] {
	if l.opts.WorkersPerGPU == 0 {
		return func(yield func(*Batch, error) bool) {
			for items := range batches {
				if err := ctx.Err(); err != nil {
					yield(nil, err)
					return
				}
				j := newJob(items)
				for k := range items {
					l.prepare(j, k)
				}
				if j.err != nil {
					yield(nil, j.err)
					return
				}
				if !yield(j.batch, nil) {
					return
				}
			}
		}
	}
	return func(yield func(*Batch, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		type task struct {
			j *job
			k int
		}
		tasks := make(chan task)
		ordered := make(chan *job, l.opts.Prefetch*l.opts.WorkersPerGPU)
		for range l.opts.WorkersPerGPU {
			wg.Go(func() {
				for t := range tasks {
					l.prepare(t.j, t.k)
				}
			})
		}
		wg.Go(func() {
			defer close(ordered)
			defer close(tasks)
			for items := range batches {
				j := newJob(items)
				select {
				case ordered <- j:
				case <-ctx.Done():
					return
				}
				for k := range items {
					select {
					case tasks <- task{j, k}:
					case <-ctx.Done():
						return
					}
				}
			}
		})
		for j := range ordered {
			select {
			case <-j.done:
			case <-ctx.Done():
				yield(nil, ctx.Err())
				return
			}
			if j.err != nil {
				yield(nil, j.err)
				return
			}
			if !yield(j.batch, nil) {
				return
			}
		}
	}
}

// collate stacks prepared samples into a batch, padding images at the bottom
// and right to the largest one (rounded up to sizeDivisor).
func collate(samples []Sample, sizeDivisor int, padValue float32) (*Batch, error) {
	b := &Batch{Metas: make([]Meta, len(samples)), Indices: make([]int, len(samples))}
	withImg, withLabel, withGT := 0, 0, 0
	c, maxH, maxW := 0, 0, 0
	for i := range samples {
		s := &samples[i]
		b.Metas[i] = s.Meta
		b.Indices[i] = s.Index
		if s.GTLabel != NoLabel {
			withLabel++
		}
		if s.GT != nil {
			withGT++
		}
		if s.Img.Empty() {
			continue
		}
		withImg++
		if !s.Img.CHW {
			return nil, fmt.Errorf("%s: the image is still HWC at the end of the pipeline; end it with ImageToTensor or DefaultFormatBundle (then Collect)", s.Source)
		}
		if c != 0 && s.Img.C != c {
			return nil, fmt.Errorf("%s: the image has %d channels, others in the batch %d", s.Source, s.Img.C, c)
		}
		c = s.Img.C
		maxH, maxW = max(maxH, s.Img.H), max(maxW, s.Img.W)
	}
	if withImg != 0 && withImg != len(samples) {
		return nil, errors.New("some samples of the batch have an image and others not")
	}
	if withLabel != 0 && withLabel != len(samples) {
		return nil, errors.New("some samples of the batch have a gt_label and others not")
	}
	if withImg > 0 {
		if sizeDivisor > 1 {
			maxH = (maxH + sizeDivisor - 1) / sizeDivisor * sizeDivisor
			maxW = (maxW + sizeDivisor - 1) / sizeDivisor * sizeDivisor
		}
		b.Shape = [4]int{len(samples), c, maxH, maxW}
		b.Img = make([]float32, len(samples)*c*maxH*maxW)
		if padValue != 0 {
			for i := range b.Img {
				b.Img[i] = padValue
			}
		}
		for i := range samples {
			copyPlanes(b.Img[i*c*maxH*maxW:], samples[i].Img, maxH, maxW)
		}
	}
	if withLabel > 0 {
		b.Labels = make([]int, len(samples))
		for i := range samples {
			b.Labels[i] = samples[i].GTLabel
		}
	}
	if withGT > 0 {
		b.GT = make([]Instances, len(samples))
		for i := range samples {
			if samples[i].GT != nil {
				b.GT[i] = *samples[i].GT
			}
		}
	}
	return b, nil
}

// copyPlanes writes a CHW image into the top-left of an h x w canvas per
// channel.
func copyPlanes(dst []float32, im Image, h, w int) {
	for ch := range im.C {
		for y := range im.H {
			row := dst[(ch*h+y)*w : (ch*h+y)*w+im.W]
			src := (ch*im.H + y) * im.W
			if im.F32 != nil {
				copy(row, im.F32[src:src+im.W])
				continue
			}
			for x, v := range im.U8[src : src+im.W] {
				row[x] = float32(v)
			}
		}
	}
}
