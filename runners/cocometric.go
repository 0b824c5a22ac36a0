package runners

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/razorgo/razor/datasets"
	"github.com/razorgo/razor/datasets/metrics"
	"github.com/razorgo/razor/models"
	"github.com/razorgo/razor/registry"
)

// COCOSource is a dataset read from a COCO instances file (CocoDataset):
// what naming a detector's results as the file does takes -- the file, the
// COCO category id of every label (mmdet's cat_ids, in CLASSES order) and
// the COCO image id of every sample.
type COCOSource interface {
	datasets.Dataset
	AnnFile() string
	CatIDs() []int64
	ImageID(i int) int64
}

// AsCOCOSource returns ds as a COCOSource -- a subset of one (held-out
// samples) included -- or an error saying that what (the bbox metric, COCO
// results) needs a COCO-format dataset.
func AsCOCOSource(ds datasets.Dataset, what string) (COCOSource, error) {
	if sub, ok := ds.(*datasets.Subset); ok {
		if inner, ok := sub.Dataset.(COCOSource); ok {
			return cocoSubset{sub, inner}, nil
		}
	}
	src, ok := ds.(COCOSource)
	if !ok {
		return nil, fmt.Errorf("%s needs a COCO-format dataset (type CocoDataset, with ann_file and img_prefix), and the evaluated dataset is a %T of %d samples", what, ds, ds.Len())
	}
	return src, nil
}

// cocoSubset is a Subset of a COCO-format dataset: its sample i is the
// whole set's sample Indices[i].
type cocoSubset struct {
	*datasets.Subset
	inner COCOSource
}

func (s cocoSubset) AnnFile() string     { return s.inner.AnnFile() }
func (s cocoSubset) CatIDs() []int64     { return s.inner.CatIDs() }
func (s cocoSubset) ImageID(i int) int64 { return s.inner.ImageID(s.Indices[i]) }

// COCOResults collects a detector's results in COCO's results format, as
// mmdet's CocoDataset.format_results writes them: every detection with
// its image's COCO id, its label's category id, its box as x, y, width,
// height and its score.
type COCOResults struct {
	src  COCOSource
	dets []metrics.Detection
}

// NewCOCOResults collects results on ds's samples; what names the user of
// the results in errors.
func NewCOCOResults(ds datasets.Dataset, what string) (*COCOResults, error) {
	src, err := AsCOCOSource(ds, what)
	if err != nil {
		return nil, err
	}
	return &COCOResults{src: src}, nil
}

// Add converts one batch's detections. Within an image they are ordered
// by label, each label's in the model's order, as mmdet's per-class
// result lists put them (pycocotools breaks score ties by that order).
func (c *COCOResults) Add(in *models.Batch, res models.Result) error {
	if res.Detections == nil {
		return fmt.Errorf("the model returned no detections (a classifier?); COCO results and the bbox metric need a detector")
	}
	if len(in.Indices) != len(res.Detections) {
		return fmt.Errorf("the model returned detections for %d images of a batch whose samples are %d (its Indices say which dataset samples they are)", len(res.Detections), len(in.Indices))
	}
	cats := c.src.CatIDs()
	for i, dets := range res.Detections {
		idx := in.Indices[i]
		if idx < 0 || idx >= c.src.Len() {
			return fmt.Errorf("batch sample index %d is outside the dataset's %d samples", idx, c.src.Len())
		}
		imageID := c.src.ImageID(idx)
		sorted := slices.Clone(dets)
		slices.SortStableFunc(sorted, func(a, b models.Detection) int { return a.Label - b.Label })
		for _, d := range sorted {
			if d.Label < 0 || d.Label >= len(cats) {
				return fmt.Errorf("image id %d: a detection has label %d, outside the dataset's %d classes", imageID, d.Label, len(cats))
			}
			// mmdet converts the float32 corners to Python floats before
			// subtracting, so widths are float64 differences too.
			x1, y1 := float64(d.Box[0]), float64(d.Box[1])
			c.dets = append(c.dets, metrics.Detection{
				ImageID:    imageID,
				CategoryID: cats[d.Label],
				BBox:       [4]float64{x1, y1, float64(d.Box[2]) - x1, float64(d.Box[3]) - y1},
				Score:      float64(d.Score),
			})
		}
	}
	return nil
}

// Detections are the results collected so far.
func (c *COCOResults) Detections() []metrics.Detection { return c.dets }

// cocoResult is one entry of the results file, keys in mmdet's order.
type cocoResult struct {
	ImageID    int64      `json:"image_id"`
	BBox       [4]float64 `json:"bbox"`
	Score      float64    `json:"score"`
	CategoryID int64      `json:"category_id"`
}

// JSON is the results file: a list of {image_id, bbox, score,
// category_id}, what tools/coco_eval and pycocotools' loadRes read.
func (c *COCOResults) JSON() ([]byte, error) {
	out := make([]cocoResult, len(c.dets))
	for i, d := range c.dets {
		out[i] = cocoResult{ImageID: d.ImageID, BBox: d.BBox, Score: d.Score, CategoryID: d.CategoryID}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("COCO results: %w", err)
	}
	return append(b, '\n'), nil
}

// BBoxOptions are the keys of the bbox metric: the arguments of mmdet's
// CocoDataset.evaluate.
type BBoxOptions struct {
	// Classwise prints every class's AP in a table after the summary.
	Classwise bool `cfg:"classwise"`
	// ProposalNums are the three per-image detection limits (pycocotools'
	// maxDets). mmdet evaluates bbox with its proposal numbers 100, 300,
	// 1000, so AP at IoU 0.50, 0.75 and per area counts up to 1000
	// detections per image, AP@[.50:.95] up to 100.
	ProposalNums []int `cfg:"proposal_nums"`
	// IoUThrs are the IoU thresholds; unset, 0.50:0.05:0.95.
	IoUThrs []float64 `cfg:"iou_thrs"`
	// MetricItems selects and orders the values reported (mAP, mAP_50,
	// AR@100 ..., without the bbox_ prefix), a name or a list; unset, all
	// twelve.
	MetricItems any `cfg:"metric_items"`
}

// Defaults are mmdet's proposal_nums (100, 300, 1000).
func (o *BBoxOptions) Defaults() { o.ProposalNums = []int{100, 300, 1000} }

// bboxItems names pycocotools' 12 summary numbers as mmdet does, with the
// detection limits in use (AR@100, AR@300, AR@1000, AR_s@1000 ... under
// mmdet's defaults).
func bboxItems(maxDets [3]int) [12]string {
	m := func(i int) string { return strconv.Itoa(maxDets[i]) }
	return [12]string{"mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l",
		"AR@" + m(0), "AR@" + m(1), "AR@" + m(2), "AR_s@" + m(2), "AR_m@" + m(2), "AR_l@" + m(2)}
}

// bboxMetric is mmdet's COCO bbox evaluation: pycocotools' numbers over
// the evaluated dataset's images and classes, as fractions (0.375), named
// bbox_mAP, bbox_mAP_50 ... bbox_AR_l@1000. Unlike mmdet it keeps every
// digit instead of rounding to three, so close candidates still rank.
type bboxMetric struct {
	opts    BBoxOptions
	params  metrics.Params
	items   []int
	names   [12]string
	gt      *metrics.GroundTruth
	classes []string
	results *COCOResults
	report  io.Writer
}

// newBBoxMetric checks the options; Provision reads the dataset.
func newBBoxMetric(o BBoxOptions) (Metric, error) {
	if len(o.ProposalNums) != 3 || o.ProposalNums[0] < 1 || o.ProposalNums[0] >= o.ProposalNums[1] || o.ProposalNums[1] >= o.ProposalNums[2] {
		return nil, fmt.Errorf("proposal_nums must be three positive, strictly ascending detection limits such as [100, 300, 1000], not %v", o.ProposalNums)
	}
	if o.IoUThrs != nil {
		if len(o.IoUThrs) == 0 || len(o.IoUThrs) > 16 {
			return nil, fmt.Errorf("iou_thrs must list 1 to 16 IoU thresholds such as [0.5, 0.75], not %v", o.IoUThrs)
		}
		for _, t := range o.IoUThrs {
			if !(t >= 0 && t <= 1) {
				return nil, fmt.Errorf("iou_thrs %v: every threshold must be between 0 and 1", o.IoUThrs)
			}
		}
	}
	m := &bboxMetric{opts: o, params: metrics.Params{MaxDets: [3]int(o.ProposalNums), IoUThrs: o.IoUThrs}}
	m.names = bboxItems(m.params.MaxDets)
	items, err := m.selectItems(o.MetricItems)
	if err != nil {
		return nil, err
	}
	m.items = items
	return m, nil
}

// selectItems reads metric_items: nil for all twelve, a name or a list.
func (m *bboxMetric) selectItems(v any) ([]int, error) {
	if v == nil {
		return []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, nil
	}
	var names []string
	switch t := v.(type) {
	case string:
		names = []string{t}
	case []any:
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("metric_items must be names such as mAP or [mAP, mAP_50], not %v", v)
			}
			names = append(names, s)
		}
	default:
		return nil, fmt.Errorf("metric_items must be names such as mAP or [mAP, mAP_50], not %v", v)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("metric_items is empty; name at least one of %s", strings.Join(m.names[:], ", "))
	}
	var out []int
	for _, n := range names {
		i := slices.Index(m.names[:], n)
		if i < 0 {
			return nil, fmt.Errorf("metric_items %q is not a COCO number; choose among %s", n, strings.Join(m.names[:], ", "))
		}
		out = append(out, i)
	}
	return out, nil
}

// Provision reads the dataset's annotation file and keeps its ground truth
// for the dataset's images and classes only, as mmdet sets pycocotools'
// imgIds and catIds.
func (m *bboxMetric) Provision(env MetricEnv) error {
	res, err := NewCOCOResults(env.Dataset, "the bbox metric")
	if err != nil {
		return err
	}
	src := res.src
	full, err := metrics.LoadCOCOGT(src.AnnFile())
	if err != nil {
		return err
	}
	imgs := make(map[int64]bool, src.Len())
	for i := range src.Len() {
		imgs[src.ImageID(i)] = true
	}
	cats := make(map[int64]bool, len(src.CatIDs()))
	for _, id := range src.CatIDs() {
		cats[id] = true
	}
	var images []metrics.Image
	for _, im := range full.Images {
		if imgs[im.ID] {
			images = append(images, im)
		}
	}
	var categories []metrics.Category
	for _, c := range full.Categories {
		if cats[c.ID] {
			categories = append(categories, c)
		}
	}
	var anns []metrics.Annotation
	for _, a := range full.Annotations {
		if imgs[a.ImageID] && cats[a.CategoryID] {
			anns = append(anns, a)
		}
	}
	if m.gt, err = metrics.NewGroundTruth(full.Source, images, anns, categories); err != nil {
		return err
	}
	m.results, m.classes, m.report = res, src.Classes(), env.Report
	return nil
}

// Process converts one batch's detections to COCO results.
func (m *bboxMetric) Process(in *models.Batch, res models.Result) error {
	if m.results == nil {
		return fmt.Errorf("the bbox metric was not provisioned with the evaluated dataset")
	}
	if in.Indices == nil {
		return fmt.Errorf("the batch does not say which dataset samples it holds (models.Batch.Indices); the bbox metric needs it to name each image's COCO id")
	}
	return m.results.Add(in, res)
}

// Compute evaluates every result against the ground truth, writes
// pycocotools' summary (and the classwise table) to the report and returns
// the selected numbers.
func (m *bboxMetric) Compute() ([]NamedValue, error) {
	ev, err := metrics.EvaluateBBox(m.gt, m.results.Detections(), m.params)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("Evaluating bbox...\n")
	b.WriteString(ev.Summary())
	if m.opts.Classwise {
		b.WriteString(m.classTable(ev))
	}
	if _, err := io.WriteString(m.report, b.String()); err != nil {
		return nil, err
	}
	stats := ev.Stats()
	out := make([]NamedValue, len(m.items))
	for i, k := range m.items {
		out[i] = NamedValue{Name: "bbox_" + m.names[k], Value: stats[k]}
	}
	return out, nil
}

// classTable is mmdet's classwise table: class names and APs (three
// decimals, nan without ground truth) in CLASSES order, three pairs a row.
func (m *bboxMetric) classTable(ev *metrics.Eval) string {
	ap := map[int64]float64{}
	for _, c := range ev.CategoryAPs() {
		ap[c.CategoryID] = c.AP
	}
	var cells []string
	for l, id := range m.results.src.CatIDs() {
		v := ap[id]
		s := "nan"
		if !math.IsNaN(v) {
			s = fmt.Sprintf("%0.3f", v)
		}
		cells = append(cells, m.classes[l], s)
	}
	cols := min(6, len(cells))
	rows := [][]string{}
	header := []string{}
	for range cols / 2 {
		header = append(header, "category", "AP")
	}
	rows = append(rows, header)
	for i := 0; i < len(cells); i += cols {
		row := make([]string, cols)
		copy(row, cells[i:min(i+cols, len(cells))])
		rows = append(rows, row)
	}
	return asciiTable(rows)
}

// asciiTable draws rows as terminaltables' AsciiTable does: a rule above
// and below the header and at the bottom, cells padded by one space.
func asciiTable(rows [][]string) string {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	rule := func() {
		for _, w := range widths {
			b.WriteString("+" + strings.Repeat("-", w+2))
		}
		b.WriteString("+\n")
	}
	rule()
	for i, r := range rows {
		for j, c := range r {
			fmt.Fprintf(&b, "| %-*s ", widths[j], c)
		}
		b.WriteString("|\n")
		if i == 0 {
			rule()
		}
	}
	rule()
	return b.String()
}

func init() {
	registry.MustRegister(Metrics, "bbox", newBBoxMetric)
}
