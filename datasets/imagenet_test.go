package datasets

import (
	"path/filepath"
	"slices"
	"testing"
)

func classificationPipeline() []any {
	return []any{
		map[string]any{"type": "LoadImageFromFile"},
		map[string]any{"type": "Resize", "size": []any{8, -1}},
		map[string]any{"type": "CenterCrop", "crop_size": 8},
		map[string]any{"type": "Normalize", "mean": []any{0, 0, 0}, "std": []any{1, 1, 1}, "to_rgb": true},
		map[string]any{"type": "ImageToTensor", "keys": []any{"img"}},
		map[string]any{"type": "ToTensor", "keys": []any{"gt_label"}},
		map[string]any{"type": "Collect", "keys": []any{"img", "gt_label"}},
	}
}

func TestImageNetFolderLayout(t *testing.T) {
	root := t.TempDir()
	train := filepath.Join(root, "train")
	writePNGFile(t, filepath.Join(train, "n02", "b.png"), rgbImage(12, 10))
	writeJPEGFile(t, filepath.Join(train, "n01", "z.JPEG"), rgbImage(10, 10), 90)
	writePNGFile(t, filepath.Join(train, "n01", "a.png"), rgbImage(10, 16))
	writePNGFile(t, filepath.Join(train, "n01", "sub", "c.png"), rgbImage(10, 10))
	writeBytes(t, filepath.Join(train, "n01", "notes.txt"), []byte("not an image"))

	ds, err := Datasets.Build(map[string]any{"type": "ImageNet", "data_prefix": train, "pipeline": classificationPipeline()}, "data.train", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ds.Classes(), []string{"n01", "n02"}) || ds.Len() != 4 {
		t.Fatalf("classes %v len %d", ds.Classes(), ds.Len())
	}
	var files []string
	var labels []int
	for i := range ds.Len() {
		s, err := ds.Get(i)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, s.ImgInfo.Filename)
		labels = append(labels, s.GTLabel)
	}
	if want := []string{"n01/a.png", "n01/sub/c.png", "n01/z.JPEG", "n02/b.png"}; !slices.Equal(files, want) {
		t.Fatalf("files %v, want %v", files, want)
	}
	if !slices.Equal(labels, []int{0, 0, 0, 1}) {
		t.Fatalf("labels %v", labels)
	}
	s, err := Prepare(ds, 0, testRNG())
	if err != nil {
		t.Fatal(err)
	}
	// a.png is 10x16 (w x h): short side 8 gives 8x12, the centre crop 8x8
	// starts at resized row 2, which samples source row 2.83, where G = y.
	if s.Img.Shape() != [3]int{8, 8, 3} || !s.Img.CHW || s.GTLabel != 0 || s.OriShape != [3]int{16, 10, 3} {
		t.Fatalf("prepared shape %v CHW %v label %d ori %v", s.Img.Shape(), s.Img.CHW, s.GTLabel, s.OriShape)
	}
	if g := s.Img.At(0, 0, 1); g != 3 {
		t.Fatalf("green of the first pixel %v, want 3 (row 2.83 rounded)", g)
	}
	if s.Filename != filepath.Join(train, "n01/a.png") || s.OriFilename != "n01/a.png" {
		t.Fatalf("filename %q ori %q", s.Filename, s.OriFilename)
	}
}

func TestImageNetListLayout(t *testing.T) {
	root := t.TempDir()
	val := filepath.Join(root, "val")
	writePNGFile(t, filepath.Join(val, "v1.png"), rgbImage(8, 8))
	writePNGFile(t, filepath.Join(val, "v 2.png"), rgbImage(8, 8))
	list := filepath.Join(root, "meta", "val.txt")
	writeBytes(t, list, []byte("v1.png 3\n\nv 2.png 0\n"))
	ds, err := NewImageNet(ImageNetOptions{DataPrefix: val, AnnFile: list, Classes: []any{"a", "b", "c", "d"}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ds.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 2 || s.ImgInfo.Filename != "v 2.png" || s.GTLabel != 0 || ds.Classes()[3] != "d" {
		t.Fatalf("len %d sample %q label %d classes %v", ds.Len(), s.ImgInfo.Filename, s.GTLabel, ds.Classes())
	}
	numbered, err := NewImageNet(ImageNetOptions{DataPrefix: val, AnnFile: list})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(numbered.Classes(), []string{"0", "1", "2", "3"}) {
		t.Fatalf("classes without names %v", numbered.Classes())
	}
	names := filepath.Join(root, "names.txt")
	writeBytes(t, names, []byte("tench\ngoldfish\nshark\nray\n"))
	named, err := NewImageNet(ImageNetOptions{DataPrefix: val, AnnFile: list, Classes: names})
	if err != nil {
		t.Fatal(err)
	}
	if named.Classes()[1] != "goldfish" {
		t.Fatalf("classes from file %v", named.Classes())
	}
}

func TestImageNetErrors(t *testing.T) {
	root := t.TempDir()
	val := filepath.Join(root, "val")
	writePNGFile(t, filepath.Join(val, "ok.png"), rgbImage(8, 8))
	writeBytes(t, filepath.Join(val, "broken.png"), []byte("\x89PNG\r\n\x1a\n garbage"))
	list := func(name, content string) string {
		p := filepath.Join(root, name)
		writeBytes(t, p, []byte(content))
		return p
	}
	cases := []struct {
		name      string
		opts      ImageNetOptions
		fragments []string
	}{
		{"missing data", ImageNetOptions{DataPrefix: filepath.Join(root, "imagenet", "train")}, []string{"imagenet/train", "data/imagenet/train/<class folder>"}},
		{"missing list", ImageNetOptions{DataPrefix: val, AnnFile: filepath.Join(root, "meta", "val.txt")}, []string{"meta/val.txt", "does not exist"}},
		{"line without label", ImageNetOptions{DataPrefix: val, AnnFile: list("a.txt", "ok.png 1\nok.png\n")}, []string{"a.txt line 2", "name label"}},
		{"bad label", ImageNetOptions{DataPrefix: val, AnnFile: list("b.txt", "ok.png x\n")}, []string{"b.txt line 1", `label "x"`}},
		{"undecodable extension", ImageNetOptions{DataPrefix: val, AnnFile: list("c.txt", "ok.png 0\nimg.bmp 1\n")}, []string{"c.txt line 2", "img.bmp", "JPEG or PNG"}},
		{"label beyond classes", ImageNetOptions{DataPrefix: val, AnnFile: list("d.txt", "ok.png 5\n"), Classes: []any{"a"}}, []string{"d.txt line 1", "label 5"}},
		{"empty list", ImageNetOptions{DataPrefix: val, AnnFile: list("e.txt", "\n")}, []string{"e.txt", "no images"}},
		{"no class folders", ImageNetOptions{DataPrefix: val}, []string{"no class folders"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewImageNet(c.opts)
			wantErr(t, err, c.fragments...)
		})
	}
	bmpDir := filepath.Join(root, "bmp")
	writeBytes(t, filepath.Join(bmpDir, "cls", "x.bmp"), []byte("BM"))
	_, err := NewImageNet(ImageNetOptions{DataPrefix: bmpDir})
	wantErr(t, err, "x.bmp", "JPEG or PNG")

	// A corrupt image is one error naming the file and the list line.
	p := list("f.txt", "ok.png 0\nbroken.png 1\n")
	ds, err := NewImageNet(ImageNetOptions{DataPrefix: val, AnnFile: p, Pipeline: buildPipeline(t, map[string]any{"type": "LoadImageFromFile"})})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Prepare(ds, 1, testRNG())
	wantErr(t, err, "f.txt line 2", filepath.Join(val, "broken.png"), "corrupt")
}
