// Package datasets reads the data sets razor trains and searches on, turns
// their samples into network inputs through config-built pipelines, and
// batches them with parallel, deterministic loaders.
//
// The vocabulary is OpenMMLab's (mmcv 1.x, mmcls 0.x, mmdet 2.x): a config
// names a dataset by `type` (MNIST, FashionMNIST, ImageNet, CocoDataset) with
// a `pipeline` of transforms, each also named by `type` (LoadImageFromFile,
// RandomResizedCrop, Resize, RandomFlip, Normalize, Pad, DefaultFormatBundle,
// Collect ...), and a loader batches `samples_per_gpu` samples decoded by
// `workers_per_gpu` goroutines. Images travel as HWC arrays in BGR channel
// order, uint8 until a transform makes them float32, exactly as mmcv keeps
// them, so `to_rgb: true` and the published mean/std values mean what they
// mean in mmcv configs. Boxes are xyxy float32 pixel coordinates.
//
// Randomness never comes from a global source: every sample's random
// transforms draw from a generator derived from (seed, epoch, index), so a
// batch is the same whatever the number of workers or their scheduling.
// A detection training loader batches landscape and portrait images apart
// as mmdet's GroupSampler does (LoaderOptions.Groups, AspectFlags), with an
// order that is a function of (seed, epoch) too, so a resumed run sees the
// batches an uninterrupted one would.
//
// The package also generates the shipped detection set (MNIST digits pasted
// onto canvases, written as PNG files and COCO JSON, see GenerateMNISTDet),
// which is read back through the same CocoDataset a real COCO goes through,
// and a tiny COCO look-alike with the real 80 categories (GenerateCocoTiny,
// COCOCategories) for running COCO configs without COCO.
//
// It stands beside the models, not on them: of razor it imports only
// registry and config, so data can be read without building a network.
package datasets
