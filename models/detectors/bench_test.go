package detectors_test

import (
	"testing"

	"github.com/razorgo/razor/models"
)

// BenchmarkFasterRCNNInference times models.Predict of the DetNAS detector
// on the reference's 1333x800 image (padded to 1344x800) with hashfill
// weights: backbone, FPN, RPN with its NMS, 1000 RoIs through the box head
// and the multiclass NMS, in eval mode. The weights and image are the ones
// scripts/bench/frcnn_torch.py times, so both do the same work, down to
// the same proposals.
func BenchmarkFasterRCNNInference(b *testing.B) {
	ref := loadReference(b, "frcnn_detnas_1333x800.json")
	det := detnasDetector(b, ref)
	in := input(ref)
	res, err := models.Predict(det, in)
	if err != nil {
		b.Fatal(err)
	}
	if n := len(res.Detections[0]); n != ref.Detections.Count {
		b.Fatalf("%d detections, the reference has %d: not the fixture's work", n, ref.Detections.Count)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := models.Predict(det, in); err != nil {
			b.Fatal(err)
		}
	}
}
