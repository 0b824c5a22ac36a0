package datasets

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestLoadImageFromFileOptions(t *testing.T) {
	root := t.TempDir()
	writePNGFile(t, filepath.Join(root, "img", "p.png"), rgbImage(3, 2))
	sample := func() Sample {
		return Sample{ImgPrefix: filepath.Join(root, "img"), ImgInfo: ImgInfo{Filename: "p.png", Width: 3, Height: 2}, GTLabel: NoLabel}
	}
	cases := []struct {
		node  map[string]any
		float bool
		shape [3]int
		pixel []float64 // pixel (x=2, y=1)
	}{
		{map[string]any{}, false, [3]int{2, 3, 3}, []float64{3, 1, 2}},
		{map[string]any{"to_float32": true}, true, [3]int{2, 3, 3}, []float64{3, 1, 2}},
		{map[string]any{"channel_order": "rgb"}, false, [3]int{2, 3, 3}, []float64{2, 1, 3}},
		{map[string]any{"color_type": "grayscale"}, false, [3]int{2, 3, 1}, []float64{float64(grayOf(2, 1, 3))}},
	}
	for _, c := range cases {
		node := map[string]any{"type": "LoadImageFromFile"}
		for k, v := range c.node {
			node[k] = v
		}
		s := sample()
		if err := build(t, node).Apply(&s, testRNG()); err != nil {
			t.Fatal(err)
		}
		var px []float64
		for k := range s.Img.C {
			px = append(px, s.Img.At(1, 2, k))
		}
		if s.Img.IsFloat() != c.float || s.Img.Shape() != c.shape || !slices.Equal(px, c.pixel) {
			t.Fatalf("%v: float %v shape %v pixel %v, want %v %v %v", c.node, s.Img.IsFloat(), s.Img.Shape(), px, c.float, c.shape, c.pixel)
		}
		if s.Filename != filepath.Join(root, "img", "p.png") || s.OriFilename != "p.png" || s.OriShape != c.shape || s.ImgShape != c.shape {
			t.Fatalf("%v: metas %+v", c.node, s.Meta)
		}
	}
}

func TestLoadAnnotations(t *testing.T) {
	ann := &Instances{BBoxes: []Box{{1, 2, 3, 4}}, Labels: []int{5}}
	s := Sample{Ann: ann}
	if err := build(t, map[string]any{"type": "LoadAnnotations", "with_bbox": true}).Apply(&s, testRNG()); err != nil {
		t.Fatal(err)
	}
	if !boxesEqual(s.GT.BBoxes, ann.BBoxes) || !slices.Equal(s.GT.Labels, []int{5}) || s.GT.BBoxesIgnore == nil || len(s.GT.BBoxesIgnore) != 0 {
		t.Fatalf("GT %+v", s.GT)
	}
	s.GT.BBoxes[0][0] = 99
	if ann.BBoxes[0][0] != 1 {
		t.Fatal("GT aliases the dataset's annotation")
	}
	labelsOnly := Sample{Ann: ann}
	if err := build(t, map[string]any{"type": "LoadAnnotations", "with_bbox": false}).Apply(&labelsOnly, testRNG()); err != nil {
		t.Fatal(err)
	}
	if labelsOnly.GT.BBoxes != nil || !slices.Equal(labelsOnly.GT.Labels, []int{5}) {
		t.Fatalf("with_bbox false: %+v", labelsOnly.GT)
	}
}

func TestLoadingAcceptsMMDetKeys(t *testing.T) {
	for _, node := range []map[string]any{
		{"type": "LoadImageFromFile", "file_client_args": map[string]any{"backend": "disk"}},
		{"type": "LoadAnnotations", "with_bbox": true, "poly2mask": false, "denorm_bbox": false, "file_client_args": map[string]any{"backend": "disk"}},
	} {
		if _, err := Transforms.Build(node, "pipeline.0", nil); err != nil {
			t.Errorf("%v: %v", node, err)
		}
	}
	for _, c := range []struct {
		node map[string]any
		frag string
	}{
		{map[string]any{"type": "LoadImageFromFile", "file_client_args": map[string]any{"backend": "petrel"}}, `file_client_args.backend "petrel"`},
		{map[string]any{"type": "LoadAnnotations", "file_client_args": map[string]any{"backend": "http"}}, `file_client_args.backend "http"`},
		{map[string]any{"type": "LoadAnnotations", "denorm_bbox": true}, "denorm_bbox"},
		{map[string]any{"type": "LoadAnnotations", "with_mask": true}, "with_mask"},
	} {
		_, err := Transforms.Build(c.node, "pipeline.0", nil)
		wantErr(t, err, c.frag)
	}
}
