package datasets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// cocoFixture writes images and an instances JSON under a temp data root
// and returns the root.
func cocoFixture(t *testing.T, doc map[string]any, sizes map[string][2]int) string {
	t.Helper()
	root := t.TempDir()
	for name, wh := range sizes {
		writePNGFile(t, filepath.Join(root, "images", name), rgbImage(wh[0], wh[1]))
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	writeBytes(t, filepath.Join(root, "annotations", "instances.json"), data)
	return root
}

func img(id int, name string, w, h int) map[string]any {
	return map[string]any{"id": id, "file_name": name, "width": w, "height": h}
}

func ann(id, imageID, cat int, bbox []float64, extra ...any) map[string]any {
	a := map[string]any{"id": id, "image_id": imageID, "category_id": cat, "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0}
	for i := 0; i+1 < len(extra); i += 2 {
		a[extra[i].(string)] = extra[i+1]
	}
	return a
}

func standardCoco() (map[string]any, map[string][2]int) {
	doc := map[string]any{
		"images": []any{img(1, "a.png", 64, 48), img(2, "b.png", 64, 48), img(3, "c.png", 20, 20), img(4, "d.png", 64, 48)},
		"annotations": []any{
			ann(1, 1, 3, []float64{10, 5, 20, 10}),
			ann(2, 1, 1, []float64{0, 0, 64, 48}, "iscrowd", 1),
			ann(3, 1, 1, []float64{5, 5, 0.5, 10}),
			ann(4, 1, 2, []float64{70, 0, 5, 5}),
			ann(5, 1, 2, []float64{1, 1, 5, 5}, "area", 0),
			ann(6, 1, 2, []float64{1, 1, 5, 5}, "ignore", true),
			ann(7, 1, 2, []float64{50, 40, 14, 8}),
			ann(8, 3, 1, []float64{1, 1, 5, 5}),
			ann(9, 4, 2, []float64{3, 4, 5, 6}),
		},
		"categories": []any{
			map[string]any{"id": 3, "name": "three"},
			map[string]any{"id": 1, "name": "one"},
			map[string]any{"id": 2, "name": "two"},
		},
	}
	sizes := map[string][2]int{"a.png": {64, 48}, "b.png": {64, 48}, "c.png": {20, 20}, "d.png": {64, 48}}
	return doc, sizes
}

func TestCocoDatasetParsesAsMMDet(t *testing.T) {
	doc, sizes := standardCoco()
	root := cocoFixture(t, doc, sizes)
	build := func(extra map[string]any) *CocoDataset {
		node := map[string]any{"type": "mmdet.CocoDataset", "data_root": root, "ann_file": "annotations/instances.json", "img_prefix": "images"}
		for k, v := range extra {
			node[k] = v
		}
		ds, err := Datasets.Build(node, "data.train", nil)
		if err != nil {
			t.Fatal(err)
		}
		return ds.(*CocoDataset)
	}
	test := build(map[string]any{"test_mode": true})
	if !slices.Equal(test.Classes(), []string{"one", "two", "three"}) || !slices.Equal(test.CatIDs(), []int64{1, 2, 3}) {
		t.Fatalf("classes %v cat ids %v, want labels in increasing category id", test.Classes(), test.CatIDs())
	}
	if test.Len() != 4 {
		t.Fatalf("test mode keeps every image, got %d", test.Len())
	}
	if got := AspectFlags(test); !slices.Equal(got, []int{1, 1, 0, 1}) {
		t.Fatalf("aspect flags %v, want [1 1 0 1] (64x48 is wider than tall; 20x20 is not)", got)
	}
	s, err := test.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	want := &Instances{
		BBoxes:       []Box{{10, 5, 30, 15}, {50, 40, 64, 48}},
		Labels:       []int{2, 1},
		BBoxesIgnore: []Box{{0, 0, 64, 48}},
	}
	if !boxesEqual(s.Ann.BBoxes, want.BBoxes) || !slices.Equal(s.Ann.Labels, want.Labels) || !boxesEqual(s.Ann.BBoxesIgnore, want.BBoxesIgnore) {
		t.Fatalf("image 1 annotations %+v, want %+v (crowd ignored; tiny, outside, zero-area and ignore:true dropped)", s.Ann, want)
	}
	if s.ImgInfo.ID != 1 || s.GTLabel != NoLabel || s.ImgPrefix != filepath.Join(root, "images") {
		t.Fatalf("sample info %+v prefix %q", s.ImgInfo, s.ImgPrefix)
	}

	train := build(nil)
	var ids []int64
	for i := range train.Len() {
		ids = append(ids, train.ImageID(i))
	}
	if !slices.Equal(ids, []int64{1, 4}) {
		t.Fatalf("training keeps images %v, want [1 4] (no boxes: 2; under 32 pixels: 3)", ids)
	}
	only := build(map[string]any{"classes": []any{"three", "one"}})
	if only.Len() != 1 || !slices.Equal(only.CatIDs(), []int64{3, 1}) {
		t.Fatalf("classes [three one]: %d images, cat ids %v", only.Len(), only.CatIDs())
	}
	s, _ = only.Get(0)
	if !slices.Equal(s.Ann.Labels, []int{0}) || len(s.Ann.BBoxesIgnore) != 1 {
		t.Fatalf("selected classes relabel: %+v", s.Ann)
	}
	keepEmpty := build(map[string]any{"filter_empty_gt": false})
	if keepEmpty.Len() != 3 {
		t.Fatalf("filter_empty_gt false keeps 3 images (the small one still goes), got %d", keepEmpty.Len())
	}
}

func TestCocoPipeline(t *testing.T) {
	doc, sizes := standardCoco()
	root := cocoFixture(t, doc, sizes)
	pipeline := []any{
		map[string]any{"type": "LoadImageFromFile"},
		map[string]any{"type": "LoadAnnotations", "with_bbox": true},
		map[string]any{"type": "Resize", "img_scale": []any{128, 96}, "keep_ratio": true},
		map[string]any{"type": "RandomFlip", "flip_ratio": 1.0},
		map[string]any{"type": "Normalize", "mean": []any{123.675, 116.28, 103.53}, "std": []any{58.395, 57.12, 57.375}, "to_rgb": true},
		map[string]any{"type": "Pad", "size_divisor": 32},
		map[string]any{"type": "DefaultFormatBundle"},
		map[string]any{"type": "Collect", "keys": []any{"img", "gt_bboxes", "gt_labels", "gt_bboxes_ignore"}},
	}
	ds, err := NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances.json"), ImgPrefix: filepath.Join(root, "images"), FilterEmptyGT: true,
		Pipeline: buildPipeline(t, anyMaps(pipeline)...)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Prepare(ds, 0, testRNG())
	if err != nil {
		t.Fatal(err)
	}
	// 64x48 doubles to 128x96; the flip maps x to 128 - x.
	want := []Box{{68, 10, 108, 30}, {0, 80, 28, 96}}
	if !boxesEqual(s.GT.BBoxes, want) || !boxesEqual(s.GT.BBoxesIgnore, []Box{{0, 0, 128, 96}}) {
		t.Fatalf("boxes %v ignore %v, want %v", s.GT.BBoxes, s.GT.BBoxesIgnore, want)
	}
	if s.Img.Shape() != [3]int{96, 128, 3} || s.ImgShape != [3]int{96, 128, 3} || s.OriShape != [3]int{48, 64, 3} || s.ScaleFactor != [4]float32{2, 2, 2, 2} || !s.Flip {
		t.Fatalf("metas %+v shape %v", s.Meta, s.Img.Shape())
	}
	ann := s.Ann
	if ann.BBoxes[0] != (Box{10, 5, 30, 15}) {
		t.Fatalf("the transforms changed the dataset's annotation: %v", ann.BBoxes)
	}
	again, _ := ds.Get(0)
	if again.Ann.BBoxes[0] != (Box{10, 5, 30, 15}) {
		t.Fatalf("the dataset's annotation changed: %v", again.Ann.BBoxes)
	}
}

func anyMaps(l []any) []map[string]any {
	out := make([]map[string]any, len(l))
	for i, e := range l {
		out[i] = e.(map[string]any)
	}
	return out
}

func TestCocoMalformedAnnotations(t *testing.T) {
	base := func() map[string]any {
		doc, _ := standardCoco()
		return doc
	}
	with := func(key string, v any) map[string]any {
		d := base()
		d[key] = v
		return d
	}
	cases := []struct {
		name      string
		doc       map[string]any
		fragments []string
	}{
		{"three-number bbox", with("annotations", []any{map[string]any{"id": 1, "image_id": 1, "category_id": 1, "bbox": []any{1, 2, 3}, "area": 6}}), []string{"annotations[0] (id 1)", "bbox"}},
		{"bbox of strings", with("annotations", []any{ann(1, 1, 1, []float64{1, 2, 3, 4}), map[string]any{"id": 2, "image_id": 1, "category_id": 1, "bbox": "1 2 3 4", "area": 1}}), []string{"annotations[1]", `"bbox":"1 2 3 4"`, `"bbox" is a JSON string; it must be a list of numbers`}},
		{"no area", with("annotations", []any{map[string]any{"id": 3, "image_id": 1, "category_id": 1, "bbox": []any{1, 2, 3, 4}}}), []string{"annotations[0] (id 3)", "no area"}},
		{"bad iscrowd", with("annotations", []any{ann(3, 1, 1, []float64{1, 2, 3, 4}, "iscrowd", "yes")}), []string{"annotations[0]", "iscrowd"}},
		{"repeated image id", with("images", []any{img(1, "a.png", 64, 48), img(1, "b.png", 64, 48)}), []string{"images[1]", "id 1"}},
		{"image without size", with("images", []any{map[string]any{"id": 1, "file_name": "a.png"}}), []string{"images[0] (id 1, a.png)", "width and height"}},
		{"no categories", with("categories", []any{}), []string{"no categories"}},
		{"no images key", func() map[string]any { d := base(); delete(d, "images"); d["annotations"] = []any{}; return d }(), []string{"has no images", `"images"`, "file_name"}},
		{"repeated category", with("categories", []any{map[string]any{"id": 1, "name": "x"}, map[string]any{"id": 1, "name": "y"}}), []string{"categories[1]", "id 1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := cocoFixture(t, c.doc, nil)
			annFile := filepath.Join(root, "annotations", "instances.json")
			_, err := NewCocoDataset(CocoOptions{AnnFile: annFile, TestMode: true})
			wantErr(t, err, append([]string{annFile}, c.fragments...)...)
		})
	}

	root := t.TempDir()
	bad := filepath.Join(root, "bad.json")
	writeBytes(t, bad, []byte("{\n\"images\": [],\n\"annotations\": [,]\n}"))
	_, err := NewCocoDataset(CocoOptions{AnnFile: bad})
	wantErr(t, err, bad, "line 3", "invalid JSON")

	_, err = NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances_train2017.json")})
	wantErr(t, err, "instances_train2017.json", "does not exist", "data/coco/annotations")

	doc, sizes := standardCoco()
	root = cocoFixture(t, doc, sizes)
	_, err = NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances.json"), ImgPrefix: filepath.Join(root, "train2017")})
	wantErr(t, err, "train2017", "img_prefix", "data/coco/train2017")
	_, err = NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances.json"), Classes: []any{"four"}})
	wantErr(t, err, `"four"`, "one")
}

func TestCocoSkipsBadAnnotationsWithANote(t *testing.T) {
	doc, sizes := standardCoco()
	doc["annotations"] = append(doc["annotations"].([]any),
		ann(10, 4, 1, []float64{30, 20, -5, 10}),
		ann(11, 4, 42, []float64{1, 1, 5, 5}),
		ann(12, 4, 42, []float64{2, 2, 5, 5}),
		ann(13, 99, 1, []float64{1, 1, 5, 5}),
	)
	root := cocoFixture(t, doc, sizes)
	annFile := filepath.Join(root, "annotations", "instances.json")
	ds, err := NewCocoDataset(CocoOptions{AnnFile: annFile, FilterEmptyGT: true})
	if err != nil {
		t.Fatal(err)
	}
	notes := ds.Notes()
	if len(notes) != 3 {
		t.Fatalf("notes %q, want one for bad boxes, one for unknown categories, one for unknown images", notes)
	}
	// Bad: annotations 3 (0.5 wide), 4 (outside the image), 5 (area 0) and
	// 10 (negative width); 6 (ignore: true) is a choice, not a fault.
	wantErr(t, errors.New(notes[0]), annFile, "skipped 4 boxes", "the first: annotations[2] (id 3) of image id 1 (a.png)", "[5 5 0.5 10]")
	wantErr(t, errors.New(notes[1]), "skipped 2 annotations whose category_id is not in categories", "annotations[10] (id 11) of image id 4 (d.png), category_id 42")
	wantErr(t, errors.New(notes[2]), "skipped 1 annotations whose image_id is not in images", "annotations[12] (id 13), image_id 99")
	s, err := ds.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	if s.ImgInfo.ID != 4 || !boxesEqual(s.Ann.BBoxes, []Box{{3, 4, 8, 10}}) || !slices.Equal(s.Ann.Labels, []int{1}) {
		t.Fatalf("image 4 keeps only its good box: %+v %+v", s.ImgInfo, s.Ann)
	}

	clean := doc
	clean["annotations"] = []any{ann(1, 1, 3, []float64{10, 5, 20, 10})}
	root = cocoFixture(t, clean, sizes)
	ds, err = NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances.json"), FilterEmptyGT: true})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Notes() != nil {
		t.Fatalf("a clean file has notes %q", ds.Notes())
	}

	allBad := doc
	allBad["annotations"] = []any{ann(1, 99, 1, []float64{1, 1, 5, 5})}
	root = cocoFixture(t, allBad, sizes)
	_, err = NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances.json"), FilterEmptyGT: true})
	wantErr(t, err, "no images left", "skipped 1 annotations whose image_id is not in images")
}

func TestCocoKeepsImagesWithOnlyUnusableBoxesAsMMDet(t *testing.T) {
	// mmdet's _filter_imgs keeps an image that has an annotation of a
	// selected category even when _parse_ann_info drops it later (a crowd
	// region, a box under a pixel): it trains as background.
	doc := map[string]any{
		"images": []any{img(1, "a.png", 64, 48), img(2, "b.png", 64, 48), img(3, "c.png", 64, 48)},
		"annotations": []any{
			ann(1, 1, 1, []float64{5, 5, 0.5, 10}),
			ann(2, 2, 1, []float64{0, 0, 64, 48}, "iscrowd", 1),
		},
		"categories": []any{map[string]any{"id": 1, "name": "one"}},
	}
	root := cocoFixture(t, doc, nil)
	ds, err := NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances.json"), FilterEmptyGT: true})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 || ds.ImageID(0) != 1 || ds.ImageID(1) != 2 {
		t.Fatalf("kept %d images, want images 1 and 2 (3 has no annotation)", ds.Len())
	}
	s, _ := ds.Get(0)
	if len(s.Ann.BBoxes) != 0 || len(s.Ann.Labels) != 0 {
		t.Fatalf("image 1's only box is under a pixel: %+v", s.Ann)
	}
}

func TestCocoCheckImages(t *testing.T) {
	doc, sizes := standardCoco()
	delete(sizes, "b.png")
	delete(sizes, "d.png")
	root := cocoFixture(t, doc, sizes)
	annFile := filepath.Join(root, "annotations", "instances.json")
	ds, err := NewCocoDataset(CocoOptions{AnnFile: annFile, ImgPrefix: filepath.Join(root, "images"), TestMode: true})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, ds.CheckImages(), "img_prefix "+filepath.Join(root, "images"), "lacks 2 of the 4 images", annFile, "the first: "+filepath.Join(root, "images", "b.png"))
	ds, err = NewCocoDataset(CocoOptions{AnnFile: annFile, TestMode: true})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, ds.CheckImages(), "CocoDataset has no img_prefix", "4 of the 4 images", "set img_prefix")
	doc, sizes = standardCoco()
	root = cocoFixture(t, doc, sizes)
	ds, err = NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances.json"), ImgPrefix: filepath.Join(root, "images"), TestMode: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.CheckImages(); err != nil {
		t.Errorf("every image present: %v", err)
	}
}

func TestCocoCorruptAndMismatchedImages(t *testing.T) {
	doc, sizes := standardCoco()
	root := cocoFixture(t, doc, sizes)
	writeBytes(t, filepath.Join(root, "images", "a.png"), []byte("\x89PNG\r\n\x1a\nbroken"))
	writePNGFile(t, filepath.Join(root, "images", "d.png"), image.NewRGBA(image.Rect(0, 0, 48, 64)))
	ds, err := NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances.json"), ImgPrefix: filepath.Join(root, "images"), TestMode: true,
		Pipeline: buildPipeline(t, map[string]any{"type": "LoadImageFromFile"}, map[string]any{"type": "LoadAnnotations"})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Prepare(ds, 0, testRNG())
	wantErr(t, err, "image id 1 (a.png)", filepath.Join(root, "images", "a.png"), "corrupt")
	_, err = Prepare(ds, 3, testRNG())
	wantErr(t, err, "image id 4 (d.png)", "48x64", "64x48")
}

// TestCocoBatchPadsAsMMCVCollate: a batch of a landscape and a portrait
// image is zero-padded at the bottom and right to the largest height and
// the largest width, with no rounding beyond what Pad did (mmcv's collate
// pads to the maxima), and each image keeps its own img_shape and
// pad_shape.
func TestCocoBatchPadsAsMMCVCollate(t *testing.T) {
	doc := map[string]any{
		"images": []any{img(1, "a.png", 70, 40), img(2, "b.png", 50, 60)},
		"annotations": []any{
			ann(1, 1, 1, []float64{10, 10, 20, 20}),
			ann(2, 2, 1, []float64{5, 5, 10, 10}),
		},
		"categories": []any{map[string]any{"id": 1, "name": "one"}},
	}
	root := cocoFixture(t, doc, map[string][2]int{"a.png": {70, 40}, "b.png": {50, 60}})
	pipeline := func(pad bool) Pipeline {
		nodes := []map[string]any{
			{"type": "LoadImageFromFile"},
			{"type": "LoadAnnotations", "with_bbox": true},
			{"type": "Resize", "img_scale": []any{100, 100}, "keep_ratio": true},
			{"type": "RandomFlip", "flip_ratio": 0.0},
			{"type": "Normalize", "mean": []any{1, 1, 1}, "std": []any{1, 1, 1}, "to_rgb": true},
		}
		if pad {
			nodes = append(nodes, map[string]any{"type": "Pad", "size_divisor": 32})
		}
		nodes = append(nodes, map[string]any{"type": "DefaultFormatBundle"}, map[string]any{"type": "Collect", "keys": []any{"img", "gt_bboxes", "gt_labels"}})
		return buildPipeline(t, nodes...)
	}
	for _, tc := range []struct {
		pad   bool
		shape [4]int
		pads  [2][3]int
	}{
		// 70x40 -> 100x57 (factor 100/70), padded to 128x64; 50x60 ->
		// 83x100 (factor 100/60), padded to 96x128 (w x h).
		{true, [4]int{2, 3, 128, 128}, [2][3]int{{64, 128, 3}, {128, 96, 3}}},
		{false, [4]int{2, 3, 100, 100}, [2][3]int{{57, 100, 3}, {100, 83, 3}}},
	} {
		ds, err := NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances.json"), ImgPrefix: filepath.Join(root, "images"), FilterEmptyGT: true, Pipeline: pipeline(tc.pad)})
		if err != nil {
			t.Fatal(err)
		}
		l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 2, WorldSize: 1})
		b := collect(t, l.Epoch(context.Background(), 0), 1)[0]
		if b.Shape != tc.shape {
			t.Fatalf("pad %v: batch shape %v, want %v", tc.pad, b.Shape, tc.shape)
		}
		if b.Metas[0].ImgShape != [3]int{57, 100, 3} || b.Metas[1].ImgShape != [3]int{100, 83, 3} {
			t.Fatalf("pad %v: img_shapes %v %v", tc.pad, b.Metas[0].ImgShape, b.Metas[1].ImgShape)
		}
		if b.Metas[0].PadShape != tc.pads[0] || b.Metas[1].PadShape != tc.pads[1] {
			t.Fatalf("pad %v: pad_shapes %v %v, want %v (each image its own)", tc.pad, b.Metas[0].PadShape, b.Metas[1].PadShape, tc.pads)
		}
		h, w := b.Shape[2], b.Shape[3]
		for i, m := range b.Metas {
			for c := range 3 {
				plane := b.Img[(i*3+c)*h*w : (i*3+c+1)*h*w]
				for y := range h {
					for x := range w {
						inside := y < m.ImgShape[0] && x < m.ImgShape[1]
						if v := plane[y*w+x]; !inside && v != 0 {
							t.Fatalf("pad %v: image %d channel %d (%d, %d) outside its %v is %v, want 0", tc.pad, i, c, x, y, m.ImgShape, v)
						}
					}
				}
			}
		}
		// Boxes scale by (w, h) factors: 100/70 and 57/40 for image 1.
		sx, sy := float32(100)/float32(70), float32(57)/float32(40)
		if want := (Box{10 * sx, 10 * sy, 30 * sx, 30 * sy}); b.GT[0].BBoxes[0] != want || b.Metas[0].ScaleFactor != [4]float32{sx, sy, sx, sy} {
			t.Fatalf("pad %v: box %v scale %v, want %v", tc.pad, b.GT[0].BBoxes[0], b.Metas[0].ScaleFactor, want)
		}
	}
}

// TestCocoLoaderBadImages: through a loader with workers, a truncated JPEG
// and a missing image each end the epoch with one error naming the file,
// never a crash.
func TestCocoLoaderBadImages(t *testing.T) {
	doc, sizes := standardCoco()
	root := cocoFixture(t, doc, sizes)
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, rgbImage(64, 48), nil); err != nil {
		t.Fatal(err)
	}
	pipeline := buildPipeline(t, map[string]any{"type": "LoadImageFromFile"}, map[string]any{"type": "LoadAnnotations"},
		map[string]any{"type": "DefaultFormatBundle"}, map[string]any{"type": "Collect", "keys": []any{"img", "gt_bboxes", "gt_labels"}})
	for _, tc := range []struct {
		name  string
		spoil func(path string)
		frags []string
	}{
		{"truncated JPEG", func(p string) { writeBytes(t, p, jpg.Bytes()[:jpg.Len()/2]) }, []string{"image id 4 (d.png)", "corrupt"}},
		{"missing", func(p string) { os.Remove(p) }, []string{"image id 4 (d.png)", "does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(root, "images", "d.png")
			writePNGFile(t, path, rgbImage(64, 48))
			tc.spoil(path)
			ds, err := NewCocoDataset(CocoOptions{AnnFile: filepath.Join(root, "annotations", "instances.json"), ImgPrefix: filepath.Join(root, "images"), FilterEmptyGT: true, Pipeline: pipeline})
			if err != nil {
				t.Fatal(err)
			}
			l := newLoader(t, ds, LoaderOptions{SamplesPerGPU: 1, WorkersPerGPU: 2, WorldSize: 1})
			var errs []error
			for _, err := range l.Epoch(context.Background(), 0) {
				if err != nil {
					errs = append(errs, err)
				}
			}
			if len(errs) != 1 {
				t.Fatalf("%d errors, want 1: %v", len(errs), errs)
			}
			wantErr(t, errs[0], append([]string{path}, tc.frags...)...)
		})
	}
}
