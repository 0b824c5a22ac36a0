package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
)

// Image is one entry of a COCO ground-truth "images" list. Evaluation only
// needs the id; every other key of the entry is accepted and disregarded.
type Image struct {
	ID int64
}

// Category is one entry of a COCO ground-truth "categories" list.
type Category struct {
	ID   int64
	Name string
}

// Annotation is one ground-truth box of a COCO "annotations" list.
//
// Area is the file's "area" value (for COCO, the segmentation mask's area),
// not BBox's width times height: pycocotools assigns ground truth to the
// small/medium/large ranges by this field, and so does EvaluateBBox.
// An "ignore" key in the file is disregarded, exactly as pycocotools
// overwrites it with "iscrowd" before evaluating.
type Annotation struct {
	ID         int64
	ImageID    int64
	CategoryID int64
	// BBox is [x, y, width, height] in pixels.
	BBox    [4]float64
	Area    float64
	IsCrowd bool
}

// Detection is one scored box, as in the COCO results format
// ({"image_id", "category_id", "bbox": [x, y, w, h], "score"}).
type Detection struct {
	ImageID    int64
	CategoryID int64
	// BBox is [x, y, width, height] in pixels.
	BBox  [4]float64
	Score float64
}

// GroundTruth is a validated COCO instances ground truth, indexed for
// checking detections. Build it with LoadCOCOGT, ParseCOCOGT or
// NewGroundTruth; EvaluateBBox validates the fields again, so edits made
// after building are checked rather than trusted.
type GroundTruth struct {
	// Source names where the ground truth came from (a file path, or what
	// the caller passed to NewGroundTruth); error messages quote it.
	Source      string
	Images      []Image
	Annotations []Annotation
	Categories  []Category

	imageIndex    map[int64]int
	categoryIndex map[int64]int
}

// NewGroundTruth validates images, annotations and categories and indexes
// them. Ids must be unique within each list, every annotation must name a
// listed image and category, boxes and areas must be finite with
// non-negative width, height and area. source names the data in errors.
func NewGroundTruth(source string, images []Image, annotations []Annotation, categories []Category) (*GroundTruth, error) {
	gt := &GroundTruth{
		Source:        source,
		Images:        images,
		Annotations:   annotations,
		Categories:    categories,
		imageIndex:    make(map[int64]int, len(images)),
		categoryIndex: make(map[int64]int, len(categories)),
	}
	for i, img := range images {
		if first, dup := gt.imageIndex[img.ID]; dup {
			return nil, fmt.Errorf("coco ground truth %q: images[%d] repeats id %d of images[%d]; image ids must be unique", source, i, img.ID, first)
		}
		gt.imageIndex[img.ID] = i
	}
	for i, cat := range categories {
		if first, dup := gt.categoryIndex[cat.ID]; dup {
			return nil, fmt.Errorf("coco ground truth %q: categories[%d] repeats id %d of categories[%d]; category ids must be unique", source, i, cat.ID, first)
		}
		gt.categoryIndex[cat.ID] = i
	}
	annIndex := make(map[int64]int, len(annotations))
	for i, a := range annotations {
		where := fmt.Sprintf("coco ground truth %q: annotations[%d] (id %d)", source, i, a.ID)
		if first, dup := annIndex[a.ID]; dup {
			return nil, fmt.Errorf("%s repeats the id of annotations[%d]; annotation ids must be unique", where, first)
		}
		annIndex[a.ID] = i
		if _, ok := gt.imageIndex[a.ImageID]; !ok {
			return nil, fmt.Errorf("%s has image_id %d, which is not in \"images\"; annotations must name a listed image", where, a.ImageID)
		}
		if _, ok := gt.categoryIndex[a.CategoryID]; !ok {
			return nil, fmt.Errorf("%s has category_id %d, which is not in \"categories\"; annotations must name a listed category", where, a.CategoryID)
		}
		if err := checkBox(a.BBox); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if math.IsNaN(a.Area) || math.IsInf(a.Area, 0) || a.Area < 0 {
			return nil, fmt.Errorf("%s has area %v; area must be a finite number >= 0", where, a.Area)
		}
	}
	return gt, nil
}

// checkBox accepts an [x, y, w, h] box of finite numbers with w, h >= 0.
func checkBox(b [4]float64) error {
	for _, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("bbox %v holds a non-finite number; bbox must be [x, y, w, h] of finite numbers", b)
		}
	}
	if b[2] < 0 || b[3] < 0 {
		return fmt.Errorf("bbox %v has a negative width or height; bbox must be [x, y, w, h] with w, h >= 0", b)
	}
	return nil
}

// checkDetection validates one detection against the ground truth.
func (gt *GroundTruth) checkDetection(d Detection) error {
	if _, ok := gt.imageIndex[d.ImageID]; !ok {
		return fmt.Errorf("image_id %d is not an image of the ground truth %q; results may only name its images", d.ImageID, gt.Source)
	}
	if _, ok := gt.categoryIndex[d.CategoryID]; !ok {
		return fmt.Errorf("category_id %d is not a category of the ground truth %q; results may only name its categories", d.CategoryID, gt.Source)
	}
	if err := checkBox(d.BBox); err != nil {
		return err
	}
	if math.IsNaN(d.Score) || math.IsInf(d.Score, 0) {
		return fmt.Errorf("score %v is not a finite number", d.Score)
	}
	return nil
}

// LoadCOCOGT reads a COCO instances JSON file (keys "images", "annotations"
// and "categories"; others such as "info" or "licenses" are disregarded).
func LoadCOCOGT(path string) (*GroundTruth, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("coco ground truth: %w", err)
	}
	return ParseCOCOGT(data, path)
}

// fileGT is the ground-truth file as decoded; pointers tell a missing key
// from a zero value.
type fileGT struct {
	Images      *[]fileImage      `json:"images"`
	Annotations *[]fileAnnotation `json:"annotations"`
	Categories  *[]fileCategory   `json:"categories"`
}

type fileImage struct {
	ID *int64 `json:"id"`
}

type fileCategory struct {
	ID   *int64 `json:"id"`
	Name string `json:"name"`
}

type fileAnnotation struct {
	ID         *int64          `json:"id"`
	ImageID    *int64          `json:"image_id"`
	CategoryID *int64          `json:"category_id"`
	BBox       []float64       `json:"bbox"`
	Area       *float64        `json:"area"`
	IsCrowd    json.RawMessage `json:"iscrowd"`
}

// ParseCOCOGT decodes a COCO instances JSON document; name is the file name
// that error messages quote.
func ParseCOCOGT(data []byte, name string) (*GroundTruth, error) {
	var f fileGT
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("coco ground truth %q: %s", name, locateJSONError(data, err, []string{"images", "annotations", "categories"}, func(section string, raw json.RawMessage) error {
			switch section {
			case "images":
				return json.Unmarshal(raw, new(fileImage))
			case "annotations":
				return json.Unmarshal(raw, new(fileAnnotation))
			}
			return json.Unmarshal(raw, new(fileCategory))
		}))
	}
	for _, req := range []struct {
		key     string
		present bool
	}{{"images", f.Images != nil}, {"annotations", f.Annotations != nil}, {"categories", f.Categories != nil}} {
		if !req.present {
			return nil, fmt.Errorf("coco ground truth %q: the key %q is missing; a COCO instances file needs \"images\", \"annotations\" and \"categories\" lists", name, req.key)
		}
	}
	images := make([]Image, len(*f.Images))
	for i, img := range *f.Images {
		if img.ID == nil {
			return nil, fmt.Errorf("coco ground truth %q: images[%d] has no \"id\"; every image needs an integer id", name, i)
		}
		images[i] = Image{ID: *img.ID}
	}
	categories := make([]Category, len(*f.Categories))
	for i, c := range *f.Categories {
		if c.ID == nil {
			return nil, fmt.Errorf("coco ground truth %q: categories[%d] has no \"id\"; every category needs an integer id", name, i)
		}
		categories[i] = Category{ID: *c.ID, Name: c.Name}
	}
	annotations := make([]Annotation, len(*f.Annotations))
	for i, a := range *f.Annotations {
		ann, err := a.annotation()
		if err != nil {
			return nil, fmt.Errorf("coco ground truth %q: annotations[%d]: %w", name, i, err)
		}
		annotations[i] = ann
	}
	return NewGroundTruth(name, images, annotations, categories)
}

// annotation checks that every key evaluation reads is present.
func (a fileAnnotation) annotation() (Annotation, error) {
	for _, req := range []struct {
		key     string
		present bool
	}{{"id", a.ID != nil}, {"image_id", a.ImageID != nil}, {"category_id", a.CategoryID != nil}, {"bbox", a.BBox != nil}, {"area", a.Area != nil}} {
		if !req.present {
			return Annotation{}, fmt.Errorf("the key %q is missing; every annotation needs id, image_id, category_id, bbox and area", req.key)
		}
	}
	if len(a.BBox) != 4 {
		return Annotation{}, fmt.Errorf("annotation id %d has a bbox of %d numbers; bbox must be [x, y, w, h]", *a.ID, len(a.BBox))
	}
	crowd, err := parseIsCrowd(a.IsCrowd)
	if err != nil {
		return Annotation{}, fmt.Errorf("annotation id %d: %w", *a.ID, err)
	}
	return Annotation{
		ID:         *a.ID,
		ImageID:    *a.ImageID,
		CategoryID: *a.CategoryID,
		BBox:       [4]float64(a.BBox),
		Area:       *a.Area,
		IsCrowd:    crowd,
	}, nil
}

// parseIsCrowd accepts 0, 1, false or true; a missing key means 0, as in
// mmdet's loader (pycocotools itself would fail on it).
func parseIsCrowd(raw json.RawMessage) (bool, error) {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, fmt.Errorf("iscrowd is %s; it must be 0, 1, false or true", raw)
}

type fileDetection struct {
	ImageID    *int64    `json:"image_id"`
	CategoryID *int64    `json:"category_id"`
	BBox       []float64 `json:"bbox"`
	Score      *float64  `json:"score"`
}

// LoadResults reads a COCO results JSON file (a list of {"image_id",
// "category_id", "bbox", "score"}) and checks every entry against gt.
func LoadResults(path string, gt *GroundTruth) ([]Detection, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("coco results: %w", err)
	}
	return ParseResults(data, path, gt)
}

// ParseResults decodes a COCO results JSON document; name is the file name
// that error messages quote. Every entry must name an image and a category
// of gt and carry a 4-number bbox and a score; no entry is skipped.
func ParseResults(data []byte, name string, gt *GroundTruth) ([]Detection, error) {
	var raw []fileDetection
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("coco results %q: %s", name, locateJSONError(data, err, nil, func(_ string, entry json.RawMessage) error {
			return json.Unmarshal(entry, new(fileDetection))
		}))
	}
	if raw == nil {
		return nil, fmt.Errorf("coco results %q: the document is null; it must be a JSON list of detections", name)
	}
	dets := make([]Detection, len(raw))
	for i, r := range raw {
		for _, req := range []struct {
			key     string
			present bool
		}{{"image_id", r.ImageID != nil}, {"category_id", r.CategoryID != nil}, {"bbox", r.BBox != nil}, {"score", r.Score != nil}} {
			if !req.present {
				return nil, fmt.Errorf("coco results %q: entry %d: the key %q is missing; every result needs image_id, category_id, bbox and score", name, i, req.key)
			}
		}
		if len(r.BBox) != 4 {
			return nil, fmt.Errorf("coco results %q: entry %d has a bbox of %d numbers; bbox must be [x, y, w, h]", name, i, len(r.BBox))
		}
		dets[i] = Detection{ImageID: *r.ImageID, CategoryID: *r.CategoryID, BBox: [4]float64(r.BBox), Score: *r.Score}
		if err := gt.checkDetection(dets[i]); err != nil {
			return nil, fmt.Errorf("coco results %q: entry %d: %w", name, i, err)
		}
	}
	return dets, nil
}

// locateJSONError turns a decoding error into a sentence that says where
// the problem is. Syntax errors get a line and column. Type errors are
// pinned to the list entry that caused them by decoding the entries one by
// one with decodeEntry: sections names the keys of a top-level object whose
// lists are searched, or is nil when the document itself is the list.
func locateJSONError(data []byte, err error, sections []string, decodeEntry func(section string, entry json.RawMessage) error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		// Offset counts the bytes read, the offending one included.
		line, col := lineColumn(data, max(syntax.Offset-1, 0))
		return fmt.Sprintf("malformed JSON at line %d, column %d: %v", line, col, syntax)
	}
	var typ *json.UnmarshalTypeError
	if !errors.As(err, &typ) {
		return err.Error()
	}
	lists := map[string]json.RawMessage{}
	if sections == nil {
		lists[""] = data
	} else {
		var top map[string]json.RawMessage
		if json.Unmarshal(data, &top) != nil {
			return fmt.Sprintf("the document is a JSON %s but must be an object with \"images\", \"annotations\" and \"categories\" lists", typ.Value)
		}
		for _, s := range sections {
			if v, ok := top[s]; ok {
				lists[s] = v
			}
		}
	}
	searched := sections
	if sections == nil {
		searched = []string{""}
	}
	for _, section := range searched {
		list, ok := lists[section]
		if !ok {
			continue
		}
		var entries []json.RawMessage
		if json.Unmarshal(list, &entries) != nil {
			if section == "" {
				return fmt.Sprintf("the document is a JSON %s but must be a list of detections", typ.Value)
			}
			return fmt.Sprintf("%q is not a list of objects", section)
		}
		for i, e := range entries {
			if entryErr := decodeEntry(section, e); entryErr != nil {
				where := fmt.Sprintf("entry %d", i)
				if section != "" {
					where = fmt.Sprintf("%s[%d]", section, i)
				}
				var et *json.UnmarshalTypeError
				if errors.As(entryErr, &et) {
					if et.Field == "" {
						return fmt.Sprintf("%s is a JSON %s but must be an object", where, et.Value)
					}
					return fmt.Sprintf("%s: the key %q holds a JSON %s where %s is expected", where, et.Field, et.Value, goTypeWord(et.Type.Kind().String()))
				}
				return fmt.Sprintf("%s: %v", where, entryErr)
			}
		}
	}
	return err.Error()
}

// goTypeWord names a Go kind in the words of a JSON file's author.
func goTypeWord(kind string) string {
	switch kind {
	case "int64":
		return "an integer"
	case "float64":
		return "a number"
	case "slice":
		return "a list"
	case "string":
		return "a string"
	}
	return "a " + kind
}

// lineColumn converts a byte offset into 1-based line and column numbers.
func lineColumn(data []byte, offset int64) (int, int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:offset] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
