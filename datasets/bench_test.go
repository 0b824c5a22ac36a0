package datasets

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"iter"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// benchLoader measures images/s of an endless shuffled loader with 1 and 2
// workers.
func benchLoader(b *testing.B, ds Dataset, batch int) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			l, err := NewLoader(ds, LoaderOptions{SamplesPerGPU: batch, WorkersPerGPU: workers, Shuffle: true, WorldSize: 1, Prefetch: 2})
			if err != nil {
				b.Fatal(err)
			}
			next, stop := iter.Pull2(l.Endless(context.Background(), 0))
			defer stop()
			b.ResetTimer()
			for range b.N {
				if _, err, _ := next(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkLoaderMNIST loads MNIST's training split through mmcls's MNIST
// pipeline (resize to 32, gray to 3 channels, normalize), 128 per batch.
func BenchmarkLoaderMNIST(b *testing.B) {
	ds, err := Datasets.Build(map[string]any{"type": "MNIST", "pipeline": mnistPipeline()}, "data.train", nil)
	if err != nil {
		b.Fatal(err)
	}
	benchLoader(b, ds, 128)
}

// BenchmarkLoaderImageNetJPEG loads a folder of 500x375 JPEGs through the
// ImageNet training pipeline at 224 (RandomResizedCrop, ColorJitter 0.4,
// flip, normalize), 32 per batch.
func BenchmarkLoaderImageNetJPEG(b *testing.B) {
	root := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 32 {
		img := image.NewRGBA(image.Rect(0, 0, 500, 375))
		for y := range 375 {
			for x := range 500 {
				n := rng.IntN(40)
				img.Set(x, y, color.RGBA{uint8(x/2 + n), uint8(y/2 + n), uint8((x + y + i*7) % 256), 255})
			}
		}
		writeJPEGFile(b, filepath.Join(root, fmt.Sprintf("n%02d", i%4), fmt.Sprintf("img_%03d.JPEG", i)), img, 90)
	}
	ds, err := Datasets.Build(map[string]any{"type": "ImageNet", "data_prefix": root, "pipeline": []any{
		map[string]any{"type": "LoadImageFromFile"},
		map[string]any{"type": "RandomResizedCrop", "size": 224},
		map[string]any{"type": "ColorJitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4},
		map[string]any{"type": "RandomFlip", "flip_prob": 0.5, "direction": "horizontal"},
		map[string]any{"type": "Normalize", "mean": []any{123.675, 116.28, 103.53}, "std": []any{58.395, 57.12, 57.375}, "to_rgb": true},
		map[string]any{"type": "ImageToTensor", "keys": []any{"img"}},
		map[string]any{"type": "ToTensor", "keys": []any{"gt_label"}},
		map[string]any{"type": "Collect", "keys": []any{"img", "gt_label"}},
	}}, "data.train", nil)
	if err != nil {
		b.Fatal(err)
	}
	benchLoader(b, ds, 32)
}
