package datasets

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/razorgo/razor/registry"
)

// needHWC refuses images already in tensor layout, for geometric steps
// placed after ImageToTensor by mistake.
func needHWC(s *Sample) error {
	if s.Img.Empty() {
		return errors.New("the sample has no image yet; put LoadImageFromFile first")
	}
	if s.Img.CHW {
		return errors.New("the image is already in CHW tensor layout; move ImageToTensor/DefaultFormatBundle after the geometric transforms")
	}
	return nil
}

func checkBackend(backend string) error {
	if backend != "" && backend != "cv2" {
		return fmt.Errorf("backend %q is not supported; razor resamples as cv2 does (backend: cv2)", backend)
	}
	return nil
}

// ResizeOptions configure Resize. `size` selects mmcls's classification
// resize; `img_scale` (or a scale fixed by MultiScaleFlipAug) mmdet's
// detection resize.
type ResizeOptions struct {
	// Size is mmcls's (h, w), or an int for a square; (s, -1) resizes the
	// shorter side to s keeping the aspect ratio.
	Size any `cfg:"size"`
	// ImgScale is mmdet's (w, h) target or a list of them. With keep_ratio
	// the image is scaled by the largest factor that keeps its long side
	// within max(scale) and its short side within min(scale).
	ImgScale any `cfg:"img_scale"`
	// MultiscaleMode picks among several img_scale: "range" draws the long
	// and short edges between the scales, "value" picks one of them.
	MultiscaleMode string `cfg:"multiscale_mode"`
	// RatioRange, with a single img_scale, multiplies it by a random ratio.
	RatioRange     []float64     `cfg:"ratio_range"`
	KeepRatio      bool          `cfg:"keep_ratio"`
	BBoxClipBorder bool          `cfg:"bbox_clip_border"`
	Interpolation  Interpolation `cfg:"interpolation"`
	Backend        string        `cfg:"backend"`
}

// Defaults sets the mmcls/mmdet defaults.
func (o *ResizeOptions) Defaults() {
	o.MultiscaleMode = "range"
	o.KeepRatio = true
	o.BBoxClipBorder = true
	o.Interpolation = Bilinear
	o.Backend = "cv2"
}

// Resize resizes the image and scales the boxes, recording img_shape and
// scale_factor (w, h, w, h).
type Resize struct {
	opts      ResizeOptions
	size      [2]int // (h, w) classification target; zero for detection
	shortSide bool
	scales    [][2]int // (w, h) detection targets
}

// NewResize checks the options.
func NewResize(o ResizeOptions) (*Resize, error) {
	if err := o.Interpolation.valid(); err != nil {
		return nil, err
	}
	if err := checkBackend(o.Backend); err != nil {
		return nil, err
	}
	r := &Resize{opts: o}
	switch {
	case o.Size != nil && o.ImgScale != nil:
		return nil, errors.New("set either size (classification, mmcls) or img_scale (detection, mmdet), not both")
	case o.Size != nil:
		sz, err := intPair(o.Size, "size")
		if err != nil {
			return nil, err
		}
		if sz[0] <= 0 || (sz[1] <= 0 && sz[1] != -1) {
			return nil, fmt.Errorf("size %v must be positive, or (short side, -1)", sz)
		}
		r.size, r.shortSide = sz, sz[1] == -1
	case o.ImgScale != nil:
		scales, err := scaleList(o.ImgScale, "img_scale")
		if err != nil {
			return nil, err
		}
		r.scales = scales
	}
	if o.MultiscaleMode != "range" && o.MultiscaleMode != "value" {
		return nil, fmt.Errorf("multiscale_mode %q must be \"range\" or \"value\"", o.MultiscaleMode)
	}
	if o.RatioRange != nil {
		if len(o.RatioRange) != 2 || o.RatioRange[0] <= 0 || o.RatioRange[0] > o.RatioRange[1] {
			return nil, fmt.Errorf("ratio_range %v must be [min, max] with 0 < min <= max", o.RatioRange)
		}
		if len(r.scales) != 1 {
			return nil, errors.New("ratio_range needs exactly one img_scale")
		}
	}
	return r, nil
}

// targetScale chooses the (w, h) scale for one sample as mmdet's
// Resize._random_scale does.
func (r *Resize) targetScale(s *Sample, rng *rand.Rand) ([2]int, error) {
	if s.Scale != [2]int{} {
		return s.Scale, nil
	}
	switch {
	case len(r.scales) == 0:
		return [2]int{}, errors.New("no size, no img_scale, and no MultiScaleFlipAug around it to fix a scale")
	case len(r.scales) == 1 && r.opts.RatioRange != nil:
		lo, hi := r.opts.RatioRange[0], r.opts.RatioRange[1]
		ratio := lo + rng.Float64()*(hi-lo)
		return [2]int{int(float64(r.scales[0][0]) * ratio), int(float64(r.scales[0][1]) * ratio)}, nil
	case len(r.scales) == 1:
		return r.scales[0], nil
	case r.opts.MultiscaleMode == "value":
		return r.scales[rng.IntN(len(r.scales))], nil
	}
	longs := make([]int, len(r.scales))
	shorts := make([]int, len(r.scales))
	for i, sc := range r.scales {
		longs[i], shorts[i] = max(sc[0], sc[1]), min(sc[0], sc[1])
	}
	lo, hi := slices.Min(longs), slices.Max(longs)
	long := lo + rng.IntN(hi-lo+1)
	lo, hi = slices.Min(shorts), slices.Max(shorts)
	short := lo + rng.IntN(hi-lo+1)
	return [2]int{long, short}, nil
}

// Apply resizes.
func (r *Resize) Apply(s *Sample, rng *rand.Rand) error {
	if err := needHWC(s); err != nil {
		return err
	}
	h, w := s.Img.H, s.Img.W
	var nh, nw int
	switch {
	case r.size != [2]int{} && r.shortSide:
		short := r.size[0]
		switch {
		case (w <= h && w == short) || (h <= w && h == short):
			nh, nw = h, w
		case w < h:
			nw, nh = short, int(float64(short)*float64(h)/float64(w))
		default:
			nh, nw = short, int(float64(short)*float64(w)/float64(h))
		}
	case r.size != [2]int{}:
		nh, nw = r.size[0], r.size[1]
	default:
		scale, err := r.targetScale(s, rng)
		if err != nil {
			return err
		}
		if r.opts.KeepRatio {
			long, short := float64(max(scale[0], scale[1])), float64(min(scale[0], scale[1]))
			f := math.Min(long/float64(max(h, w)), short/float64(min(h, w)))
			nw, nh = int(float64(w)*f+0.5), int(float64(h)*f+0.5)
		} else {
			nw, nh = scale[0], scale[1]
		}
		s.Scale = scale
	}
	if nh <= 0 || nw <= 0 {
		return fmt.Errorf("resizing a %dx%d image gives an empty %dx%d image", w, h, nw, nh)
	}
	if nh != h || nw != w {
		s.Img = s.Img.Resize(nh, nw, r.opts.Interpolation)
	}
	sx, sy := float32(nw)/float32(w), float32(nh)/float32(h)
	s.ScaleFactor = [4]float32{sx, sy, sx, sy}
	s.ImgShape = s.Img.Shape()
	s.PadShape = s.Img.Shape()
	scaleBoxes(s.GT, sx, sy, nw, nh, r.opts.BBoxClipBorder)
	return nil
}

// RandomResizedCropOptions configure RandomResizedCrop (mmcls keys).
type RandomResizedCropOptions struct {
	// Size is the output (h, w), or an int for a square.
	Size any `cfg:"size,required"`
	// Scale bounds the crop's area as a fraction of the image's.
	Scale [2]float64 `cfg:"scale"`
	// Ratio bounds the crop's aspect ratio (w / h), drawn log-uniformly.
	Ratio             [2]float64    `cfg:"ratio"`
	MaxAttempts       int           `cfg:"max_attempts"`
	Interpolation     Interpolation `cfg:"interpolation"`
	Backend           string        `cfg:"backend"`
	EfficientnetStyle bool          `cfg:"efficientnet_style"`
}

// Defaults sets torchvision's and mmcls's defaults.
func (o *RandomResizedCropOptions) Defaults() {
	o.Scale = [2]float64{0.08, 1.0}
	o.Ratio = [2]float64{3. / 4., 4. / 3.}
	o.MaxAttempts = 10
	o.Interpolation = Bilinear
	o.Backend = "cv2"
}

// RandomResizedCrop crops a random region of random area and aspect ratio
// and resizes it to size; after max_attempts failed draws it falls back to
// a centred crop of the whole image clamped to the ratio bounds, as
// torchvision and mmcls do.
type RandomResizedCrop struct {
	opts RandomResizedCropOptions
	size [2]int
}

// NewRandomResizedCrop checks the options.
func NewRandomResizedCrop(o RandomResizedCropOptions) (*RandomResizedCrop, error) {
	sz, err := intPair(o.Size, "size")
	if err != nil {
		return nil, err
	}
	switch {
	case sz[0] <= 0 || sz[1] <= 0:
		return nil, fmt.Errorf("size %v must be positive", sz)
	case o.Scale[0] <= 0 || o.Scale[0] > o.Scale[1]:
		return nil, fmt.Errorf("scale %v must be [min, max] with 0 < min <= max", o.Scale)
	case o.Ratio[0] <= 0 || o.Ratio[0] > o.Ratio[1]:
		return nil, fmt.Errorf("ratio %v must be [min, max] with 0 < min <= max", o.Ratio)
	case o.MaxAttempts < 0:
		return nil, fmt.Errorf("max_attempts %d must not be negative", o.MaxAttempts)
	case o.EfficientnetStyle:
		return nil, errors.New("efficientnet_style is not supported")
	}
	if err := o.Interpolation.valid(); err != nil {
		return nil, err
	}
	if err := checkBackend(o.Backend); err != nil {
		return nil, err
	}
	return &RandomResizedCrop{opts: o, size: sz}, nil
}

// cropParams draws the crop (x0, y0, w, h) for an h x w image.
func (t *RandomResizedCrop) cropParams(h, w int, rng *rand.Rand) (int, int, int, int) {
	area := float64(h * w)
	logLo, logHi := math.Log(t.opts.Ratio[0]), math.Log(t.opts.Ratio[1])
	for range t.opts.MaxAttempts {
		target := area * (t.opts.Scale[0] + rng.Float64()*(t.opts.Scale[1]-t.opts.Scale[0]))
		aspect := math.Exp(logLo + rng.Float64()*(logHi-logLo))
		tw := pythonRound(math.Sqrt(target * aspect))
		th := pythonRound(math.Sqrt(target / aspect))
		if tw > 0 && tw <= w && th > 0 && th <= h {
			y0 := rng.IntN(h - th + 1)
			x0 := rng.IntN(w - tw + 1)
			return x0, y0, tw, th
		}
	}
	inRatio := float64(w) / float64(h)
	tw, th := w, h
	switch {
	case inRatio < t.opts.Ratio[0]:
		th = pythonRound(float64(tw) / t.opts.Ratio[0])
	case inRatio > t.opts.Ratio[1]:
		tw = pythonRound(float64(th) * t.opts.Ratio[1])
	}
	return (w - tw) / 2, (h - th) / 2, tw, th
}

// Apply crops and resizes.
func (t *RandomResizedCrop) Apply(s *Sample, rng *rand.Rand) error {
	if err := needHWC(s); err != nil {
		return err
	}
	x0, y0, cw, ch := t.cropParams(s.Img.H, s.Img.W, rng)
	img := s.Img.Crop(x0, y0, cw, ch)
	nh, nw := t.size[0], t.size[1]
	s.Img = img.Resize(nh, nw, t.opts.Interpolation)
	s.ImgShape = s.Img.Shape()
	if s.GT != nil {
		cropBoxes(s.GT, x0, y0, cw, ch)
		scaleBoxes(s.GT, float32(nw)/float32(cw), float32(nh)/float32(ch), nw, nh, true)
	}
	return nil
}

// CenterCropOptions configure CenterCrop (mmcls keys).
type CenterCropOptions struct {
	// CropSize is the crop's (h, w), or an int for a square.
	CropSize          any  `cfg:"crop_size,required"`
	EfficientnetStyle bool `cfg:"efficientnet_style"`
}

// CenterCrop cuts the centred crop_size region (the whole image along a
// side shorter than the crop), as mmcls's CenterCrop does.
type CenterCrop struct {
	size [2]int
}

// NewCenterCrop checks the options.
func NewCenterCrop(o CenterCropOptions) (*CenterCrop, error) {
	sz, err := intPair(o.CropSize, "crop_size")
	if err != nil {
		return nil, err
	}
	if sz[0] <= 0 || sz[1] <= 0 {
		return nil, fmt.Errorf("crop_size %v must be positive", sz)
	}
	if o.EfficientnetStyle {
		return nil, errors.New("efficientnet_style is not supported")
	}
	return &CenterCrop{size: sz}, nil
}

// Apply crops.
func (t *CenterCrop) Apply(s *Sample, _ *rand.Rand) error {
	if err := needHWC(s); err != nil {
		return err
	}
	h, w := s.Img.H, s.Img.W
	y0 := max(0, pythonRound(float64(h-t.size[0])/2))
	x0 := max(0, pythonRound(float64(w-t.size[1])/2))
	ch := min(h, y0+t.size[0]) - y0
	cw := min(w, x0+t.size[1]) - x0
	s.Img = s.Img.Crop(x0, y0, cw, ch)
	s.ImgShape = s.Img.Shape()
	if s.GT != nil {
		cropBoxes(s.GT, x0, y0, cw, ch)
	}
	return nil
}

// RandomFlipOptions configure RandomFlip. flip_ratio (mmdet), flip_prob
// (mmcls) and prob (mmcv 2) are the same setting; give one. Without any the
// probability is mmcls's default, 0.5.
type RandomFlipOptions struct {
	FlipRatio any `cfg:"flip_ratio"`
	FlipProb  any `cfg:"flip_prob"`
	Prob      any `cfg:"prob"`
	// Direction is "horizontal", "vertical", "diagonal" or a list of them.
	Direction any `cfg:"direction"`
}

// RandomFlip mirrors the image and its boxes with the given probability.
// With one probability and several directions the probability is shared
// equally among them; with a list, one probability per direction.
type RandomFlip struct {
	directions []string
	probs      []float64
}

var flipDirections = []string{"horizontal", "vertical", "diagonal"}

// NewRandomFlip checks the options.
func NewRandomFlip(o RandomFlipOptions) (*RandomFlip, error) {
	var ratio any
	set := 0
	for _, v := range []any{o.FlipRatio, o.FlipProb, o.Prob} {
		if v != nil {
			ratio = v
			set++
		}
	}
	if set > 1 {
		return nil, errors.New("give only one of flip_ratio, flip_prob and prob")
	}
	if ratio == nil {
		ratio = 0.5
	}
	t := &RandomFlip{}
	switch d := o.Direction.(type) {
	case nil:
		t.directions = []string{"horizontal"}
	case string:
		t.directions = []string{d}
	case []any:
		for _, e := range d {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("direction %v must be a string or a list of strings", o.Direction)
			}
			t.directions = append(t.directions, s)
		}
	default:
		return nil, fmt.Errorf("direction %v must be a string or a list of strings", o.Direction)
	}
	for _, d := range t.directions {
		if !slices.Contains(flipDirections, d) {
			return nil, fmt.Errorf("direction %q must be one of %q", d, flipDirections)
		}
	}
	switch r := ratio.(type) {
	case []any:
		if len(r) != len(t.directions) {
			return nil, fmt.Errorf("%d flip probabilities for %d directions", len(r), len(t.directions))
		}
		for _, e := range r {
			p, ok := asFloat(e)
			if !ok {
				return nil, fmt.Errorf("flip probability %v is not a number", e)
			}
			t.probs = append(t.probs, p)
		}
	default:
		p, ok := asFloat(r)
		if !ok {
			return nil, fmt.Errorf("flip probability %v is not a number", r)
		}
		for range t.directions {
			t.probs = append(t.probs, p/float64(len(t.directions)))
		}
	}
	sum := 0.0
	for _, p := range t.probs {
		if p < 0 {
			return nil, fmt.Errorf("flip probability %v is negative", p)
		}
		sum += p
	}
	if sum > 1+1e-9 {
		return nil, fmt.Errorf("flip probabilities add up to %v, more than 1", sum)
	}
	return t, nil
}

// Apply draws the flip (unless a wrapper fixed it) and applies it.
func (t *RandomFlip) Apply(s *Sample, rng *rand.Rand) error {
	if err := needHWC(s); err != nil {
		return err
	}
	if !s.FlipFixed {
		s.Flip, s.FlipDirection = false, ""
		u, acc := rng.Float64(), 0.0
		for i, p := range t.probs {
			acc += p
			if u < acc {
				s.Flip, s.FlipDirection = true, t.directions[i]
				break
			}
		}
	}
	if !s.Flip {
		return nil
	}
	s.Img = s.Img.Flip(s.FlipDirection)
	flipBoxes(s.GT, s.FlipDirection, s.Img.W, s.Img.H)
	return nil
}

// PadOptions configure Pad (mmdet keys). Give size or size_divisor.
type PadOptions struct {
	// Size is the fixed (h, w) to pad to.
	Size any `cfg:"size"`
	// SizeDivisor pads height and width up to a multiple of it.
	SizeDivisor int     `cfg:"size_divisor"`
	PadToSquare bool    `cfg:"pad_to_square"`
	PadVal      float64 `cfg:"pad_val"`
}

// Pad pads the image at the bottom and right and records pad_shape; boxes
// do not move.
type Pad struct {
	opts PadOptions
	size [2]int
}

// NewPad checks the options.
func NewPad(o PadOptions) (*Pad, error) {
	t := &Pad{opts: o}
	if o.Size != nil {
		sz, err := intPair(o.Size, "size")
		if err != nil {
			return nil, err
		}
		if sz[0] <= 0 || sz[1] <= 0 {
			return nil, fmt.Errorf("size %v must be positive", sz)
		}
		t.size = sz
	}
	n := 0
	for _, set := range []bool{o.Size != nil, o.SizeDivisor != 0, o.PadToSquare} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("give exactly one of size, size_divisor and pad_to_square")
	}
	if o.SizeDivisor < 0 {
		return nil, fmt.Errorf("size_divisor %d must be positive", o.SizeDivisor)
	}
	return t, nil
}

// Apply pads.
func (t *Pad) Apply(s *Sample, _ *rand.Rand) error {
	if err := needHWC(s); err != nil {
		return err
	}
	h, w := s.Img.H, s.Img.W
	nh, nw := h, w
	switch {
	case t.opts.PadToSquare:
		nh = max(h, w)
		nw = nh
	case t.opts.SizeDivisor > 0:
		d := t.opts.SizeDivisor
		nh, nw = (h+d-1)/d*d, (w+d-1)/d*d
	default:
		nh, nw = t.size[0], t.size[1]
		if nh < h || nw < w {
			return fmt.Errorf("cannot pad a %dx%d image (h x w) to the smaller %dx%d", h, w, nh, nw)
		}
	}
	if nh != h || nw != w {
		s.Img = s.Img.Pad(nh, nw, t.opts.PadVal)
	}
	s.PadShape = s.Img.Shape()
	return nil
}

// MultiScaleFlipAugOptions configure MultiScaleFlipAug (mmdet keys).
type MultiScaleFlipAugOptions struct {
	Transforms    Pipeline `cfg:"transforms"`
	ImgScale      any      `cfg:"img_scale"`
	ScaleFactor   any      `cfg:"scale_factor"`
	Flip          bool     `cfg:"flip"`
	FlipDirection any      `cfg:"flip_direction"`
}

// MultiScaleFlipAug runs its transforms with a fixed scale and no flip, the
// form mmdet test pipelines use. Test-time augmentation over several scales
// or flips would turn one sample into several and is not supported.
type MultiScaleFlipAug struct {
	transforms Pipeline
	scale      [2]int
}

// NewMultiScaleFlipAug checks the options.
func NewMultiScaleFlipAug(o MultiScaleFlipAugOptions) (*MultiScaleFlipAug, error) {
	if o.ScaleFactor != nil {
		return nil, errors.New("scale_factor is not supported; give one img_scale")
	}
	if o.Flip {
		return nil, errors.New("flip: true (test-time flip augmentation) is not supported; set flip: false")
	}
	if o.ImgScale == nil {
		return nil, errors.New("img_scale is required")
	}
	scales, err := scaleList(o.ImgScale, "img_scale")
	if err != nil {
		return nil, err
	}
	if len(scales) != 1 {
		return nil, fmt.Errorf("%d img_scale values given; test-time augmentation over several scales is not supported, give one", len(scales))
	}
	return &MultiScaleFlipAug{transforms: o.Transforms, scale: scales[0]}, nil
}

// Apply fixes the scale and the flip, then runs the transforms.
func (t *MultiScaleFlipAug) Apply(s *Sample, rng *rand.Rand) error {
	s.Scale = t.scale
	s.Flip, s.FlipDirection, s.FlipFixed = false, "", true
	return t.transforms.Apply(s, rng)
}

func init() {
	registry.MustRegister(Transforms, "Resize", func(o ResizeOptions) (Transform, error) { return NewResize(o) })
	registry.MustRegister(Transforms, "RandomResizedCrop", func(o RandomResizedCropOptions) (Transform, error) { return NewRandomResizedCrop(o) })
	registry.MustRegister(Transforms, "CenterCrop", func(o CenterCropOptions) (Transform, error) { return NewCenterCrop(o) })
	registry.MustRegister(Transforms, "RandomFlip", func(o RandomFlipOptions) (Transform, error) { return NewRandomFlip(o) })
	registry.MustRegister(Transforms, "Pad", func(o PadOptions) (Transform, error) { return NewPad(o) })
	registry.MustRegister(Transforms, "MultiScaleFlipAug", func(o MultiScaleFlipAugOptions) (Transform, error) { return NewMultiScaleFlipAug(o) })
}
