package runners

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/models/nn"
	"gorgonia.org/tensor"
)

// Data-parallel training (--launcher mpi) as mmcv's distributed runner
// does it: every rank builds the same model, rank 0's initial weights are
// broadcast once, every rank trains on its own shard of each epoch (the
// loader's Rank and WorldSize: PyTorch's DistributedSampler), the
// gradients of each step are averaged over the ranks before the optimizer
// steps, and the logged loss terms are averaged too (mmcv's _parse_losses).
// A one-shot algorithm broadcasts rank 0's path each iteration
// (algorithms.OneShotBase). Only rank 0 writes logs and checkpoints.

// OpenRunLog starts the files of a run in workDir on rank 0 of comm (the
// only process of a single one): the merged config's copy and the logger
// (text and JSON logs, echoed to out). The other ranks get a logger that
// writes nothing; their errors reach the terminal through the tool.
func OpenRunLog(cfg *config.Config, workDir string, out io.Writer, comm dist.Comm) (*Logger, error) {
	if comm.Rank() != 0 {
		return &Logger{}, nil
	}
	if err := cfg.WriteFile(filepath.Join(workDir, filepath.Base(strings.TrimSuffix(cfg.File, filepath.Ext(cfg.File)))+".yaml")); err != nil {
		return nil, err
	}
	return NewLogger(workDir, time.Now(), out)
}

// BroadcastWeights copies rank 0's parameters and float32 buffers (batch
// norm's running statistics) to every rank, in the module's order.
func BroadcastWeights(c dist.Comm, m nn.Module) error {
	if c.Size() == 1 {
		return nil
	}
	for _, p := range m.NamedParameters() {
		if err := dist.BroadcastFloat32(c, p.Data(), 0); err != nil {
			return fmt.Errorf("broadcasting %s: %w", p.Name(), err)
		}
	}
	for _, b := range m.NamedBuffers() {
		v := b.Value()
		if v.Dtype() != tensor.Float32 {
			continue
		}
		if err := dist.BroadcastFloat32(c, v.Float32s(), 0); err != nil {
			return fmt.Errorf("broadcasting %s: %w", b.Name(), err)
		}
	}
	return nil
}

// AverageGradients replaces every gradient of params by its mean over the
// ranks. Every rank must hold gradients for the same parameters (the same
// path); the names are checked once by a digest so a mismatch is an error,
// not a silent mix of two tensors. The gradients travel in buckets of at
// most dist.PieceBytes.
func AverageGradients(c dist.Comm, params []*nn.Param) error {
	if c.Size() == 1 {
		return nil
	}
	var with []*nn.Param
	h := fnvOffset
	for _, p := range params {
		if p.Grad() != nil {
			with = append(with, p)
			h = fnv(h, p.Name())
		}
	}
	// One collective checks that every rank has the same set: each adds its
	// digest and the sum must be size x digest (collisions aside).
	check := []float64{float64(h >> 20), 1}
	if err := c.AllReduceFloat64(check); err != nil {
		return err
	}
	if check[0] != float64(h>>20)*float64(c.Size()) {
		return fmt.Errorf("rank %d: the ranks hold gradients for different parameters (%d here); every rank must train the same path", c.Rank(), len(with))
	}
	per := dist.PieceBytes / 4
	bucket := make([]float32, 0, per)
	var members []*nn.Param
	flush := func() error {
		if len(bucket) == 0 {
			return nil
		}
		if err := dist.AllReduceMean(c, bucket); err != nil {
			return err
		}
		off := 0
		for _, p := range members {
			g := p.GradData()
			copy(g, bucket[off:off+len(g)])
			off += len(g)
		}
		bucket, members = bucket[:0], members[:0]
		return nil
	}
	for _, p := range with {
		g := p.GradData()
		if len(g) > per {
			if err := flush(); err != nil {
				return err
			}
			if err := dist.AllReduceMean(c, g); err != nil {
				return err
			}
			continue
		}
		if len(bucket)+len(g) > per {
			if err := flush(); err != nil {
				return err
			}
		}
		bucket = append(bucket, g...)
		members = append(members, p)
	}
	return flush()
}

// AverageValues replaces each logged value by its mean over the ranks.
func AverageValues(c dist.Comm, vals []NamedValue) error {
	if c.Size() == 1 || len(vals) == 0 {
		return nil
	}
	buf := make([]float64, len(vals))
	for i, v := range vals {
		buf[i] = v.Value
	}
	if err := c.AllReduceFloat64(buf); err != nil {
		return err
	}
	for i := range vals {
		vals[i].Value = buf[i] / float64(c.Size())
	}
	return nil
}

const fnvOffset uint64 = 14695981039346656037

// fnv folds s into the FNV-1a hash h.
func fnv(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return (h ^ 0xff) * 1099511628211
}
