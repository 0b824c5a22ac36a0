// Package metrics scores model outputs: top-k classification accuracy and
// COCO bounding-box mean average precision computed exactly as pycocotools'
// COCOeval does for iouType "bbox", so that numbers reported here can be
// compared one to one with numbers reported by mmdet and mmrazor.
//
// It imports no razor package: metrics see plain predictions and
// annotations, so the runners and tools/coco_eval share them.
package metrics
