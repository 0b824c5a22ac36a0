package datasets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/razorgo/razor/registry"
)

// MNISTDetOptions size the generated detection set.
type MNISTDetOptions struct {
	// Train and Val are the numbers of images per split.
	Train, Val int
	// Search is the number of held-out images for scoring subnets in a
	// search, made like training images (MNIST's training digits, in
	// train/, numbered after the training split) and listed only in
	// annotations/instances_search.json, so a supernet trained on
	// instances_train.json never sees them and the validation split stays
	// for the final number -- as DetNAS searches on a part of COCO's
	// training images held out from the supernet's training.
	Search int
	// Size is the side of the square canvases in pixels. At 256 digit boxes
	// fall in all three COCO area ranges (small < 32^2, large > 96^2); below
	// about 150 no box is large.
	Size int
	// Seed makes the set: the same seed gives the same bytes.
	Seed uint64
	// MaxDigits bounds the digits per image (at least one is placed).
	MaxDigits int
	// MaxFragments bounds the unannotated digit fragments per image.
	MaxFragments int
	// Workers render images in parallel; the output does not depend on it.
	Workers int
}

// DefaultMNISTDetOptions are the defaults of tools/make_mnist_det.
func DefaultMNISTDetOptions() MNISTDetOptions {
	return MNISTDetOptions{Train: 1000, Val: 200, Search: 100, Size: 256, MaxDigits: 5, MaxFragments: 3, Workers: runtime.GOMAXPROCS(0)}
}

// MNISTDetLayout are the paths GenerateMNISTDet writes under its output
// folder, COCO style: images in train/ and val/, the instances JSON files in
// annotations/.
var MNISTDetLayout = struct{ TrainImages, ValImages, TrainAnn, ValAnn, SearchAnn string }{
	TrainImages: "train", ValImages: "val",
	TrainAnn: "annotations/instances_train.json", ValAnn: "annotations/instances_val.json",
	SearchAnn: "annotations/instances_search.json",
}

// cocoOut is the COCO instances JSON layout written by GenerateMNISTDet.
type cocoOut struct {
	Info        cocoInfo        `json:"info"`
	Licenses    []struct{}      `json:"licenses"`
	Images      []cocoOutImage  `json:"images"`
	Annotations []cocoOutAnn    `json:"annotations"`
	Categories  []cocoOutCatory `json:"categories"`
}

type cocoInfo struct {
	Description string `json:"description"`
	Version     string `json:"version"`
}

type cocoOutImage struct {
	ID       int64  `json:"id"`
	FileName string `json:"file_name"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
}

type cocoOutAnn struct {
	ID         int64      `json:"id"`
	ImageID    int64      `json:"image_id"`
	CategoryID int64      `json:"category_id"`
	BBox       [4]float64 `json:"bbox"`
	Area       float64    `json:"area"`
	IsCrowd    int        `json:"iscrowd"`
	// Segmentation is the object's polygon, omitted by sets without one.
	Segmentation [][]float64 `json:"segmentation,omitempty"`
}

type cocoOutCatory struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Supercategory string `json:"supercategory"`
}

// GenerateMNISTDet writes the synthetic detection set under out: digits of
// train (for the train split) and val (for the val split) pasted at random
// scales, positions and colours onto gradient canvases with unannotated
// digit fragments as clutter, as PNG files plus COCO JSON (10 categories
// "0".."9" with ids 1..10; boxes are the tight boxes of the pasted digits'
// nonzero pixels, area = w*h, iscrowd 0), and o.Search held-out images
// made as training images numbered after them (see MNISTDetOptions). A split
// of zero images is not written. The output is a pure function of the
// digits and options: image i of a split does not depend on the number of
// images or workers, so the held-out images are those a larger training
// split would have had next.
func GenerateMNISTDet(out string, train, val *Digits, o MNISTDetOptions) error {
	switch {
	case o.Train < 0 || o.Val < 0 || o.Search < 0:
		return fmt.Errorf("image counts train=%d val=%d search=%d must not be negative", o.Train, o.Val, o.Search)
	case o.Size < 32:
		return fmt.Errorf("size %d is too small; use at least 32 (256 gives all COCO area ranges)", o.Size)
	case o.MaxDigits < 1:
		return fmt.Errorf("max digits %d must be at least 1", o.MaxDigits)
	case o.MaxFragments < 0:
		return fmt.Errorf("max fragments %d must not be negative", o.MaxFragments)
	case o.Train+o.Search > 0 && (train == nil || train.N == 0):
		return errors.New("no training digits")
	case o.Val > 0 && (val == nil || val.N == 0):
		return errors.New("no validation digits")
	}
	for _, d := range []*Digits{train, val} {
		if d == nil {
			continue
		}
		for i, l := range d.Labels {
			if l > 9 {
				return fmt.Errorf("digit %d has label %d; the set has the ten categories 0..9", i, l)
			}
		}
	}
	splits := []struct {
		first, n int
		digits   *Digits
		imgDir   string
		annFile  string
		id       uint64
		name     string
	}{
		{0, o.Train, train, MNISTDetLayout.TrainImages, MNISTDetLayout.TrainAnn, 1, "train"},
		{0, o.Val, val, MNISTDetLayout.ValImages, MNISTDetLayout.ValAnn, 2, "val"},
		// The training split's stream continued: held out, not another set.
		{o.Train, o.Search, train, MNISTDetLayout.TrainImages, MNISTDetLayout.SearchAnn, 1, "search"},
	}
	for _, sp := range splits {
		if sp.n == 0 {
			continue
		}
		if err := writeDetSplit(out, sp.imgDir, sp.annFile, sp.name, sp.first, sp.n, sp.digits, sp.id, o); err != nil {
			return err
		}
	}
	return nil
}

// writeDetSplit renders images first..first+n-1 of a split's stream into
// imgDir and lists them in annFile.
func writeDetSplit(out, imgDir, annFile, name string, first, n int, digits *Digits, split uint64, o MNISTDetOptions) error {
	dir := filepath.Join(out, imgDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(out, annFile)), 0o755); err != nil {
		return err
	}
	boxes := make([][]detBox, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(o.Workers, 1) {
		wg.Go(func() {
			for i := range next {
				rng := rand.New(rand.NewPCG(mix64(o.Seed^0x6d6e697374646574), mix64(split<<40^uint64(first+i))))
				img, bs := renderDetImage(rng, digits, o)
				boxes[i] = bs
				errs[i] = writePNG(filepath.Join(dir, detFileName(first+i)), img)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	doc := cocoOut{
		Info:        cocoInfo{Description: fmt.Sprintf("razor MNIST detection set (%s split, size %d, seed %d)", name, o.Size, o.Seed), Version: "1"},
		Licenses:    []struct{}{},
		Images:      make([]cocoOutImage, n),
		Annotations: []cocoOutAnn{},
	}
	for c := range 10 {
		doc.Categories = append(doc.Categories, cocoOutCatory{ID: int64(c + 1), Name: fmt.Sprint(c), Supercategory: "digit"})
	}
	annID := int64(1)
	for i := range n {
		id := int64(first + i + 1)
		doc.Images[i] = cocoOutImage{ID: id, FileName: detFileName(first + i), Width: o.Size, Height: o.Size}
		for _, b := range boxes[i] {
			doc.Annotations = append(doc.Annotations, cocoOutAnn{
				ID: annID, ImageID: id, CategoryID: int64(b.digit + 1),
				BBox: [4]float64{float64(b.x), float64(b.y), float64(b.w), float64(b.h)},
				Area: float64(b.w * b.h),
			})
			annID++
		}
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, annFile), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return nil
}

func detFileName(i int) string { return fmt.Sprintf("%06d.png", i+1) }

func writePNG(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// detBox is one placed digit: its tight box (x, y, w, h) on the canvas.
type detBox struct{ x, y, w, h, digit int }

// canvas is an RGB float image being composed.
type canvas struct {
	size int
	pix  []float32
}

// paste alpha-blends a gray stamp (ink 0..255 as opacity) in colour col with
// its top-left at (x0, y0), clipping at the canvas borders.
func (c *canvas) paste(stamp Image, x0, y0 int, col [3]float32) {
	for y := range stamp.H {
		cy := y0 + y
		if cy < 0 || cy >= c.size {
			continue
		}
		for x := range stamp.W {
			cx := x0 + x
			if cx < 0 || cx >= c.size {
				continue
			}
			a := float32(stamp.U8[y*stamp.W+x]) / 255
			if a == 0 {
				continue
			}
			p := (cy*c.size + cx) * 3
			for k := range 3 {
				c.pix[p+k] = c.pix[p+k]*(1-a) + col[k]*a
			}
		}
	}
}

// randomColour is a bright colour: one channel near full, the others free.
func randomColour(rng *rand.Rand) [3]float32 {
	var col [3]float32
	for k := range col {
		col[k] = float32(40 + rng.IntN(216))
	}
	col[rng.IntN(3)] = float32(200 + rng.IntN(56))
	return col
}

// digitSide draws a digit's cell side log-uniformly between 12 pixels and
// 90% of the canvas, so small, medium and large boxes all occur.
func digitSide(rng *rand.Rand, size int) int {
	lo, hi := math.Log(12), math.Log(0.9*float64(size))
	return max(4, int(math.Exp(lo+rng.Float64()*(hi-lo))))
}

// tightBox is the bounding box (x0, y0, x1, y1 inclusive) of a stamp's
// nonzero pixels; ok is false for an empty stamp.
func tightBox(stamp Image) (x0, y0, x1, y1 int, ok bool) {
	x0, y0, x1, y1 = stamp.W, stamp.H, -1, -1
	for y := range stamp.H {
		for x := range stamp.W {
			if stamp.U8[y*stamp.W+x] != 0 {
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
		}
	}
	return x0, y0, x1, y1, x1 >= 0
}

// overlapsTooMuch limits overlap so that every digit stays recognisable:
// IoU at most 0.3 and at most half of the smaller box covered.
func overlapsTooMuch(b detBox, placed []detBox) bool {
	for _, p := range placed {
		iw := min(b.x+b.w, p.x+p.w) - max(b.x, p.x)
		ih := min(b.y+b.h, p.y+p.h) - max(b.y, p.y)
		if iw <= 0 || ih <= 0 {
			continue
		}
		inter := float64(iw * ih)
		a, c := float64(b.w*b.h), float64(p.w*p.h)
		if inter/(a+c-inter) > 0.3 || inter/math.Min(a, c) > 0.5 {
			return true
		}
	}
	return false
}

func renderDetImage(rng *rand.Rand, digits *Digits, o MNISTDetOptions) (*image.RGBA, []detBox) {
	size := o.Size
	c := &canvas{size: size, pix: make([]float32, size*size*3)}
	var from, to [3]float32
	for k := range 3 {
		from[k], to[k] = float32(rng.IntN(50)), float32(rng.IntN(50))
	}
	vertical := rng.IntN(2) == 0
	for y := range size {
		for x := range size {
			t := float32(x) / float32(size-1)
			if vertical {
				t = float32(y) / float32(size-1)
			}
			for k := range 3 {
				c.pix[(y*size+x)*3+k] = from[k]*(1-t) + to[k]*t
			}
		}
	}
	cell := func(i int) Image {
		return Image{H: digits.Rows, W: digits.Cols, C: 1, U8: digits.Image(i)}
	}
	for range rng.IntN(o.MaxFragments + 1) {
		d := cell(rng.IntN(digits.N))
		fw := digits.Cols*3/8 + rng.IntN(digits.Cols/4)
		fh := digits.Rows*3/8 + rng.IntN(digits.Rows/4)
		frag := d.Crop(rng.IntN(digits.Cols-fw+1), rng.IntN(digits.Rows-fh+1), fw, fh)
		side := digitSide(rng, size)
		stamp := frag.Resize(max(1, side*fh/digits.Rows), max(1, side*fw/digits.Cols), Bilinear)
		c.paste(stamp, rng.IntN(size)-stamp.W/2, rng.IntN(size)-stamp.H/2, randomColour(rng))
	}
	var placed []detBox
	for range 1 + rng.IntN(o.MaxDigits) {
		i := rng.IntN(digits.N)
		side := digitSide(rng, size)
		stamp := cell(i).Resize(side, side, Bilinear)
		bx0, by0, bx1, by1, ok := tightBox(stamp)
		if !ok {
			continue
		}
		b := detBox{w: bx1 - bx0 + 1, h: by1 - by0 + 1, digit: int(digits.Labels[i])}
		if b.w > size || b.h > size {
			continue
		}
		col := randomColour(rng)
		for range 20 {
			b.x, b.y = rng.IntN(size-b.w+1), rng.IntN(size-b.h+1)
			if !overlapsTooMuch(b, placed) {
				c.paste(stamp, b.x-bx0, b.y-by0, col)
				placed = append(placed, b)
				break
			}
		}
	}
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for p := range size * size {
		for k := range 3 {
			img.Pix[p*4+k] = uint8(math.Floor(float64(c.pix[p*3+k]) + 0.5))
		}
		img.Pix[p*4+3] = 255
	}
	return img, placed
}

// MNISTDetClasses are the shipped detection set's classes, the digits.
var MNISTDetClasses = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

// NewMNISTDetDataset reads a set GenerateMNISTDet wrote: a CocoDataset
// whose classes default to the ten digits, and whose missing files are
// answered with the command that makes them (as mmdet's dataset classes
// specialise CocoDataset with their CLASSES).
func NewMNISTDetDataset(opts CocoOptions) (*CocoDataset, error) {
	if opts.Classes == nil {
		cl := make([]any, len(MNISTDetClasses))
		for i, c := range MNISTDetClasses {
			cl[i] = c
		}
		opts.Classes = cl
	}
	return newCocoDataset(opts, "MNISTDetDataset", func(annFile string) string {
		root := filepath.Dir(filepath.Dir(annFile))
		return fmt.Sprintf("make the digits detection set with: go run ./tools/make_mnist_det --out %s", root)
	})
}

func init() {
	registry.MustRegister(Datasets, "MNISTDetDataset", func(o CocoOptions) (Dataset, error) { return NewMNISTDetDataset(o) })
}
