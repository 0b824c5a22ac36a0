package datasets

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/razorgo/razor/config"
)

// The data sections of mmrazor's SPOS (mmcls ImageNet) and DetNAS (mmdet
// COCO) configs, in YAML, pointed at small generated data.
const referenceDataConfigs = `
img_norm_cfg: {mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375], to_rgb: true}
cls:
  samples_per_gpu: 2
  workers_per_gpu: 2
  train:
    type: ImageNet
    data_prefix: %[1]s/imagenet/train
    pipeline:
      - {type: LoadImageFromFile}
      - {type: RandomResizedCrop, size: 224}
      - {type: ColorJitter, brightness: 0.4, contrast: 0.4, saturation: 0.4}
      - {type: RandomFlip, flip_prob: 0.5, direction: horizontal}
      - {type: Normalize, mean: "${ img_norm_cfg.mean }", std: "${ img_norm_cfg.std }", to_rgb: true}
      - {type: ImageToTensor, keys: [img]}
      - {type: ToTensor, keys: [gt_label]}
      - {type: Collect, keys: [img, gt_label]}
  val:
    type: ImageNet
    data_prefix: %[1]s/imagenet/val
    ann_file: %[1]s/imagenet/meta/val.txt
    pipeline:
      - {type: LoadImageFromFile}
      - {type: Resize, size: [256, -1]}
      - {type: CenterCrop, crop_size: 224}
      - {type: Normalize, mean: "${ img_norm_cfg.mean }", std: "${ img_norm_cfg.std }", to_rgb: true}
      - {type: ImageToTensor, keys: [img]}
      - {type: Collect, keys: [img]}
det:
  samples_per_gpu: 2
  workers_per_gpu: 2
  train:
    type: mmdet.CocoDataset
    ann_file: %[1]s/mnist_det/annotations/instances_train.json
    img_prefix: %[1]s/mnist_det/train/
    pipeline:
      - {type: LoadImageFromFile}
      - {type: LoadAnnotations, with_bbox: true}
      - {type: Resize, img_scale: [1333, 800], keep_ratio: true}
      - {type: RandomFlip, flip_ratio: 0.5}
      - {type: Normalize, mean: "${ img_norm_cfg.mean }", std: "${ img_norm_cfg.std }", to_rgb: true}
      - {type: Pad, size_divisor: 32}
      - {type: DefaultFormatBundle}
      - {type: Collect, keys: [img, gt_bboxes, gt_labels]}
  val:
    type: mmdet.CocoDataset
    ann_file: %[1]s/mnist_det/annotations/instances_val.json
    img_prefix: %[1]s/mnist_det/val/
    pipeline:
      - {type: LoadImageFromFile}
      - type: MultiScaleFlipAug
        img_scale: [1333, 800]
        flip: false
        transforms:
          - {type: Resize, keep_ratio: true}
          - {type: RandomFlip}
          - {type: Normalize, mean: "${ img_norm_cfg.mean }", std: "${ img_norm_cfg.std }", to_rgb: true}
          - {type: Pad, size_divisor: 32}
          - {type: ImageToTensor, keys: [img]}
          - {type: Collect, keys: [img]}
`

func TestReferenceDataConfigs(t *testing.T) {
	root := t.TempDir()
	for i := range 4 {
		writeJPEGFile(t, filepath.Join(root, "imagenet", "train", fmt.Sprintf("n%d", i%2), fmt.Sprintf("%d.JPEG", i)), rgbImage(300, 240), 90)
		writeJPEGFile(t, filepath.Join(root, "imagenet", "val", fmt.Sprintf("v%d.JPEG", i)), rgbImage(240, 300), 90)
	}
	writeBytes(t, filepath.Join(root, "imagenet", "meta", "val.txt"), []byte("v0.JPEG 0\nv1.JPEG 1\nv2.JPEG 1\nv3.JPEG 0\n"))
	digits := testDigits(t)
	if err := GenerateMNISTDet(filepath.Join(root, "mnist_det"), digits, digits, MNISTDetOptions{Train: 4, Val: 2, Size: 128, MaxDigits: 3, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(root, "data.yaml")
	writeBytes(t, cfgFile, fmt.Appendf(nil, referenceDataConfigs, root))
	cfg, err := config.Load(cfgFile, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		split string
		shape [4]int
	}{
		{"cls.train", [4]int{2, 3, 224, 224}},
		{"cls.val", [4]int{2, 3, 224, 224}},
		// 128x128 canvases scale to 800x800 and pad to 800 (a multiple of 32).
		{"det.train", [4]int{2, 3, 800, 800}},
		{"det.val", [4]int{2, 3, 800, 800}},
	}
	for _, c := range cases {
		t.Run(c.split, func(t *testing.T) {
			node, _ := cfg.Get(c.split)
			ds, err := Datasets.Build(node, "data."+c.split, map[string]any{"test_mode": c.split[4:] == "val"})
			if err != nil {
				t.Fatal(err)
			}
			var o LoaderOptions
			o.Defaults()
			section := c.split[:3]
			if err := cfg.Decode(section+".samples_per_gpu", &o.SamplesPerGPU); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Decode(section+".workers_per_gpu", &o.WorkersPerGPU); err != nil {
				t.Fatal(err)
			}
			l, err := NewLoader(ds, o)
			if err != nil {
				t.Fatal(err)
			}
			b := collect(t, l.Epoch(context.Background(), 0), 1)[0]
			if b.Shape != c.shape {
				t.Fatalf("batch shape %v, want %v", b.Shape, c.shape)
			}
			switch c.split {
			case "cls.train":
				if len(b.Labels) != 2 {
					t.Fatalf("labels %v", b.Labels)
				}
			case "det.train":
				if len(b.GT) != 2 || len(b.GT[0].BBoxes) == 0 || b.Metas[0].ScaleFactor[0] != 6.25 {
					t.Fatalf("targets %+v, scale factor %v", b.GT, b.Metas[0].ScaleFactor)
				}
			case "det.val":
				if b.GT != nil || b.Metas[0].Flip || b.Metas[0].ImgShape != [3]int{800, 800, 3} {
					t.Fatalf("test batch targets %v metas %+v", b.GT, b.Metas[0])
				}
			}
		})
	}
}
