package datasets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// CocoTinyOptions size the generated tiny COCO set.
type CocoTinyOptions struct {
	// Train and Val are the numbers of images per split.
	Train, Val int
	// MinSide and MaxSide bound each image's width and height, drawn
	// independently, so landscape and portrait images both occur.
	MinSide, MaxSide int
	// MaxBoxes bounds the objects per image (at least one is placed).
	MaxBoxes int
	// Seed makes the set: the same options give the same bytes.
	Seed uint64
	// Workers render images in parallel; the output does not depend on it.
	Workers int
}

// DefaultCocoTinyOptions are the defaults of tools/make_coco_tiny.
func DefaultCocoTinyOptions() CocoTinyOptions {
	return CocoTinyOptions{Train: 16, Val: 8, MinSide: 96, MaxSide: 256, MaxBoxes: 4, Workers: runtime.GOMAXPROCS(0)}
}

// CocoTinyLayout are the paths GenerateCocoTiny writes under its output
// folder: COCO 2017's own, so a config's data_root can point at it.
var CocoTinyLayout = struct{ TrainImages, ValImages, TrainAnn, ValAnn string }{
	TrainImages: "train2017", ValImages: "val2017",
	TrainAnn: "annotations/instances_train2017.json", ValAnn: "annotations/instances_val2017.json",
}

// GenerateCocoTiny writes a small COCO-format detection set under out, in
// COCO 2017's layout (train2017/, val2017/, annotations/instances_*.json):
// JPEG images of random size with a few flat-coloured rectangles each, one
// colour per category, annotated with the real 80 COCO categories and ids
// (COCOCategories). About one box in ten is a crowd region. Every image has
// at least one box that is not a crowd, so training keeps it. The output is
// a pure function of the options (image i of a split does not depend on the
// number of images or workers); the annotation file is written last, after
// every image, and each file appears whole under its name.
func GenerateCocoTiny(out string, o CocoTinyOptions) error {
	switch {
	case o.Train < 0 || o.Val < 0:
		return fmt.Errorf("make_coco_tiny: image counts train=%d val=%d must not be negative", o.Train, o.Val)
	case o.MinSide < minTrainImageSize:
		return fmt.Errorf("make_coco_tiny: min side %d is too small; training drops images under %d pixels", o.MinSide, minTrainImageSize)
	case o.MaxSide < o.MinSide:
		return fmt.Errorf("make_coco_tiny: max side %d is below min side %d", o.MaxSide, o.MinSide)
	case o.MaxBoxes < 1:
		return fmt.Errorf("make_coco_tiny: max boxes %d must be at least 1", o.MaxBoxes)
	}
	splits := []struct {
		n               int
		imgDir, annFile string
		id              uint64
	}{
		{o.Train, CocoTinyLayout.TrainImages, CocoTinyLayout.TrainAnn, 1},
		{o.Val, CocoTinyLayout.ValImages, CocoTinyLayout.ValAnn, 2},
	}
	for _, sp := range splits {
		if sp.n == 0 {
			continue
		}
		if err := writeCocoTinySplit(out, sp.imgDir, sp.annFile, sp.n, sp.id, o); err != nil {
			return fmt.Errorf("make_coco_tiny: %w", err)
		}
	}
	return nil
}

// tinyObject is one annotated rectangle: (x, y, w, h) in pixels.
type tinyObject struct {
	x, y, w, h int
	cat        int // index into COCOCategories
	crowd      bool
}

// tinyImage is one rendered image and its objects.
type tinyImage struct {
	w, h    int
	objects []tinyObject
}

func writeCocoTinySplit(out, imgDir, annFile string, n int, split uint64, o CocoTinyOptions) error {
	dir := filepath.Join(out, imgDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(out, annFile)), 0o755); err != nil {
		return err
	}
	images := make([]tinyImage, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(o.Workers, 1) {
		wg.Go(func() {
			for i := range next {
				rng := rand.New(rand.NewPCG(mix64(o.Seed^0x636f636f74696e79), mix64(split<<40^uint64(i))))
				img, info := renderTinyImage(rng, o)
				images[i] = info
				var buf bytes.Buffer
				if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
					errs[i] = fmt.Errorf("encode image %d: %w", i+1, err)
					continue
				}
				errs[i] = writeFileWhole(filepath.Join(dir, tinyFileName(i)), buf.Bytes())
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
		Info:        cocoInfo{Description: fmt.Sprintf("razor tiny COCO set (%s, seed %d)", imgDir, o.Seed), Version: "1"},
		Licenses:    []struct{}{},
		Images:      make([]cocoOutImage, n),
		Annotations: []cocoOutAnn{},
	}
	for _, c := range COCOCategories {
		doc.Categories = append(doc.Categories, cocoOutCatory{ID: c.ID, Name: c.Name, Supercategory: c.Supercategory})
	}
	annID := int64(1)
	for i, im := range images {
		id := int64(i + 1)
		doc.Images[i] = cocoOutImage{ID: id, FileName: tinyFileName(i), Width: im.w, Height: im.h}
		for _, ob := range im.objects {
			x, y, w, h := float64(ob.x), float64(ob.y), float64(ob.w), float64(ob.h)
			a := cocoOutAnn{
				ID: annID, ImageID: id, CategoryID: COCOCategories[ob.cat].ID,
				BBox: [4]float64{x, y, w, h}, Area: w * h,
				Segmentation: [][]float64{{x, y, x + w, y, x + w, y + h, x, y + h}},
			}
			if ob.crowd {
				a.IsCrowd = 1
			}
			doc.Annotations = append(doc.Annotations, a)
			annID++
		}
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return writeFileWhole(filepath.Join(out, annFile), append(data, '\n'))
}

// tinyFileName is image i's file name, COCO style (the id in 12 digits).
func tinyFileName(i int) string { return fmt.Sprintf("%012d.jpg", i+1) }

// writeFileWhole writes data to a temporary file beside path and renames it
// into place, so an interrupted run never leaves a truncated file there.
func writeFileWhole(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// categoryColour is category c's fill colour, fixed so that a detector
// can tell the categories apart by colour alone.
func categoryColour(c int) [3]uint8 {
	h := mix64(uint64(c) + 0x5eed)
	return [3]uint8{uint8(64 + h%192), uint8(64 + (h>>8)%192), uint8(64 + (h>>16)%192)}
}

// renderTinyImage draws a dark gradient background and 1..MaxBoxes
// rectangles, later ones over earlier ones where they overlap little.
func renderTinyImage(rng *rand.Rand, o CocoTinyOptions) (*image.RGBA, tinyImage) {
	w := o.MinSide + rng.IntN(o.MaxSide-o.MinSide+1)
	h := o.MinSide + rng.IntN(o.MaxSide-o.MinSide+1)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	base := [3]int{rng.IntN(40), rng.IntN(40), rng.IntN(40)}
	for y := range h {
		for x := range w {
			p := img.PixOffset(x, y)
			for k := range 3 {
				img.Pix[p+k] = uint8(base[k] + 20*(x+y)/(w+h))
			}
			img.Pix[p+3] = 255
		}
	}
	info := tinyImage{w: w, h: h}
	want := 1 + rng.IntN(o.MaxBoxes)
	for attempt := 0; len(info.objects) < want && attempt < 20*want; attempt++ {
		ob := tinyObject{
			w:   max(4, rng.IntN(w*3/4)+1),
			h:   max(4, rng.IntN(h*3/4)+1),
			cat: rng.IntN(len(COCOCategories)),
		}
		ob.x, ob.y = rng.IntN(w-ob.w+1), rng.IntN(h-ob.h+1)
		// The first object is never a crowd, so every image has a box to
		// train on.
		ob.crowd = len(info.objects) > 0 && rng.IntN(10) == 0
		if overlapsTooMuch(detBox{x: ob.x, y: ob.y, w: ob.w, h: ob.h}, tinyBoxes(info.objects)) {
			continue
		}
		col := categoryColour(ob.cat)
		for y := ob.y; y < ob.y+ob.h; y++ {
			for x := ob.x; x < ob.x+ob.w; x++ {
				p := img.PixOffset(x, y)
				copy(img.Pix[p:p+3], col[:])
			}
		}
		info.objects = append(info.objects, ob)
	}
	return img, info
}

// tinyBoxes are the objects' boxes in the form overlapsTooMuch takes.
func tinyBoxes(obs []tinyObject) []detBox {
	out := make([]detBox, len(obs))
	for i, ob := range obs {
		out[i] = detBox{x: ob.x, y: ob.y, w: ob.w, h: ob.h}
	}
	return out
}
