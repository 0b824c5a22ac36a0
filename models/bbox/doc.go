// Package bbox holds Faster R-CNN's box machinery outside the gradient, as
// mmdet 2.x (with mmcv 1.x ops) computes it: anchor generation
// (AnchorGenerator), the delta-xywh box coder (DeltaXYWHBBoxCoder), box
// overlaps (Overlaps, AlignedOverlaps, BboxOverlaps2D), the max-IoU
// assigner (MaxIoUAssigner), the random sampler (RandomSampler) and
// non-maximum suppression (NMS, BatchedNMS, MulticlassNMS, NMSOptions).
//
// Boxes are Box values, (x1, y1, x2, y2) in pixels without mmdet 1.x's +1
// convention, and every computation is float32 in the order PyTorch does
// it, so results match the reference bit for bit where the reference is
// deterministic (NMS indices, anchors) and to float32 rounding elsewhere.
//
// The configurable parts are registered under mmdet's type names in the
// registries declared here (AnchorGenerators, BBoxCoders, IoUCalculators,
// Assigners, Samplers, NMSConfigs), so a detector's options struct that
// holds a field of one of these types builds it from its `type:` mapping.
//
// Of razor it imports only registry and config.
package bbox
