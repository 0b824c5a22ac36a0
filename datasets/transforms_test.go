package datasets

import (
	"math"
	"slices"
	"testing"
)

// borderSample is a 40x20 (w x h) image with boxes touching every border,
// one in the middle, and a full-width ignore region.
func borderSample() Sample {
	img := testImage(40, 20)
	return Sample{
		Img:     img,
		Meta:    Meta{ImgShape: img.Shape(), OriShape: img.Shape()},
		GTLabel: NoLabel,
		GT: &Instances{
			BBoxes:       []Box{{0, 0, 10, 5}, {30, 15, 40, 20}, {15, 5, 25, 15}},
			Labels:       []int{0, 1, 2},
			BBoxesIgnore: []Box{{0, 10, 40, 20}},
		},
	}
}

func flip(direction string) map[string]any {
	return map[string]any{"type": "RandomFlip", "flip_ratio": 1.0, "direction": direction}
}

// TestTransformsKeepBoxesConsistent runs every transform after a flip on
// boxes at the image borders and checks the boxes, labels and image shape.
func TestTransformsKeepBoxesConsistent(t *testing.T) {
	flippedH := []Box{{30, 0, 40, 5}, {0, 15, 10, 20}, {15, 5, 25, 15}}
	ignore := []Box{{0, 10, 40, 20}}
	cases := []struct {
		name     string
		pipeline []map[string]any
		boxes    []Box
		labels   []int
		ignore   []Box
		shape    [3]int
	}{
		{"horizontal flip: x1' = w - x2", []map[string]any{flip("horizontal")},
			flippedH, []int{0, 1, 2}, ignore, [3]int{20, 40, 3}},
		{"vertical flip: y1' = h - y2", []map[string]any{flip("vertical")},
			[]Box{{0, 15, 10, 20}, {30, 0, 40, 5}, {15, 5, 25, 15}}, []int{0, 1, 2}, []Box{{0, 0, 40, 10}}, [3]int{20, 40, 3}},
		{"diagonal flip", []map[string]any{flip("diagonal")},
			[]Box{{30, 15, 40, 20}, {0, 0, 10, 5}, {15, 5, 25, 15}}, []int{0, 1, 2}, []Box{{0, 0, 40, 10}}, [3]int{20, 40, 3}},
		{"flip then keep-ratio Resize doubles", []map[string]any{flip("horizontal"), {"type": "Resize", "img_scale": []any{80, 40}, "keep_ratio": true}},
			[]Box{{60, 0, 80, 10}, {0, 30, 20, 40}, {30, 10, 50, 30}}, []int{0, 1, 2}, []Box{{0, 20, 80, 40}}, [3]int{40, 80, 3}},
		{"flip then Resize without keep_ratio", []map[string]any{flip("horizontal"), {"type": "Resize", "img_scale": []any{20, 40}, "keep_ratio": false}},
			[]Box{{15, 0, 20, 10}, {0, 30, 5, 40}, {7.5, 10, 12.5, 30}}, []int{0, 1, 2}, []Box{{0, 20, 20, 40}}, [3]int{40, 20, 3}},
		{"flip then short-side Resize halves", []map[string]any{flip("horizontal"), {"type": "Resize", "size": []any{10, -1}}},
			[]Box{{15, 0, 20, 2.5}, {0, 7.5, 5, 10}, {7.5, 2.5, 12.5, 7.5}}, []int{0, 1, 2}, []Box{{0, 5, 20, 10}}, [3]int{10, 20, 3}},
		{"flip then CenterCrop drops boxes left outside", []map[string]any{flip("horizontal"), {"type": "CenterCrop", "crop_size": 20}},
			[]Box{{5, 5, 15, 15}}, []int{2}, []Box{{0, 10, 20, 20}}, [3]int{20, 20, 3}},
		{"flip then RandomResizedCrop fallback (centre square) resized", []map[string]any{flip("horizontal"),
			{"type": "RandomResizedCrop", "size": 10, "scale": []any{1.0, 1.0}, "ratio": []any{1.0, 1.0}}},
			[]Box{{2.5, 2.5, 7.5, 7.5}}, []int{2}, []Box{{0, 5, 10, 10}}, [3]int{10, 10, 3}},
		{"flip then Pad moves nothing", []map[string]any{flip("horizontal"), {"type": "Pad", "size_divisor": 32}},
			flippedH, []int{0, 1, 2}, ignore, [3]int{32, 64, 3}},
		{"flip then Normalize", []map[string]any{flip("horizontal"), {"type": "Normalize", "mean": []any{1, 2, 3}, "std": []any{1, 1, 1}}},
			flippedH, []int{0, 1, 2}, ignore, [3]int{20, 40, 3}},
		{"flip then ColorJitter", []map[string]any{flip("horizontal"), {"type": "ColorJitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4}},
			flippedH, []int{0, 1, 2}, ignore, [3]int{20, 40, 3}},
		{"flip then GrayToColor", []map[string]any{flip("horizontal"), {"type": "GrayToColor"}},
			flippedH, []int{0, 1, 2}, ignore, [3]int{20, 40, 3}},
		{"flip then DefaultFormatBundle", []map[string]any{flip("horizontal"), {"type": "DefaultFormatBundle"}},
			flippedH, []int{0, 1, 2}, ignore, [3]int{20, 40, 3}},
		{"flip then ImageToTensor and ToTensor", []map[string]any{flip("horizontal"), {"type": "ImageToTensor", "keys": []any{"img"}}, {"type": "ToTensor", "keys": []any{"gt_bboxes", "gt_labels"}}},
			flippedH, []int{0, 1, 2}, ignore, [3]int{20, 40, 3}},
		{"flip then Collect without the ignore boxes", []map[string]any{flip("horizontal"), {"type": "Collect", "keys": []any{"img", "gt_bboxes", "gt_labels"}}},
			flippedH, []int{0, 1, 2}, nil, [3]int{20, 40, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := borderSample()
			p := buildPipeline(t, c.pipeline...)
			if err := p.Apply(&s, testRNG()); err != nil {
				t.Fatal(err)
			}
			if !boxesEqual(s.GT.BBoxes, c.boxes) || !slices.Equal(s.GT.Labels, c.labels) {
				t.Fatalf("boxes %v labels %v, want %v %v", s.GT.BBoxes, s.GT.Labels, c.boxes, c.labels)
			}
			if !boxesEqual(s.GT.BBoxesIgnore, c.ignore) || (c.ignore == nil) != (s.GT.BBoxesIgnore == nil) {
				t.Fatalf("ignore boxes %v, want %v", s.GT.BBoxesIgnore, c.ignore)
			}
			if s.Img.Shape() != c.shape {
				t.Fatalf("image shape %v, want %v", s.Img.Shape(), c.shape)
			}
			for _, b := range s.GT.BBoxes {
				if b[0] < 0 || b[1] < 0 || b[2] > float32(c.shape[1]) || b[3] > float32(c.shape[0]) || b[2] <= b[0] || b[3] <= b[1] {
					t.Fatalf("box %v is empty or outside the %dx%d image", b, c.shape[1], c.shape[0])
				}
			}
		})
	}
}

func boxesEqual(a, b []Box) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		for k := range 4 {
			if math.Abs(float64(a[i][k]-b[i][k])) > 1e-4 {
				return false
			}
		}
	}
	return true
}

func TestFlipMovesPixelsWithBoxes(t *testing.T) {
	s := borderSample()
	if err := build(t, flip("horizontal")).Apply(&s, testRNG()); err != nil {
		t.Fatal(err)
	}
	// The pixel at the left border came from x = 39; its R channel is x.
	if got := s.Img.At(0, 0, 2); got != 39 {
		t.Fatalf("flipped (0,0) red = %v, want 39", got)
	}
	if !s.Flip || s.FlipDirection != "horizontal" {
		t.Fatalf("flip meta %v %q", s.Flip, s.FlipDirection)
	}
}

func TestRandomFlipProbabilities(t *testing.T) {
	count := func(node map[string]any) map[string]int {
		tr := build(t, node)
		seen := map[string]int{}
		for i := range 1000 {
			s := borderSample()
			if err := tr.Apply(&s, SampleRNG(3, 0, i)); err != nil {
				t.Fatal(err)
			}
			seen[s.FlipDirection]++
		}
		return seen
	}
	half := count(map[string]any{"type": "RandomFlip", "flip_prob": 0.5})
	if half["horizontal"] < 430 || half["horizontal"] > 570 {
		t.Fatalf("flip_prob 0.5 flipped %d of 1000", half["horizontal"])
	}
	if n := count(map[string]any{"type": "RandomFlip", "flip_ratio": 0.0}); n[""] != 1000 {
		t.Fatalf("flip_ratio 0 flipped %v", n)
	}
	both := count(map[string]any{"type": "RandomFlip", "flip_ratio": []any{0.0, 1.0}, "direction": []any{"horizontal", "vertical"}})
	if both["vertical"] != 1000 {
		t.Fatalf("per-direction ratios [0, 1] gave %v", both)
	}
	shared := count(map[string]any{"type": "RandomFlip", "flip_ratio": 0.8, "direction": []any{"horizontal", "vertical"}})
	if shared["horizontal"] < 330 || shared["vertical"] < 330 || shared[""] < 140 || shared[""] > 260 {
		t.Fatalf("ratio 0.8 shared by two directions gave %v", shared)
	}
}

func TestRandomFlipRespectsFixedFlip(t *testing.T) {
	s := borderSample()
	s.FlipFixed = true
	if err := build(t, flip("horizontal")).Apply(&s, testRNG()); err != nil {
		t.Fatal(err)
	}
	if s.Flip || s.GT.BBoxes[0] != (Box{0, 0, 10, 5}) {
		t.Fatalf("a fixed no-flip was overridden: flip %v boxes %v", s.Flip, s.GT.BBoxes)
	}
}

func TestResizeClipsBoxesAtBorder(t *testing.T) {
	s := borderSample()
	s.GT.BBoxes = []Box{{35, 18, 45, 25}}
	s.GT.Labels = []int{4}
	if err := build(t, map[string]any{"type": "Resize", "img_scale": []any{80, 40}}).Apply(&s, testRNG()); err != nil {
		t.Fatal(err)
	}
	if want := (Box{70, 36, 80, 40}); s.GT.BBoxes[0] != want {
		t.Fatalf("box %v, want %v (scaled by 2 then clipped to 80x40)", s.GT.BBoxes[0], want)
	}
	if s.ScaleFactor != [4]float32{2, 2, 2, 2} || s.ImgShape != [3]int{40, 80, 3} || s.Scale != [2]int{80, 40} {
		t.Fatalf("scale_factor %v img_shape %v scale %v", s.ScaleFactor, s.ImgShape, s.Scale)
	}
	noClip := borderSample()
	noClip.GT.BBoxes = []Box{{35, 18, 45, 25}}
	tr := build(t, map[string]any{"type": "Resize", "img_scale": []any{80, 40}, "bbox_clip_border": false})
	if err := tr.Apply(&noClip, testRNG()); err != nil {
		t.Fatal(err)
	}
	if want := (Box{70, 36, 90, 50}); noClip.GT.BBoxes[0] != want {
		t.Fatalf("unclipped box %v, want %v", noClip.GT.BBoxes[0], want)
	}
}

func TestResizeScales(t *testing.T) {
	cases := []struct {
		name  string
		node  map[string]any
		w, h  int
		shape [3]int
	}{
		// mmdet (1333, 800): factor min(1333/640, 800/480) = 1.6667.
		{"keep ratio 1333x800 on 640x480", map[string]any{"img_scale": []any{1333, 800}}, 640, 480, [3]int{800, 1067, 3}},
		{"keep ratio limited by the long side", map[string]any{"img_scale": []any{1333, 800}}, 1000, 200, [3]int{267, 1333, 3}},
		{"scale given as (short, long) is the same", map[string]any{"img_scale": []any{800, 1333}}, 640, 480, [3]int{800, 1067, 3}},
		{"mmcls short side on a tall image", map[string]any{"size": []any{256, -1}}, 300, 500, [3]int{426, 256, 3}},
		{"mmcls short side already right", map[string]any{"size": []any{256, -1}}, 256, 300, [3]int{300, 256, 3}},
		{"mmcls square", map[string]any{"size": 32}, 28, 28, [3]int{32, 32, 3}},
		{"mmcls (h, w)", map[string]any{"size": []any{10, 20}}, 40, 40, [3]int{10, 20, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			node := map[string]any{"type": "Resize"}
			for k, v := range c.node {
				node[k] = v
			}
			s := Sample{Img: NewImageU8(c.h, c.w, 3)}
			if err := build(t, node).Apply(&s, testRNG()); err != nil {
				t.Fatal(err)
			}
			if s.Img.Shape() != c.shape || s.ImgShape != c.shape {
				t.Fatalf("shape %v (img_shape %v), want %v", s.Img.Shape(), s.ImgShape, c.shape)
			}
		})
	}
}

func TestResizeMultiScale(t *testing.T) {
	rangeMode := build(t, map[string]any{"type": "Resize", "img_scale": []any{[]any{100, 40}, []any{100, 60}}})
	value := build(t, map[string]any{"type": "Resize", "img_scale": []any{[]any{100, 40}, []any{100, 60}}, "multiscale_mode": "value"})
	ratio := build(t, map[string]any{"type": "Resize", "img_scale": []any{100, 50}, "ratio_range": []any{0.5, 1.5}})
	shorts := map[int]bool{}
	for i := range 200 {
		s := Sample{Img: NewImageU8(20, 20, 1)}
		if err := rangeMode.Apply(&s, SampleRNG(1, 0, i)); err != nil {
			t.Fatal(err)
		}
		if s.Scale[0] != 100 || s.Scale[1] < 40 || s.Scale[1] > 60 {
			t.Fatalf("range mode scale %v outside [(100,40), (100,60)]", s.Scale)
		}
		shorts[s.Scale[1]] = true
		v := Sample{Img: NewImageU8(20, 20, 1)}
		if err := value.Apply(&v, SampleRNG(1, 0, i)); err != nil {
			t.Fatal(err)
		}
		if v.Scale != [2]int{100, 40} && v.Scale != [2]int{100, 60} {
			t.Fatalf("value mode scale %v is not one of the given", v.Scale)
		}
		r := Sample{Img: NewImageU8(20, 20, 1)}
		if err := ratio.Apply(&r, SampleRNG(1, 0, i)); err != nil {
			t.Fatal(err)
		}
		if r.Scale[0] < 50 || r.Scale[0] > 150 || r.Scale[1] < 25 || r.Scale[1] > 75 {
			t.Fatalf("ratio_range scale %v outside [0.5, 1.5] x (100, 50)", r.Scale)
		}
	}
	if len(shorts) < 15 {
		t.Fatalf("range mode drew only %d distinct short edges in 200 draws", len(shorts))
	}
}

func TestRandomResizedCrop(t *testing.T) {
	tr := build(t, map[string]any{"type": "RandomResizedCrop", "size": 16}).(*RandomResizedCrop)
	for i := range 300 {
		x0, y0, cw, ch := tr.cropParams(40, 60, SampleRNG(5, 0, i))
		area := float64(cw*ch) / (40 * 60)
		ratio := float64(cw) / float64(ch)
		if x0 < 0 || y0 < 0 || x0+cw > 60 || y0+ch > 40 || area > 1.0001 || ratio < 0.7 || ratio > 1.4 {
			t.Fatalf("crop (%d,%d,%d,%d) of 60x40 breaks scale/ratio bounds (area %.3f, ratio %.3f)", x0, y0, cw, ch, area, ratio)
		}
	}
	// A crop box drawn with a given rng moves the boxes by its offset.
	s := borderSample()
	s.GT.BBoxes = []Box{{0, 0, 40, 20}}
	s.GT.Labels = []int{3}
	s.GT.BBoxesIgnore = nil
	x0, y0, cw, ch := tr.cropParams(20, 40, SampleRNG(9, 1, 2))
	if err := tr.Apply(&s, SampleRNG(9, 1, 2)); err != nil {
		t.Fatal(err)
	}
	if want := (Box{0, 0, 16, 16}); s.GT.BBoxes[0] != want {
		t.Fatalf("a box covering the image became %v, want %v", s.GT.BBoxes[0], want)
	}
	if s.Img.Shape() != [3]int{16, 16, 3} {
		t.Fatalf("shape %v", s.Img.Shape())
	}
	// The output's top-left pixel samples the crop's top-left region.
	if got, want := s.Img.At(0, 0, 2), float64(x0)+0.5*float64(cw)/16-0.5; math.Abs(got-want) > 1 {
		t.Fatalf("top-left red %v, want about %v (crop %d,%d,%d,%d)", got, want, x0, y0, cw, ch)
	}
}

func TestRandomResizedCropFallback(t *testing.T) {
	// Ratios in [2, 3] cannot fit a square's full area: after 10 attempts
	// the crop is the centred 100x50 region.
	tr := build(t, map[string]any{"type": "RandomResizedCrop", "size": []any{50, 100}, "scale": []any{1.0, 1.0}, "ratio": []any{2.0, 3.0}}).(*RandomResizedCrop)
	x0, y0, cw, ch := tr.cropParams(100, 100, testRNG())
	if x0 != 0 || y0 != 25 || cw != 100 || ch != 50 {
		t.Fatalf("fallback crop (%d,%d,%d,%d), want (0,25,100,50)", x0, y0, cw, ch)
	}
	s := Sample{Img: NewImageU8(100, 100, 1), GT: &Instances{
		BBoxes: []Box{{0, 0, 100, 100}, {10, 10, 30, 30}, {10, 80, 20, 90}},
		Labels: []int{0, 1, 2},
	}}
	if err := tr.Apply(&s, testRNG()); err != nil {
		t.Fatal(err)
	}
	want := []Box{{0, 0, 100, 50}, {10, 0, 30, 5}}
	if !boxesEqual(s.GT.BBoxes, want) || !slices.Equal(s.GT.Labels, []int{0, 1}) {
		t.Fatalf("boxes %v labels %v, want %v [0 1] (the box below the crop dropped)", s.GT.BBoxes, s.GT.Labels, want)
	}
}

func TestCenterCropRoundsHalfToEven(t *testing.T) {
	// (9 - 4) / 2 = 2.5 rounds to 2 as Python's round does, so the crop
	// starts at x = 2.
	s := Sample{Img: testImage(9, 4)}
	if err := build(t, map[string]any{"type": "CenterCrop", "crop_size": 4}).Apply(&s, testRNG()); err != nil {
		t.Fatal(err)
	}
	if s.Img.Shape() != [3]int{4, 4, 3} || s.Img.At(0, 0, 2) != 2 {
		t.Fatalf("shape %v, first x %v; want 4x4 starting at x=2", s.Img.Shape(), s.Img.At(0, 0, 2))
	}
	big := Sample{Img: testImage(10, 6)}
	if err := build(t, map[string]any{"type": "CenterCrop", "crop_size": 20}).Apply(&big, testRNG()); err != nil {
		t.Fatal(err)
	}
	if big.Img.Shape() != [3]int{6, 10, 3} {
		t.Fatalf("a crop larger than the image keeps it whole, got %v", big.Img.Shape())
	}
}

func TestPad(t *testing.T) {
	cases := []struct {
		node  map[string]any
		shape [3]int
	}{
		{map[string]any{"size_divisor": 32}, [3]int{32, 64, 3}},
		{map[string]any{"size": []any{25, 41}}, [3]int{25, 41, 3}},
		{map[string]any{"pad_to_square": true}, [3]int{40, 40, 3}},
	}
	for _, c := range cases {
		node := map[string]any{"type": "Pad", "pad_val": 7}
		for k, v := range c.node {
			node[k] = v
		}
		s := borderSample()
		if err := build(t, node).Apply(&s, testRNG()); err != nil {
			t.Fatal(err)
		}
		if s.Img.Shape() != c.shape || s.PadShape != c.shape || s.ImgShape != [3]int{20, 40, 3} {
			t.Fatalf("%v: shape %v pad_shape %v img_shape %v, want %v", c.node, s.Img.Shape(), s.PadShape, s.ImgShape, c.shape)
		}
		if s.Img.At(c.shape[0]-1, c.shape[1]-1, 0) != 7 || s.Img.At(19, 39, 0) != 58 {
			t.Fatalf("%v: padding %v, last original pixel %v", c.node, s.Img.At(c.shape[0]-1, c.shape[1]-1, 0), s.Img.At(19, 39, 0))
		}
	}
	s := borderSample()
	wantErr(t, build(t, map[string]any{"type": "Pad", "size": []any{10, 10}}).Apply(&s, testRNG()), "cannot pad", "20x40")
}

func TestNormalize(t *testing.T) {
	s := Sample{Img: Image{H: 1, W: 1, C: 3, U8: []uint8{10, 20, 30}}}
	tr := build(t, map[string]any{"type": "Normalize", "mean": []any{1, 2, 3}, "std": []any{2, 2, 2}})
	if err := tr.Apply(&s, testRNG()); err != nil {
		t.Fatal(err)
	}
	// to_rgb (mmcv's default) swaps BGR (10, 20, 30) to RGB first.
	if !slices.Equal(s.Img.F32, []float32{14.5, 9, 3.5}) || s.Img.U8 != nil {
		t.Fatalf("normalized %v, want [14.5 9 3.5]", s.Img.F32)
	}
	if !s.ImgNormCfg.ToRGB || !slices.Equal(s.ImgNormCfg.Mean, []float32{1, 2, 3}) {
		t.Fatalf("img_norm_cfg %+v", s.ImgNormCfg)
	}
	gray := Sample{Img: Image{H: 1, W: 2, C: 1, U8: []uint8{0, 112}}}
	mnist := build(t, map[string]any{"type": "Normalize", "mean": []any{33.46}, "std": []any{78.87}, "to_rgb": false})
	if err := mnist.Apply(&gray, testRNG()); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(gray.Img.F32[1])-(112-33.46)/78.87) > 1e-5 {
		t.Fatalf("gray normalized %v", gray.Img.F32)
	}
	wantErr(t, tr.Apply(&Sample{Img: NewImageU8(1, 1, 1)}, testRNG()), "3 mean/std values for a 1-channel image", "GrayToColor")
	wantErr(t, build(t, map[string]any{"type": "Normalize", "mean": []any{0}, "std": []any{1}}).Apply(&Sample{Img: NewImageU8(1, 1, 1)}, testRNG()), "to_rgb")
}

func TestColorAdjustments(t *testing.T) {
	img := func() Image { return Image{H: 1, W: 2, C: 3, U8: []uint8{100, 201, 50, 10, 20, 250}} }
	b := img()
	adjustBrightness(b, 0.5)
	// float blend then truncation: 201 * 0.5 = 100.5 -> 100.
	if !slices.Equal(b.U8, []uint8{50, 100, 25, 5, 10, 125}) {
		t.Fatalf("brightness 0.5: %v", b.U8)
	}
	c := img()
	adjustContrast(c, 0)
	g0 := grayOf(50, 201, 100)
	g1 := grayOf(250, 20, 10)
	mean := uint8(math.RoundToEven((float64(g0) + float64(g1)) / 2))
	if !slices.Equal(c.U8, []uint8{mean, mean, mean, mean, mean, mean}) {
		t.Fatalf("contrast 0 gives the mean gray %d everywhere, got %v", mean, c.U8)
	}
	s := img()
	adjustSaturation(s, 0)
	if !slices.Equal(s.U8, []uint8{g0, g0, g0, g1, g1, g1}) {
		t.Fatalf("saturation 0 gives the gray image %d %d, got %v", g0, g1, s.U8)
	}
	bright := img()
	adjustBrightness(bright, 1.4)
	if bright.U8[1] != 255 || bright.U8[0] != 140 {
		t.Fatalf("brightness 1.4 saturates: %v", bright.U8)
	}
	// ColorJitter with zero magnitudes leaves the image as it is.
	still := Sample{Img: img()}
	if err := build(t, map[string]any{"type": "ColorJitter", "brightness": 0, "contrast": 0, "saturation": 0}).Apply(&still, testRNG()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(still.Img.U8, img().U8) {
		t.Fatalf("zero jitter changed the image: %v", still.Img.U8)
	}
	jit := build(t, map[string]any{"type": "ColorJitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4})
	changed := 0
	for i := range 20 {
		s := Sample{Img: img()}
		if err := jit.Apply(&s, SampleRNG(2, 0, i)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Img.U8, img().U8) {
			changed++
		}
	}
	if changed < 18 {
		t.Fatalf("ColorJitter 0.4 changed only %d of 20 images", changed)
	}
}

func TestGrayToColor(t *testing.T) {
	s := Sample{Img: Image{H: 1, W: 2, C: 1, U8: []uint8{3, 9}}}
	if err := build(t, map[string]any{"type": "GrayToColor"}).Apply(&s, testRNG()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Img.U8, []uint8{3, 3, 3, 9, 9, 9}) || s.ImgShape != [3]int{1, 2, 3} {
		t.Fatalf("gray to colour %v shape %v", s.Img.U8, s.ImgShape)
	}
}

func TestFormattingAndCollect(t *testing.T) {
	s := borderSample()
	s.Filename, s.OriFilename = "data/x.png", "x.png"
	p := buildPipeline(t,
		map[string]any{"type": "DefaultFormatBundle"},
		map[string]any{"type": "Collect", "keys": []any{"img", "gt_bboxes", "gt_labels"}, "meta_keys": []any{"filename", "img_shape", "pad_shape", "scale_factor"}},
	)
	if err := p.Apply(&s, testRNG()); err != nil {
		t.Fatal(err)
	}
	if !s.Img.CHW || !s.Img.IsFloat() || s.Img.At(19, 39, 2) != 39 {
		t.Fatalf("DefaultFormatBundle: CHW %v float %v pixel %v", s.Img.CHW, s.Img.IsFloat(), s.Img.At(19, 39, 2))
	}
	want := Meta{Filename: "data/x.png", ImgShape: [3]int{20, 40, 3}, PadShape: [3]int{20, 40, 3}, ScaleFactor: [4]float32{1, 1, 1, 1}}
	if s.Filename != want.Filename || s.OriFilename != "" || s.ImgShape != want.ImgShape || s.PadShape != want.PadShape || s.ScaleFactor != want.ScaleFactor || s.OriShape != [3]int{} {
		t.Fatalf("collected meta %+v, want %+v", s.Meta, want)
	}
	cls := Sample{Img: NewImageU8(2, 2, 1), GTLabel: 4}
	p = buildPipeline(t,
		map[string]any{"type": "ImageToTensor", "keys": []any{"img"}},
		map[string]any{"type": "ToTensor", "keys": []any{"gt_label"}},
		map[string]any{"type": "Collect", "keys": []any{"img", "gt_label"}},
	)
	if err := p.Apply(&cls, testRNG()); err != nil {
		t.Fatal(err)
	}
	if !cls.Img.CHW || cls.Img.IsFloat() || cls.GTLabel != 4 {
		t.Fatalf("classification formatting: CHW %v float %v label %d", cls.Img.CHW, cls.Img.IsFloat(), cls.GTLabel)
	}
}

func TestPipelineErrors(t *testing.T) {
	cases := []struct {
		name      string
		sample    Sample
		pipeline  []map[string]any
		fragments []string
	}{
		{"Collect of boxes never loaded", Sample{Img: NewImageU8(2, 2, 3), GTLabel: NoLabel},
			[]map[string]any{{"type": "Collect", "keys": []any{"img", "gt_bboxes"}}}, []string{"step 0 (Collect)", "gt_bboxes", "LoadAnnotations"}},
		{"ToTensor of a missing label", Sample{Img: NewImageU8(2, 2, 3), GTLabel: NoLabel},
			[]map[string]any{{"type": "ToTensor", "keys": []any{"gt_label"}}}, []string{"gt_label"}},
		{"geometry after ImageToTensor", Sample{Img: NewImageU8(2, 2, 3)},
			[]map[string]any{{"type": "ImageToTensor", "keys": []any{"img"}}, {"type": "Resize", "size": 4}}, []string{"step 1 (Resize)", "CHW"}},
		{"resize before loading", Sample{},
			[]map[string]any{{"type": "Resize", "size": 4}}, []string{"LoadImageFromFile"}},
		{"load in an in-memory pipeline", Sample{Img: NewImageU8(2, 2, 1)},
			[]map[string]any{{"type": "LoadImageFromFile"}}, []string{"MNIST"}},
		{"annotations without a detection dataset", Sample{ImgInfo: ImgInfo{Filename: "x"}},
			[]map[string]any{{"type": "LoadAnnotations"}}, []string{"CocoDataset"}},
		{"Resize without any scale", Sample{Img: NewImageU8(2, 2, 1)},
			[]map[string]any{{"type": "Resize"}}, []string{"MultiScaleFlipAug"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.sample
			wantErr(t, buildPipeline(t, c.pipeline...).Apply(&s, testRNG()), c.fragments...)
		})
	}
}

func TestTransformConfigErrors(t *testing.T) {
	cases := []struct {
		node      map[string]any
		fragments []string
	}{
		{map[string]any{"type": "Resize", "size": 32, "img_scale": []any{1, 2}}, []string{"not both"}},
		{map[string]any{"type": "Resize", "size": []any{0, -1}}, []string{"size"}},
		{map[string]any{"type": "Resize", "img_scale": []any{1333, 800}, "backend": "pillow"}, []string{"pillow", "cv2"}},
		{map[string]any{"type": "Resize", "img_scale": []any{1333, 800}, "interpolation": "bicubic"}, []string{"bicubic"}},
		{map[string]any{"type": "Resize", "img_scale": []any{1333, 800}, "keep_ration": true}, []string{"keep_ration", "keep_ratio"}},
		{map[string]any{"type": "RandomFlip", "flip_ratio": 0.5, "flip_prob": 0.5}, []string{"only one"}},
		{map[string]any{"type": "RandomFlip", "direction": "sideways"}, []string{"sideways"}},
		{map[string]any{"type": "RandomFlip", "flip_ratio": []any{0.7, 0.7}, "direction": []any{"horizontal", "vertical"}}, []string{"more than 1"}},
		{map[string]any{"type": "RandomResizedCrop"}, []string{"size"}},
		{map[string]any{"type": "RandomResizedCrop", "size": 224, "scale": []any{0.5, 0.1}}, []string{"scale"}},
		{map[string]any{"type": "Pad"}, []string{"exactly one"}},
		{map[string]any{"type": "Normalize", "mean": []any{1, 2}, "std": []any{1}}, []string{"equal length"}},
		{map[string]any{"type": "Collect", "keys": []any{"image"}}, []string{"unknown key", "img"}},
		{map[string]any{"type": "Collect", "keys": []any{"img"}, "meta_keys": []any{"shape"}}, []string{"unknown meta key"}},
		{map[string]any{"type": "ToTensor", "keys": []any{"img"}}, []string{"ImageToTensor"}},
		{map[string]any{"type": "LoadAnnotations", "with_mask": true}, []string{"with_mask"}},
		{map[string]any{"type": "LoadImageFromFile", "color_type": "anydepth"}, []string{"anydepth"}},
		{map[string]any{"type": "MultiScaleFlipAug", "img_scale": []any{1333, 800}, "flip": true, "transforms": []any{}}, []string{"flip"}},
		{map[string]any{"type": "MultiScaleFlipAug", "img_scale": []any{[]any{1333, 800}, []any{666, 400}}, "transforms": []any{}}, []string{"several scales"}},
		{map[string]any{"type": "mmdet.RandomCrop", "crop_size": 3}, []string{"unknown transform type"}},
	}
	for _, c := range cases {
		_, err := Transforms.Build(c.node, "data.train.pipeline.2", nil)
		wantErr(t, err, append([]string{"data.train.pipeline.2"}, c.fragments...)...)
	}
}

func TestMultiScaleFlipAug(t *testing.T) {
	tr := build(t, map[string]any{"type": "mmdet.MultiScaleFlipAug", "img_scale": []any{80, 40}, "flip": false, "transforms": []any{
		map[string]any{"type": "Resize", "keep_ratio": true},
		map[string]any{"type": "RandomFlip"},
		map[string]any{"type": "Pad", "size_divisor": 32},
		map[string]any{"type": "ImageToTensor", "keys": []any{"img"}},
		map[string]any{"type": "Collect", "keys": []any{"img"}},
	}})
	for i := range 20 {
		s := borderSample()
		if err := tr.Apply(&s, SampleRNG(1, 0, i)); err != nil {
			t.Fatal(err)
		}
		if s.Flip || s.ImgShape != [3]int{40, 80, 3} || s.Img.Shape() != [3]int{64, 96, 3} || s.GT != nil {
			t.Fatalf("flip %v img_shape %v padded %v gt %v", s.Flip, s.ImgShape, s.Img.Shape(), s.GT)
		}
	}
}
