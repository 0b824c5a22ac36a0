package datasets

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writePNGFile writes img as PNG to path, creating folders.
func writePNGFile(t testing.TB, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	writeBytes(t, path, buf.Bytes())
}

// writeJPEGFile writes img as JPEG (quality q) to path, creating folders.
func writeJPEGFile(t testing.TB, path string, img image.Image, q int) {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	writeBytes(t, path, buf.Bytes())
}

func writeBytes(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rgbImage is a w x h opaque image whose pixel (x, y) is (x, y, x+y) in RGB,
// so every position is recognisable after a transform.
func rgbImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	return img
}

// testImage is an HWC uint8 BGR image whose pixel (x, y) is (x+y, y, x)
// in BGR order, matching rgbImage as LoadImageFromFile would read it.
func testImage(w, h int) Image {
	im := NewImageU8(h, w, 3)
	for y := range h {
		for x := range w {
			o := (y*w + x) * 3
			im.U8[o], im.U8[o+1], im.U8[o+2] = uint8(x+y), uint8(y), uint8(x)
		}
	}
	return im
}

// build builds a transform from a config mapping through the registry.
func build(t testing.TB, node map[string]any) Transform {
	t.Helper()
	tr, err := Transforms.Build(node, "pipeline.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// buildPipeline builds a pipeline from config mappings.
func buildPipeline(t testing.TB, nodes ...map[string]any) Pipeline {
	t.Helper()
	p := make(Pipeline, len(nodes))
	for i, n := range nodes {
		p[i] = build(t, n)
	}
	return p
}

// wantErr fails unless err is non-nil and mentions every fragment.
func wantErr(t testing.TB, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error mentioning %q, got nil", fragments)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q does not mention %q", err, f)
		}
	}
}

func testRNG() *rand.Rand { return SampleRNG(7, 0, 0) }
