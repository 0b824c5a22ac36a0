package datasets

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadImageColorTypes(t *testing.T) {
	dir := t.TempDir()
	rgb := filepath.Join(dir, "rgb.png")
	writePNGFile(t, rgb, rgbImage(4, 3))
	gray := image.NewGray(image.Rect(0, 0, 2, 1))
	gray.Pix[0], gray.Pix[1] = 10, 200
	grayPath := filepath.Join(dir, "gray.png")
	writePNGFile(t, grayPath, gray)
	nrgba := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	nrgba.Set(0, 0, color.NRGBA{1, 2, 3, 128})
	alphaPath := filepath.Join(dir, "alpha.png")
	writePNGFile(t, alphaPath, nrgba)

	cases := []struct {
		name  string
		path  string
		ct    ColorType
		shape [3]int
		first []uint8
	}{
		{"rgb as color is BGR", rgb, ColorBGR, [3]int{3, 4, 3}, []uint8{0, 0, 0, 1, 0, 1}},
		{"gray as color replicates", grayPath, ColorBGR, [3]int{1, 2, 3}, []uint8{10, 10, 10, 200, 200, 200}},
		{"gray unchanged keeps one channel", grayPath, Unchanged, [3]int{1, 2, 1}, []uint8{10, 200}},
		{"rgb as grayscale uses cv2 luma", rgb, Grayscale, [3]int{3, 4, 1}, []uint8{0, grayOf(1, 0, 1)}},
		{"alpha unchanged is BGRA", alphaPath, Unchanged, [3]int{1, 1, 4}, []uint8{3, 2, 1, 128}},
		{"alpha as color drops it", alphaPath, ColorBGR, [3]int{1, 1, 3}, []uint8{3, 2, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			im, err := ReadImage(c.path, c.ct)
			if err != nil {
				t.Fatal(err)
			}
			if im.Shape() != c.shape {
				t.Fatalf("shape %v, want %v", im.Shape(), c.shape)
			}
			if !slices.Equal(im.U8[:len(c.first)], c.first) {
				t.Fatalf("pixels %v, want %v", im.U8[:len(c.first)], c.first)
			}
		})
	}
	im, err := ReadImage(rgb, ColorBGR)
	if err != nil {
		t.Fatal(err)
	}
	if b, g, r := im.At(2, 3, 0), im.At(2, 3, 1), im.At(2, 3, 2); b != 5 || g != 2 || r != 3 {
		t.Fatalf("pixel (x=3, y=2) BGR = %v %v %v, want 5 2 3", b, g, r)
	}
}

func TestReadJPEG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flat.jpg")
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = 200, 100, 50, 255
	}
	writeJPEGFile(t, path, img, 95)
	im, err := ReadImage(path, ColorBGR)
	if err != nil {
		t.Fatal(err)
	}
	// A flat colour survives JPEG within a few levels; the order must be BGR.
	for c, want := range []float64{50, 100, 200} {
		if got := im.At(8, 8, c); got < want-4 || got > want+4 {
			t.Fatalf("channel %d = %v, want about %v", c, got, want)
		}
	}
	g, err := ReadImage(path, Grayscale)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.At(8, 8, 0); got < 120 || got > 128 {
		t.Fatalf("luma %v, want about 124 (0.299*200 + 0.587*100 + 0.114*50)", got)
	}
}

func TestReadImageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.png")
	writeBytes(t, bad, []byte("definitely not an image"))
	trunc := filepath.Join(dir, "trunc.png")
	writePNGFile(t, trunc, rgbImage(32, 32))
	data := readFile(t, trunc)
	writeBytes(t, trunc, data[:len(data)/2])

	_, err := ReadImage(bad, ColorBGR)
	wantErr(t, err, bad, "not a JPEG or PNG")
	_, err = ReadImage(trunc, ColorBGR)
	wantErr(t, err, trunc, "corrupt")
	_, err = ReadImage(filepath.Join(dir, "none.png"), ColorBGR)
	wantErr(t, err, "none.png", "does not exist")
	_, err = ReadImage(bad, "anydepth")
	wantErr(t, err, "anydepth", "color")

	// A 1x1 PNG whose header says 100000x100000: refused before decoding
	// allocates 40 GB.
	huge := filepath.Join(dir, "huge.png")
	writePNGFile(t, huge, rgbImage(1, 1))
	data = readFile(t, huge)
	binary.BigEndian.PutUint32(data[16:], 100000)
	binary.BigEndian.PutUint32(data[20:], 100000)
	binary.BigEndian.PutUint32(data[29:], crc32.ChecksumIEEE(data[12:29]))
	writeBytes(t, huge, data)
	_, err = ReadImage(huge, ColorBGR)
	wantErr(t, err, huge, "png image of 100000x100000 pixels is larger than the 67108864 pixels razor decodes")
}

func TestResizeBilinearMatchesCV2(t *testing.T) {
	// PyTorch's bilinear interpolate (align_corners=False), which samples as
	// cv2.INTER_LINEAR does when enlarging, gives these values rounded:
	// pixel centres at +0.5 and replicated edges.
	src := Image{H: 2, W: 2, C: 1, U8: []uint8{0, 100, 200, 255}}
	got := src.Resize(4, 4, Bilinear)
	want := []uint8{
		0, 25, 75, 100,
		50, 72, 117, 139,
		150, 167, 200, 216,
		200, 214, 241, 255,
	}
	if !slices.Equal(got.U8, want) {
		t.Fatalf("bilinear 2x2->4x4 =\n%v\nwant\n%v", got.U8, want)
	}
	f := Image{H: 1, W: 2, C: 1, F32: []float32{0, 1}}.Resize(1, 4, Bilinear)
	if !slices.Equal(f.F32, []float32{0, 0.25, 0.75, 1}) {
		t.Fatalf("float bilinear = %v", f.F32)
	}
	n := src.Resize(4, 4, Nearest)
	if !slices.Equal(n.U8[:4], []uint8{0, 0, 100, 100}) || !slices.Equal(n.U8[12:], []uint8{200, 200, 255, 255}) {
		t.Fatalf("nearest = %v", n.U8)
	}
	down := Image{H: 1, W: 4, C: 1, U8: []uint8{0, 10, 20, 30}}.Resize(1, 2, Bilinear)
	if !slices.Equal(down.U8, []uint8{5, 25}) {
		t.Fatalf("downscale = %v, want [5 25]", down.U8)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestImageGeometry(t *testing.T) {
	im := testImage(4, 3)
	c := im.Crop(1, 1, 2, 2)
	if c.Shape() != [3]int{2, 2, 3} || c.At(0, 0, 2) != 1 || c.At(1, 1, 1) != 2 {
		t.Fatalf("crop: shape %v, (0,0).r %v, (1,1).g %v", c.Shape(), c.At(0, 0, 2), c.At(1, 1, 1))
	}
	for _, tc := range []struct {
		dir        string
		srcY, srcX int
	}{{"horizontal", 0, 3}, {"vertical", 2, 0}, {"diagonal", 2, 3}} {
		f := im.Flip(tc.dir)
		if f.At(0, 0, 0) != im.At(tc.srcY, tc.srcX, 0) || f.At(0, 0, 2) != im.At(tc.srcY, tc.srcX, 2) {
			t.Fatalf("%s flip: (0,0) should come from (%d,%d)", tc.dir, tc.srcY, tc.srcX)
		}
	}
	p := im.Pad(4, 6, 9)
	if p.Shape() != [3]int{4, 6, 3} || p.At(2, 3, 2) != 3 || p.At(3, 0, 0) != 9 || p.At(0, 5, 1) != 9 {
		t.Fatalf("pad: shape %v, values %v %v %v", p.Shape(), p.At(2, 3, 2), p.At(3, 0, 0), p.At(0, 5, 1))
	}
	chw := im.ToCHW()
	for y := range 3 {
		for x := range 4 {
			for k := range 3 {
				if chw.At(y, x, k) != im.At(y, x, k) {
					t.Fatalf("CHW (%d,%d,%d) = %v, want %v", y, x, k, chw.At(y, x, k), im.At(y, x, k))
				}
			}
		}
	}
	if chw.U8[4] != im.U8[3] {
		t.Fatalf("CHW plane 0 holds channel 0 of consecutive pixels: %v", chw.U8[:8])
	}
}

func TestJPEGChromaSubsamplingMatchesGenericConversion(t *testing.T) {
	// Go encodes colour JPEGs 4:2:0; odd sizes exercise the last chroma
	// sample of each row and column.
	path := filepath.Join(t.TempDir(), "odd.jpg")
	writeJPEGFile(t, path, rgbImage(13, 7), 90)
	src, _, err := image.Decode(bytes.NewReader(readFile(t, path)))
	if err != nil {
		t.Fatal(err)
	}
	if ycc, ok := src.(*image.YCbCr); !ok || ycc.SubsampleRatio != image.YCbCrSubsampleRatio420 {
		t.Fatalf("decoded %T, want 4:2:0 YCbCr", src)
	}
	im, err := ReadImage(path, ColorBGR)
	if err != nil {
		t.Fatal(err)
	}
	for y := range 7 {
		for x := range 13 {
			r, g, b, _ := src.At(x, y).RGBA()
			want := []float64{float64(b >> 8), float64(g >> 8), float64(r >> 8)}
			for c := range 3 {
				if got := im.At(y, x, c); got != want[c] {
					t.Fatalf("pixel (%d,%d) channel %d = %v, want %v", x, y, c, got, want[c])
				}
			}
		}
	}
}
