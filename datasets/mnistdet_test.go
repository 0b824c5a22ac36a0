package datasets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func testDigits(t *testing.T) *Digits {
	t.Helper()
	dir, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ReadDigits(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// treeBytes reads every file under dir, keyed by relative path.
func treeBytes(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGenerateMNISTDetIsDeterministic(t *testing.T) {
	digits := testDigits(t)
	gen := func(train, workers int, seed uint64) map[string][]byte {
		dir := t.TempDir()
		o := MNISTDetOptions{Train: train, Val: 2, Size: 96, Seed: seed, MaxDigits: 4, MaxFragments: 2, Workers: workers}
		if err := GenerateMNISTDet(dir, digits, digits, o); err != nil {
			t.Fatal(err)
		}
		return treeBytes(t, dir)
	}
	a := gen(4, 1, 3)
	b := gen(4, 3, 3)
	if len(a) != 8 || len(a) != len(b) {
		t.Fatalf("%d and %d files, want 8 (6 images, 2 JSON)", len(a), len(b))
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Fatalf("%s differs between 1 and 3 workers", name)
		}
	}
	fewer := gen(2, 2, 3)
	for _, name := range []string{"train/000001.png", "train/000002.png", "val/000002.png"} {
		if !bytes.Equal(a[name], fewer[name]) {
			t.Fatalf("%s depends on the number of training images", name)
		}
	}
	other := gen(4, 1, 4)
	if bytes.Equal(a["train/000001.png"], other["train/000001.png"]) {
		t.Fatal("seeds 3 and 4 gave the same first image")
	}
}

// The search split is held out from training: its images are the ones a
// larger training split would have had next, listed only in
// instances_search.json, and the training annotations are unchanged by it.
func TestGenerateMNISTDetSearchSplitIsHeldOut(t *testing.T) {
	digits := testDigits(t)
	gen := func(train, search int) (string, map[string][]byte) {
		dir := t.TempDir()
		o := MNISTDetOptions{Train: train, Val: 1, Search: search, Size: 96, Seed: 5, MaxDigits: 3, MaxFragments: 1, Workers: 2}
		if err := GenerateMNISTDet(dir, digits, digits, o); err != nil {
			t.Fatal(err)
		}
		return dir, treeBytes(t, dir)
	}
	_, four := gen(4, 0)
	dir, split := gen(2, 2)
	for _, name := range []string{"train/000001.png", "train/000002.png", "train/000003.png", "train/000004.png"} {
		if !bytes.Equal(four[name], split[name]) {
			t.Fatalf("%s differs from a 4-image training split's", name)
		}
	}
	ids := func(ann string) (ids []int64, files []string) {
		var doc cocoOut
		if err := json.Unmarshal(readFile(t, filepath.Join(dir, ann)), &doc); err != nil {
			t.Fatal(err)
		}
		for _, im := range doc.Images {
			ids = append(ids, im.ID)
			files = append(files, im.FileName)
		}
		for _, a := range doc.Annotations {
			if a.ImageID < ids[0] || a.ImageID > ids[len(ids)-1] {
				t.Fatalf("%s: annotation %d is on image %d, not one of %v", ann, a.ID, a.ImageID, ids)
			}
		}
		return ids, files
	}
	trainIDs, trainFiles := ids(MNISTDetLayout.TrainAnn)
	searchIDs, searchFiles := ids(MNISTDetLayout.SearchAnn)
	if fmt.Sprint(trainIDs, trainFiles) != "[1 2] [000001.png 000002.png]" {
		t.Fatalf("training split lists %v %v, want images 1 and 2", trainIDs, trainFiles)
	}
	if fmt.Sprint(searchIDs, searchFiles) != "[3 4] [000003.png 000004.png]" {
		t.Fatalf("search split lists %v %v, want images 3 and 4", searchIDs, searchFiles)
	}
	var a, b cocoOut
	if err := json.Unmarshal(split[MNISTDetLayout.TrainAnn], &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(four[MNISTDetLayout.TrainAnn], &b); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a.Annotations) != fmt.Sprint(b.Annotations[:len(a.Annotations)]) {
		t.Fatal("the training split's annotations changed when a search split was added")
	}
}

func TestGenerateMNISTDetCoversCOCOAreaRanges(t *testing.T) {
	digits := testDigits(t)
	dir := t.TempDir()
	o := DefaultMNISTDetOptions()
	o.Train, o.Val, o.Seed = 24, 1, 1
	if err := GenerateMNISTDet(dir, digits, digits, o); err != nil {
		t.Fatal(err)
	}
	var doc cocoOut
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, MNISTDetLayout.TrainAnn)), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Images) != 24 || len(doc.Categories) != 10 || doc.Categories[0].Name != "0" || doc.Categories[9].ID != 10 {
		t.Fatalf("%d images, categories %+v", len(doc.Images), doc.Categories)
	}
	var small, medium, large int
	perImage := map[int64]int{}
	for i, a := range doc.Annotations {
		if a.ID != int64(i+1) || a.IsCrowd != 0 || a.CategoryID < 1 || a.CategoryID > 10 {
			t.Fatalf("annotation %+v", a)
		}
		x, y, w, h := a.BBox[0], a.BBox[1], a.BBox[2], a.BBox[3]
		if x < 0 || y < 0 || w < 1 || h < 1 || x+w > 256 || y+h > 256 || a.Area != w*h {
			t.Fatalf("annotation %+v has a box outside the image or a wrong area", a)
		}
		perImage[a.ImageID]++
		switch {
		case a.Area < 32*32:
			small++
		case a.Area > 96*96:
			large++
		default:
			medium++
		}
	}
	if small == 0 || medium == 0 || large == 0 {
		t.Fatalf("area ranges: %d small, %d medium, %d large; want all three", small, medium, large)
	}
	if len(perImage) != 24 {
		t.Fatalf("%d of 24 images have digits", len(perImage))
	}

	ds, err := NewCocoDataset(CocoOptions{AnnFile: filepath.Join(dir, MNISTDetLayout.TrainAnn), ImgPrefix: filepath.Join(dir, MNISTDetLayout.TrainImages), FilterEmptyGT: true,
		Pipeline: buildPipeline(t, map[string]any{"type": "LoadImageFromFile"}, map[string]any{"type": "LoadAnnotations"})})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 24 || ds.Classes()[3] != "3" {
		t.Fatalf("read back %d images, classes %v", ds.Len(), ds.Classes())
	}
	s, err := Prepare(ds, 0, testRNG())
	if err != nil {
		t.Fatal(err)
	}
	if s.Img.Shape() != [3]int{256, 256, 3} || len(s.GT.BBoxes) != perImage[1] {
		t.Fatalf("image 1: shape %v, %d boxes, want %d", s.Img.Shape(), len(s.GT.BBoxes), perImage[1])
	}

	// The detection training pipeline batches the set.
	ds, err = NewCocoDataset(CocoOptions{AnnFile: filepath.Join(dir, MNISTDetLayout.TrainAnn), ImgPrefix: filepath.Join(dir, MNISTDetLayout.TrainImages), FilterEmptyGT: true,
		Pipeline: buildPipeline(t,
			map[string]any{"type": "LoadImageFromFile"},
			map[string]any{"type": "LoadAnnotations", "with_bbox": true},
			map[string]any{"type": "Resize", "img_scale": []any{128, 100}, "keep_ratio": true},
			map[string]any{"type": "RandomFlip", "flip_ratio": 0.5},
			map[string]any{"type": "Normalize", "mean": []any{123.675, 116.28, 103.53}, "std": []any{58.395, 57.12, 57.375}, "to_rgb": true},
			map[string]any{"type": "Pad", "size_divisor": 32},
			map[string]any{"type": "DefaultFormatBundle"},
			map[string]any{"type": "Collect", "keys": []any{"img", "gt_bboxes", "gt_labels"}},
		)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(ds, LoaderOptions{SamplesPerGPU: 4, WorkersPerGPU: 2, Shuffle: true, SizeDivisor: 32})
	if err != nil {
		t.Fatal(err)
	}
	for b, err := range l.Epoch(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if b.Shape != [4]int{4, 3, 128, 128} || len(b.GT) != 4 || b.Metas[0].ImgShape != [3]int{100, 100, 3} || b.Metas[0].PadShape != [3]int{128, 128, 3} {
			t.Fatalf("batch shape %v, %d targets, metas %+v", b.Shape, len(b.GT), b.Metas[0])
		}
		for i, gt := range b.GT {
			if len(gt.BBoxes) != perImage[ds.ImageID(b.Indices[i])] || len(gt.Labels) != len(gt.BBoxes) {
				t.Fatalf("image %d: %d boxes, %d labels", b.Indices[i], len(gt.BBoxes), len(gt.Labels))
			}
			for _, box := range gt.BBoxes {
				if box[0] < 0 || box[1] < 0 || box[2] > 100 || box[3] > 100 || box[2] <= box[0] || box[3] <= box[1] {
					t.Fatalf("box %v outside the 100x100 resized image", box)
				}
			}
		}
		break
	}
}

func TestMNISTDetBoxIsTheTightInkBox(t *testing.T) {
	// One digit: a solid block of ink in rows 10..17, columns 8..19.
	d := &Digits{N: 1, Rows: 28, Cols: 28, Pixels: make([]uint8, 28*28), Labels: []uint8{6}}
	for y := 10; y < 18; y++ {
		for x := 8; x < 20; x++ {
			d.Pixels[y*28+x] = 255
		}
	}
	blank := &Digits{N: 1, Rows: 28, Cols: 28, Pixels: make([]uint8, 28*28), Labels: []uint8{6}}
	o := MNISTDetOptions{Size: 64, MaxDigits: 1}
	for seed := range uint64(20) {
		img, boxes := renderDetImage(rand.New(rand.NewPCG(seed, 1)), d, o)
		// The same draws without ink give the bare background.
		bg, none := renderDetImage(rand.New(rand.NewPCG(seed, 1)), blank, o)
		if len(boxes) != 1 || boxes[0].digit != 6 || len(none) != 0 {
			t.Fatalf("seed %d: boxes %+v, blank boxes %+v", seed, boxes, none)
		}
		b := boxes[0]
		// The block is 12/28 of the cell wide and 8/28 high, plus at most
		// one pixel of bilinear edge on each side.
		side := float64(b.w) * 28 / 12
		if hs := float64(b.h) * 28 / 8; hs < side*0.6 || hs > side*1.6 {
			t.Fatalf("seed %d: box %dx%d does not have the block's shape", seed, b.w, b.h)
		}
		inked := func(x, y int) bool {
			o := (y*64 + x) * 4
			return !bytes.Equal(img.Pix[o:o+3], bg.Pix[o:o+3])
		}
		var top, bottom, left, right bool
		for x := range 64 {
			for y := range 64 {
				inside := x >= b.x && x < b.x+b.w && y >= b.y && y < b.y+b.h
				if !inked(x, y) {
					continue
				}
				if !inside {
					t.Fatalf("seed %d: ink at (%d,%d) outside box %+v", seed, x, y, b)
				}
				top = top || y == b.y
				bottom = bottom || y == b.y+b.h-1
				left = left || x == b.x
				right = right || x == b.x+b.w-1
			}
		}
		if !top || !bottom || !left || !right {
			t.Fatalf("seed %d: box %+v is not tight: ink on its top %v bottom %v left %v right %v edge", seed, b, top, bottom, left, right)
		}
	}
}

func TestGenerateMNISTDetErrors(t *testing.T) {
	digits := &Digits{N: 1, Rows: 28, Cols: 28, Pixels: make([]uint8, 28*28), Labels: []uint8{12}}
	cases := []struct {
		o    MNISTDetOptions
		frag string
	}{
		{MNISTDetOptions{Train: 1, Size: 16, MaxDigits: 1}, "size 16"},
		{MNISTDetOptions{Train: -1, Size: 64, MaxDigits: 1}, "must not be negative"},
		{MNISTDetOptions{Train: 1, Size: 64}, "max digits"},
		{MNISTDetOptions{Train: 1, Size: 64, MaxDigits: 1}, "label 12"},
	}
	for _, c := range cases {
		wantErr(t, GenerateMNISTDet(t.TempDir(), digits, digits, c.o), c.frag)
	}
	wantErr(t, GenerateMNISTDet(t.TempDir(), nil, nil, MNISTDetOptions{Val: 1, Size: 64, MaxDigits: 1}), "no validation digits")
}

func TestGeneratedImagesArePNG(t *testing.T) {
	digits := testDigits(t)
	dir := t.TempDir()
	if err := GenerateMNISTDet(dir, nil, digits, MNISTDetOptions{Val: 1, Size: 64, MaxDigits: 2, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "val", "000001.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 64 || cfg.Height != 64 {
		t.Fatalf("PNG config %+v err %v", cfg, err)
	}
	if _, err := os.Stat(filepath.Join(dir, MNISTDetLayout.TrainAnn)); !os.IsNotExist(err) {
		t.Fatalf("no training images were asked for, yet %s exists (%v)", MNISTDetLayout.TrainAnn, err)
	}
}
