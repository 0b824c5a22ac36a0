package datasets

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCOCOCategoriesAreTheRealEighty(t *testing.T) {
	if len(COCOCategories) != 80 {
		t.Fatalf("%d categories, want 80", len(COCOCategories))
	}
	names := map[string]bool{}
	have := map[int64]bool{}
	for i, c := range COCOCategories {
		if i > 0 && c.ID <= COCOCategories[i-1].ID {
			t.Fatalf("category %d (%s) id %d does not increase", i, c.Name, c.ID)
		}
		if names[c.Name] || c.Name == "" || c.Supercategory == "" {
			t.Fatalf("category %d: name %q repeated or empty, supercategory %q", i, c.Name, c.Supercategory)
		}
		names[c.Name] = true
		have[c.ID] = true
	}
	var gaps []int64
	for id := int64(1); id <= 90; id++ {
		if !have[id] {
			gaps = append(gaps, id)
		}
	}
	if want := []int64{12, 26, 29, 30, 45, 66, 68, 69, 71, 83}; !slices.Equal(gaps, want) {
		t.Fatalf("ids 1..90 lack %v, want COCO's gaps %v", gaps, want)
	}
	for _, c := range []CocoCategory{{1, "person", "person"}, {10, "traffic light", "outdoor"}, {72, "tv", "electronic"}, {90, "toothbrush", "indoor"}} {
		i := slices.IndexFunc(COCOCategories, func(d CocoCategory) bool { return d.ID == c.ID })
		if i < 0 || COCOCategories[i] != c {
			t.Fatalf("category id %d is %+v, want %+v", c.ID, COCOCategories[max(i, 0)], c)
		}
	}
}

// readTree maps every file under dir to its bytes.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGenerateCocoTiny(t *testing.T) {
	o := DefaultCocoTinyOptions()
	o.Train, o.Val, o.Seed = 12, 3, 4
	a, b := t.TempDir(), t.TempDir()
	o.Workers = 1
	if err := GenerateCocoTiny(a, o); err != nil {
		t.Fatal(err)
	}
	o.Workers = 4
	if err := GenerateCocoTiny(b, o); err != nil {
		t.Fatal(err)
	}
	ta, tb := readTree(t, a), readTree(t, b)
	if len(ta) != 12+3+2 || len(ta) != len(tb) {
		t.Fatalf("%d and %d files, want 17 (15 images, 2 annotation files)", len(ta), len(tb))
	}
	for name, data := range ta {
		if strings.HasPrefix(filepath.Base(name), ".") {
			t.Fatalf("a temporary file was left: %s", name)
		}
		if !bytes.Equal(data, tb[name]) {
			t.Fatalf("%s differs between 1 and 4 workers", name)
		}
	}
	if _, ok := ta[filepath.Join("train2017", "000000000012.jpg")]; !ok {
		t.Fatalf("no train2017/000000000012.jpg among %d files", len(ta))
	}

	pipeline := buildPipeline(t, map[string]any{"type": "LoadImageFromFile"}, map[string]any{"type": "LoadAnnotations", "with_bbox": true})
	ds, err := NewCocoDataset(CocoOptions{DataRoot: a, AnnFile: CocoTinyLayout.TrainAnn, ImgPrefix: CocoTinyLayout.TrainImages, FilterEmptyGT: true, Pipeline: pipeline})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 12 || len(ds.Notes()) != 0 {
		t.Fatalf("training keeps %d of 12 images, notes %q", ds.Len(), ds.Notes())
	}
	for i, c := range COCOCategories {
		if ds.Classes()[i] != c.Name || ds.CatIDs()[i] != c.ID {
			t.Fatalf("label %d is %q id %d, want %+v", i, ds.Classes()[i], ds.CatIDs()[i], c)
		}
	}
	flags := AspectFlags(ds)
	if !slices.Contains(flags, 0) || !slices.Contains(flags, 1) {
		t.Fatalf("aspect flags %v: want landscape and portrait images", flags)
	}
	crowds := 0
	for i := range ds.Len() {
		s, err := Prepare(ds, i, testRNG())
		if err != nil {
			t.Fatal(err)
		}
		crowds += len(s.GT.BBoxesIgnore)
		if len(s.GT.BBoxes) == 0 {
			t.Fatalf("image %d has no box to train on", i)
		}
		// The last box drawn is fully visible: its centre has its
		// category's colour (BGR in the image), up to JPEG error.
		box, label := s.GT.BBoxes[len(s.GT.BBoxes)-1], s.GT.Labels[len(s.GT.Labels)-1]
		if len(s.GT.BBoxesIgnore) > 0 {
			continue // a crowd region may have been drawn after it
		}
		cx, cy := int(box[0]+box[2])/2, int(box[1]+box[3])/2
		col := categoryColour(label)
		for k := range 3 {
			if got := s.Img.At(cy, cx, 2-k); math.Abs(got-float64(col[k])) > 16 {
				t.Fatalf("image %d: pixel (%d, %d) channel %d is %v, want about %d (%s)", i, cx, cy, k, got, col[k], ds.Classes()[label])
			}
		}
	}
	if crowds == 0 {
		t.Fatal("no crowd region in 12 images; the ignore path goes untested")
	}
}

func TestGenerateCocoTinyErrors(t *testing.T) {
	base := DefaultCocoTinyOptions()
	cases := []struct {
		edit func(*CocoTinyOptions)
		frag string
	}{
		{func(o *CocoTinyOptions) { o.Train = -1 }, "train=-1"},
		{func(o *CocoTinyOptions) { o.MinSide = 16 }, "min side 16"},
		{func(o *CocoTinyOptions) { o.MaxSide = o.MinSide - 1 }, "max side"},
		{func(o *CocoTinyOptions) { o.MaxBoxes = 0 }, "max boxes 0"},
	}
	for _, c := range cases {
		o := base
		c.edit(&o)
		wantErr(t, GenerateCocoTiny(t.TempDir(), o), c.frag)
	}
	file := filepath.Join(t.TempDir(), "file")
	writeBytes(t, file, []byte("x"))
	wantErr(t, GenerateCocoTiny(file, base), "make_coco_tiny", "file")
}
