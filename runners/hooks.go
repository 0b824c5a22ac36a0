package runners

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/razorgo/razor/runners/checkpoint"
)

// LrUpdaterHook sets the optimizer's lr before every iteration from an
// LrSchedule (mmcv's <Policy>LrUpdaterHook, VERY_HIGH priority).
type LrUpdaterHook struct {
	Schedule *LrSchedule
}

// Priority is VERY_HIGH.
func (h *LrUpdaterHook) Priority() int { return PriorityVeryHigh }

// BeforeTrainIter sets the lr for the iteration about to run.
func (h *LrUpdaterHook) BeforeTrainIter(r *Runner) error {
	r.Optimizer.SetLR(func(base float64) float64 {
		return h.Schedule.At(base, r.Iter, r.Epoch, r.MaxIters, r.MaxEpochs)
	})
	return nil
}

// GradClip is optimizer_config.grad_clip.
type GradClip struct {
	MaxNorm  float64 `cfg:"max_norm,required"`
	NormType float64 `cfg:"norm_type"`
}

// OptimizerHook clips gradients (optionally) and steps the optimizer after
// every training step, then clears the gradients (ABOVE_NORMAL priority).
// The `optimizer_config:` mapping builds it.
type OptimizerHook struct {
	GradClip *GradClip `cfg:"grad_clip"`
	// ZeroToNone (zero_grad_to_none, razor's) clears gradients to none,
	// so parameters off the next sampled path are not stepped at all. The
	// default, false, is mmcv 1.x on torch 1.x (the reference): gradients
	// are zero-filled, so weight decay and momentum keep moving every
	// parameter ever used. A supernet learns markedly faster that way
	// (README, "What the small recipe needed").
	ZeroToNone bool `cfg:"zero_grad_to_none"`
}

// Priority is ABOVE_NORMAL.
func (h *OptimizerHook) Priority() int { return PriorityAboveNormal }

// BeforeRun starts from clear gradients: none at all, or with zero-filled
// gradients a zero gradient on every parameter that has taken a step (a
// resumed run's, restored from its checkpoint).
func (h *OptimizerHook) BeforeRun(r *Runner) error {
	r.Optimizer.ZeroGrad(true)
	if !h.ZeroToNone {
		r.Optimizer.ZeroFillStepped()
	}
	return nil
}

// AfterTrainIter clips and steps.
func (h *OptimizerHook) AfterTrainIter(r *Runner) error {
	if h.GradClip != nil {
		norm := clipGradNorm(r, h.GradClip.MaxNorm, h.GradClip.NormType)
		r.Buffer.Add("grad_norm", norm, 1)
	}
	r.Optimizer.Step()
	r.Optimizer.ZeroGrad(h.ZeroToNone)
	return nil
}

// clipGradNorm scales every gradient so that their joint norm is at most
// maxNorm, as torch.nn.utils.clip_grad_norm_ does, and returns the norm
// before clipping.
func clipGradNorm(r *Runner, maxNorm, normType float64) float64 {
	if normType == 0 {
		normType = 2
	}
	params := r.Task.Module().NamedParameters()
	total := 0.0
	for _, p := range params {
		if p.Grad() == nil {
			continue
		}
		for _, g := range p.GradData() {
			if math.IsInf(normType, 1) {
				total = math.Max(total, math.Abs(float64(g)))
			} else {
				total += math.Pow(math.Abs(float64(g)), normType)
			}
		}
	}
	if !math.IsInf(normType, 1) {
		total = math.Pow(total, 1/normType)
	}
	coef := maxNorm / (total + 1e-6)
	if coef < 1 {
		for _, p := range params {
			if p.Grad() == nil {
				continue
			}
			g := p.GradData()
			for i := range g {
				g[i] *= float32(coef)
			}
		}
	}
	return total
}

// CheckpointHook saves checkpoints every Interval iterations or epochs, and
// at the end, keeping the newest MaxKeep (all when MaxKeep <= 0), with a
// `latest.json` link to the newest (NORMAL priority).
type CheckpointHook struct {
	Interval      int  `cfg:"interval"`
	ByEpoch       bool `cfg:"by_epoch"`
	MaxKeepCkpts  int  `cfg:"max_keep_ckpts"`
	SaveLast      bool `cfg:"save_last"`
	SaveOptimizer bool `cfg:"save_optimizer"`
	// OutDir is ignored in favour of the work dir unless set.
	OutDir string `cfg:"out_dir"`
}

// Defaults presets mmcv's defaults.
func (h *CheckpointHook) Defaults() {
	h.Interval = -1
	h.ByEpoch = true
	h.MaxKeepCkpts = -1
	h.SaveLast = true
	h.SaveOptimizer = true
}

// Priority is NORMAL.
func (h *CheckpointHook) Priority() int { return PriorityNormal }

// AfterTrainIter saves iteration checkpoints.
func (h *CheckpointHook) AfterTrainIter(r *Runner) error {
	if h.ByEpoch && r.ByEpoch {
		return nil
	}
	done := r.Iter + 1
	last := done == r.MaxIters
	if (h.Interval > 0 && done%h.Interval == 0) || (last && h.SaveLast) {
		return h.save(r, "iter_"+strconv.Itoa(done), done, r.Epoch, r.InnerIter+1)
	}
	return nil
}

// AfterTrainEpoch saves epoch checkpoints.
func (h *CheckpointHook) AfterTrainEpoch(r *Runner) error {
	if !h.ByEpoch || !r.ByEpoch {
		return nil
	}
	done := r.Epoch + 1
	last := done == r.MaxEpochs
	if (h.Interval > 0 && done%h.Interval == 0) || (last && h.SaveLast) {
		return h.save(r, "epoch_"+strconv.Itoa(done), r.Iter, done, 0)
	}
	return nil
}

func (h *CheckpointHook) dir(r *Runner) string {
	if h.OutDir != "" {
		return h.OutDir
	}
	return r.WorkDir
}

func (h *CheckpointHook) save(r *Runner, name string, iterDone, epochDone, innerDone int) error {
	if !r.Writes() {
		return nil
	}
	path, err := r.SaveCheckpoint(h.dir(r), name, iterDone, epochDone, innerDone, h.SaveOptimizer)
	if err != nil {
		return err
	}
	r.Log.Printf("Saving checkpoint at %s %s", name, path)
	if err := linkLatest(h.dir(r), filepath.Base(path)); err != nil {
		return err
	}
	if h.MaxKeepCkpts > 0 {
		return pruneCheckpoints(h.dir(r), h.MaxKeepCkpts)
	}
	return nil
}

// linkLatest points latest.json at the newest checkpoint's meta file,
// replacing the old link atomically.
func linkLatest(dir, target string) error {
	tmp := filepath.Join(dir, ".latest.json.tmp")
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("linking latest checkpoint: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "latest.json")); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("linking latest checkpoint: %w", err)
	}
	return nil
}

var ckptName = regexp.MustCompile(`^(iter|epoch)_([0-9]+)\.json$`)

// pruneCheckpoints removes all but the newest keep iter_/epoch_ checkpoints.
func pruneCheckpoints(dir string, keep int) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type ck struct {
		base string
		n    int
	}
	var cks []ck
	for _, de := range des {
		m := ckptName.FindStringSubmatch(de.Name())
		if m == nil || de.Type()&os.ModeSymlink != 0 {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		cks = append(cks, ck{m[1] + "_" + m[2], n})
	}
	sort.Slice(cks, func(i, j int) bool { return cks[i].n < cks[j].n })
	for len(cks) > keep {
		// The meta file goes first, so a crash in between leaves no
		// checkpoint that looks complete.
		base := filepath.Join(dir, cks[0].base)
		if err := os.Remove(base + ".json"); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("removing old checkpoint %s: %w", base, err)
		}
		if err := os.Remove(base + ".safetensors"); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("removing old checkpoint %s: %w", base, err)
		}
		cks = cks[1:]
	}
	return nil
}

// FindLatest returns the newest complete checkpoint in dir for
// --auto-resume, or "" when there is none.
func FindLatest(dir string) string {
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	p, err := checkpoint.Latest(dir)
	if err != nil {
		return ""
	}
	// latest.json ties with the checkpoint it links to; name the real one.
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real
	}
	return p
}

// removeCheckpoint deletes the checkpoint whose meta file is path (meta
// first, so no half checkpoint looks complete); "" is a no-op.
func removeCheckpoint(path string) {
	if path == "" {
		return
	}
	base := strings.TrimSuffix(path, ".json")
	os.Remove(base + ".json")
	os.Remove(base + ".safetensors")
}
