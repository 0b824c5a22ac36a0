package datasets

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets of the dataset readers: an annotation file, an MNIST
// idx file and image bytes end with data or one error, never a panic, a
// hang or an allocation the bytes do not justify. Their seeds run with
// the ordinary tests; fuzz one with
// go test -run '^$' -fuzz '^FuzzReadIDX$' -fuzztime 5m ./datasets

func FuzzCocoDataset(f *testing.F) {
	f.Add([]byte(`{"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
 "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 10, 20], "area": 200, "iscrowd": 0},
                 {"id": 2, "image_id": 1, "category_id": 3, "bbox": [60, 40, 10, 20], "area": 200, "iscrowd": 1}],
 "categories": [{"id": 3, "name": "three"}, {"id": 7, "name": "seven"}]}`))
	f.Add([]byte(`{"images": [], "annotations": [], "categories": []}`))
	f.Add([]byte(`{"images": [{"id": 1}], "annotations": [{"image_id": 2, "bbox": [0, 0, -1, 1e309]}]}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "ann.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, testMode := range []bool{false, true} {
			d, err := NewCocoDataset(CocoOptions{AnnFile: p, ImgPrefix: dir, TestMode: testMode, FilterEmptyGT: true})
			if err != nil {
				continue
			}
			for i := range d.Len() {
				_ = d.ImageID(i)
				_ = d.AspectFlag(i)
			}
		}
	})
}

func FuzzReadIDX(f *testing.F) {
	f.Add(idxBytes([]int{2, 2, 3}, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}))
	f.Add(idxBytes([]int{3}, []byte{1, 2, 3}))
	f.Add(idxBytes([]int{1 << 20, 28, 28}, []byte{1}))
	f.Add(gz(idxBytes([]int{4}, []byte{9, 8, 7, 6})))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "x-idx3-ubyte")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		dims, px, err := readIDX(p)
		if err != nil {
			return
		}
		n := 1
		for _, d := range dims {
			n *= d
		}
		if n != len(px) {
			t.Fatalf("dims %v but %d values", dims, len(px))
		}
	})
}

func FuzzDecodeImage(f *testing.F) {
	img := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	var p, j bytes.Buffer
	png.Encode(&p, img)
	jpeg.Encode(&j, img, nil)
	gray := image.NewGray16(image.Rect(0, 0, 2, 2))
	gray.SetGray16(1, 1, color.Gray16{Y: 40000})
	var g bytes.Buffer
	png.Encode(&g, gray)
	f.Add(p.Bytes())
	f.Add(j.Bytes())
	f.Add(g.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ct := range []ColorType{ColorBGR, Grayscale, Unchanged} {
			im, err := DecodeImage(data, ct)
			if err != nil {
				continue
			}
			if im.W <= 0 || im.H <= 0 || len(im.U8) != im.W*im.H*im.C {
				t.Fatalf("%v: image %dx%dx%d with %d bytes", ct, im.W, im.H, im.C, len(im.U8))
			}
		}
	})
}
