package bbox

import "github.com/razorgo/razor/registry"

// The registries of the box machinery. A detector's options struct holds a
// field of one of these types (`AnchorGenerator *bbox.AnchorGenerator
// cfg:"anchor_generator"`) and the registry builds it from the nested
// `type:` mapping. Each holds one mmdet implementation, so the registries
// hold concrete types; a second implementation would turn its registry's
// type into an interface.
var (
	// AnchorGenerators builds `anchor_generator:` (AnchorGenerator).
	AnchorGenerators = registry.New[*AnchorGenerator]("anchor generator")
	// BBoxCoders builds `bbox_coder:` (DeltaXYWHBBoxCoder).
	BBoxCoders = registry.New[*DeltaXYWHBBoxCoder]("bbox coder")
	// IoUCalculators builds an assigner's `iou_calculator:`
	// (BboxOverlaps2D).
	IoUCalculators = registry.New[*BboxOverlaps2D]("iou calculator")
	// Assigners builds `assigner:` (MaxIoUAssigner).
	Assigners = registry.New[*MaxIoUAssigner]("assigner")
	// Samplers builds `sampler:` (RandomSampler).
	Samplers = registry.New[*RandomSampler]("sampler")
	// NMSConfigs builds and checks a test_cfg's `nms:` mapping (nms).
	NMSConfigs = registry.New[NMSOptions]("nms config")
)

func init() {
	registry.MustRegister(AnchorGenerators, "AnchorGenerator", NewAnchorGenerator)
	registry.MustRegister(BBoxCoders, "DeltaXYWHBBoxCoder", NewDeltaXYWHBBoxCoder)
	registry.MustRegister(IoUCalculators, "BboxOverlaps2D", NewBboxOverlaps2D)
	registry.MustRegister(Assigners, "MaxIoUAssigner", NewMaxIoUAssigner)
	registry.MustRegister(Samplers, "RandomSampler", NewRandomSampler)
	registry.MustRegister(NMSConfigs, "nms", newNMSOptions)
}
