package datasets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/razorgo/razor/registry"
)

// CocoOptions configure a CocoDataset (mmdet keys).
type CocoOptions struct {
	// AnnFile is the COCO instances JSON.
	AnnFile string `cfg:"ann_file,required"`
	// ImgPrefix is the folder the images' file_name values are relative to.
	ImgPrefix string `cfg:"img_prefix"`
	// DataRoot, when set, is joined in front of a relative AnnFile and
	// ImgPrefix.
	DataRoot string   `cfg:"data_root"`
	Pipeline Pipeline `cfg:"pipeline"`
	// Classes selects and orders the categories by name: label i is the
	// category named Classes[i]. Without it every category of the file is a
	// class, labels following increasing category id.
	Classes any `cfg:"classes"`
	// TestMode keeps every image (no filtering), for validation and testing.
	TestMode bool `cfg:"test_mode"`
	// FilterEmptyGT drops, outside test mode, images without an annotation
	// of the selected categories, as mmdet does for training.
	FilterEmptyGT bool `cfg:"filter_empty_gt"`
}

// Defaults sets mmdet's defaults.
func (o *CocoOptions) Defaults() { o.FilterEmptyGT = true }

// minTrainImageSize is mmdet's min_size: training skips images whose shorter
// side is smaller.
const minTrainImageSize = 32

// CocoDataset is a detection dataset in COCO's instances JSON format. Boxes
// become xyxy (x2 = x + w), crowd boxes become boxes to ignore, and boxes
// smaller than one pixel or outside the image are dropped, as mmdet's
// CocoDataset does.
type CocoDataset struct {
	annFile   string
	imgPrefix string
	images    []cocoImage
	anns      []*Instances
	classes   []string
	catIDs    []int64
	pipeline  Pipeline
	notes     []string
}

type cocoFile struct {
	Images      []cocoImage      `json:"images"`
	Annotations []cocoAnnotation `json:"annotations"`
	Categories  []cocoCategory   `json:"categories"`
}

type cocoImage struct {
	ID       *int64 `json:"id"`
	FileName string `json:"file_name"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
}

type cocoAnnotation struct {
	ID         int64     `json:"id"`
	ImageID    *int64    `json:"image_id"`
	CategoryID *int64    `json:"category_id"`
	BBox       []float64 `json:"bbox"`
	Area       *float64  `json:"area"`
	IsCrowd    flag      `json:"iscrowd"`
	Ignore     flag      `json:"ignore"`
}

type cocoCategory struct {
	ID   *int64 `json:"id"`
	Name string `json:"name"`
}

// flag accepts the 0/1 integers COCO writes and the booleans some
// converters write.
type flag bool

// UnmarshalJSON accepts 0, 1, true, false and null.
func (f *flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", "1":
		*f = true
	case "false", "0", "null":
		*f = false
	default:
		return fmt.Errorf("%s is not 0, 1, true or false", b)
	}
	return nil
}

const cocoHint = "put COCO 2017 there as mmdet expects (data/coco/annotations/instances_train2017.json and instances_val2017.json, images in data/coco/train2017 and data/coco/val2017), or point ann_file/img_prefix elsewhere"

// NewCocoDataset reads and checks the annotation file.
func NewCocoDataset(opts CocoOptions) (*CocoDataset, error) {
	return newCocoDataset(opts, "CocoDataset", func(string) string { return cocoHint })
}

// newCocoDataset reads a COCO-format set; name and hint (what makes or
// fetches a missing set, from the annotation file's path) word the errors
// for a missing file or folder.
func newCocoDataset(opts CocoOptions, name string, hint func(annFile string) string) (*CocoDataset, error) {
	annFile, imgPrefix := opts.AnnFile, opts.ImgPrefix
	if opts.DataRoot != "" {
		if !filepath.IsAbs(annFile) {
			annFile = filepath.Join(opts.DataRoot, annFile)
		}
		if imgPrefix != "" && !filepath.IsAbs(imgPrefix) {
			imgPrefix = filepath.Join(opts.DataRoot, imgPrefix)
		}
	}
	data, err := os.ReadFile(annFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s ann_file %s does not exist; %s", name, annFile, hint(annFile))
		}
		return nil, fmt.Errorf("CocoDataset ann_file: %w", err)
	}
	if imgPrefix != "" && !isDir(imgPrefix) {
		return nil, fmt.Errorf("%s img_prefix %s is not an existing folder; %s", name, imgPrefix, hint(annFile))
	}
	file, err := parseCocoFile(annFile, data)
	if err != nil {
		return nil, err
	}
	wanted, err := resolveClasses(opts.Classes)
	if err != nil {
		return nil, fmt.Errorf("CocoDataset classes: %w", err)
	}
	d := &CocoDataset{annFile: annFile, imgPrefix: imgPrefix, pipeline: opts.Pipeline}
	if err := d.index(file, wanted, opts.TestMode, opts.FilterEmptyGT); err != nil {
		return nil, err
	}
	return d, nil
}

// parseCocoFile decodes the JSON; on failure it finds the entry at fault so
// the error names it.
func parseCocoFile(annFile string, data []byte) (*cocoFile, error) {
	var file cocoFile
	err := json.Unmarshal(data, &file)
	if err == nil {
		return &file, nil
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line := 1 + bytes.Count(data[:syn.Offset], []byte{'\n'})
		return nil, fmt.Errorf("CocoDataset ann_file %s: invalid JSON at line %d: %w", annFile, line, err)
	}
	var raw struct {
		Images      []json.RawMessage `json:"images"`
		Annotations []json.RawMessage `json:"annotations"`
		Categories  []json.RawMessage `json:"categories"`
	}
	if rerr := json.Unmarshal(data, &raw); rerr != nil {
		return nil, fmt.Errorf("CocoDataset ann_file %s: images, annotations and categories must be lists: %w", annFile, rerr)
	}
	for i, m := range raw.Images {
		if e := json.Unmarshal(m, new(cocoImage)); e != nil {
			return nil, fmt.Errorf("CocoDataset ann_file %s: images[%d] %s: %w", annFile, i, clip(m), describeJSONError(e))
		}
	}
	for i, m := range raw.Annotations {
		if e := json.Unmarshal(m, new(cocoAnnotation)); e != nil {
			return nil, fmt.Errorf("CocoDataset ann_file %s: annotations[%d] %s: %w", annFile, i, clip(m), describeJSONError(e))
		}
	}
	for i, m := range raw.Categories {
		if e := json.Unmarshal(m, new(cocoCategory)); e != nil {
			return nil, fmt.Errorf("CocoDataset ann_file %s: categories[%d] %s: %w", annFile, i, clip(m), describeJSONError(e))
		}
	}
	return nil, fmt.Errorf("CocoDataset ann_file %s: %w", annFile, err)
}

// describeJSONError says which field has the wrong JSON type in COCO's
// terms instead of Go's.
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	want := "a number"
	switch te.Type.Kind() {
	case reflect.Slice:
		want = "a list of numbers"
	case reflect.String:
		want = "a string"
	case reflect.Bool:
		want = "0, 1, true or false"
	}
	return fmt.Errorf("%q is a JSON %s; it must be %s", te.Field, te.Value, want)
}

// clip shortens a JSON entry for an error message.
func clip(m json.RawMessage) string {
	const n = 120
	if len(m) > n {
		return string(m[:n]) + "..."
	}
	return string(m)
}

// index checks the file's entries and builds the per-image instances.
func (d *CocoDataset) index(file *cocoFile, wanted []string, testMode, filterEmpty bool) error {
	where := "CocoDataset ann_file " + d.annFile
	if len(file.Categories) == 0 {
		return fmt.Errorf("%s has no categories", where)
	}
	catByID := map[int64]string{}
	catByName := map[string]int64{}
	for i, c := range file.Categories {
		if c.ID == nil || c.Name == "" {
			return fmt.Errorf("%s: categories[%d] needs an id and a name", where, i)
		}
		if _, dup := catByID[*c.ID]; dup {
			return fmt.Errorf("%s: categories[%d] repeats category id %d", where, i, *c.ID)
		}
		catByID[*c.ID] = c.Name
		catByName[c.Name] = *c.ID
	}
	if wanted == nil {
		for id := range catByID {
			d.catIDs = append(d.catIDs, id)
		}
		slices.Sort(d.catIDs)
		for _, id := range d.catIDs {
			d.classes = append(d.classes, catByID[id])
		}
	} else {
		for _, name := range wanted {
			id, ok := catByName[name]
			if !ok {
				names := make([]string, 0, len(catByName))
				for n := range catByName {
					names = append(names, n)
				}
				sort.Strings(names)
				return fmt.Errorf("%s: class %q from classes is not a category of the file; its categories are %q", where, name, names)
			}
			d.catIDs = append(d.catIDs, id)
		}
		d.classes = wanted
	}
	cat2label := make(map[int64]int, len(d.catIDs))
	for l, id := range d.catIDs {
		cat2label[id] = l
	}

	if len(file.Images) == 0 {
		return fmt.Errorf("%s has no images; a COCO instances file lists them under \"images\", each with id, file_name, width and height", where)
	}
	imgIndex := make(map[int64]int, len(file.Images))
	for i, im := range file.Images {
		if im.ID == nil {
			return fmt.Errorf("%s: images[%d] has no id", where, i)
		}
		if im.FileName == "" {
			return fmt.Errorf("%s: images[%d] (id %d) has no file_name", where, i, *im.ID)
		}
		if im.Width <= 0 || im.Height <= 0 {
			return fmt.Errorf("%s: images[%d] (id %d, %s) needs positive width and height, has %dx%d", where, i, *im.ID, im.FileName, im.Width, im.Height)
		}
		if j, dup := imgIndex[*im.ID]; dup {
			return fmt.Errorf("%s: images[%d] repeats the id %d of images[%d]", where, i, *im.ID, j)
		}
		imgIndex[*im.ID] = i
	}
	anns := make([]*Instances, len(file.Images))
	for i := range anns {
		anns[i] = &Instances{}
	}
	hasWanted := make([]bool, len(file.Images))
	var badBox, unknownImage, unknownCat dropped
	for i, a := range file.Annotations {
		entry := fmt.Sprintf("annotations[%d] (id %d)", i, a.ID)
		if a.ImageID == nil || a.CategoryID == nil {
			return fmt.Errorf("%s: %s needs image_id and category_id", where, entry)
		}
		if len(a.BBox) != 4 {
			return fmt.Errorf("%s: %s: bbox must be [x, y, width, height], has %d numbers", where, entry, len(a.BBox))
		}
		if a.Area == nil {
			return fmt.Errorf("%s: %s has no area; COCO annotations carry one (the evaluator's small/medium/large ranges use it)", where, entry)
		}
		ii, ok := imgIndex[*a.ImageID]
		if !ok {
			unknownImage.add(fmt.Sprintf("%s, image_id %d", entry, *a.ImageID))
			continue
		}
		im := file.Images[ii]
		if _, ok := catByID[*a.CategoryID]; !ok {
			unknownCat.add(fmt.Sprintf("%s of image id %d (%s), category_id %d", entry, *im.ID, im.FileName, *a.CategoryID))
			continue
		}
		label, selected := cat2label[*a.CategoryID]
		if selected {
			hasWanted[ii] = true
		}
		if bool(a.Ignore) || !selected {
			continue
		}
		x, y, w, h := a.BBox[0], a.BBox[1], a.BBox[2], a.BBox[3]
		interW := max(0, min(x+w, float64(im.Width))-max(x, 0))
		interH := max(0, min(y+h, float64(im.Height))-max(y, 0))
		if interW*interH == 0 || *a.Area <= 0 || w < 1 || h < 1 {
			badBox.add(fmt.Sprintf("%s of image id %d (%s), bbox %v, area %v in a %dx%d image", entry, *im.ID, im.FileName, a.BBox, *a.Area, im.Width, im.Height))
			continue
		}
		box := Box{float32(x), float32(y), float32(x + w), float32(y + h)}
		if a.IsCrowd {
			anns[ii].BBoxesIgnore = append(anns[ii].BBoxesIgnore, box)
		} else {
			anns[ii].BBoxes = append(anns[ii].BBoxes, box)
			anns[ii].Labels = append(anns[ii].Labels, label)
		}
	}
	for _, n := range []string{
		badBox.note(where, "boxes outside their image, narrower or lower than 1 pixel, or of area <= 0"),
		unknownCat.note(where, "annotations whose category_id is not in categories"),
		unknownImage.note(where, "annotations whose image_id is not in images"),
	} {
		if n != "" {
			d.notes = append(d.notes, n)
		}
	}
	for i, im := range file.Images {
		if !testMode {
			if filterEmpty && !hasWanted[i] {
				continue
			}
			if min(im.Width, im.Height) < minTrainImageSize {
				continue
			}
		}
		d.images = append(d.images, im)
		d.anns = append(d.anns, anns[i])
	}
	if len(d.images) == 0 {
		err := fmt.Errorf("%s: no images left (%d in the file; training drops images without boxes of the selected classes and images under %d pixels)", where, len(file.Images), minTrainImageSize)
		if len(d.notes) > 0 {
			err = fmt.Errorf("%w; also %s", err, strings.Join(d.notes, "; "))
		}
		return err
	}
	return nil
}

// dropped counts the annotations of one kind that reading skipped and
// remembers the first, for a note in the run's log.
type dropped struct {
	n     int
	first string
}

func (d *dropped) add(entry string) {
	if d.n == 0 {
		d.first = entry
	}
	d.n++
}

// note is one log line, or "" when nothing was dropped.
func (d *dropped) note(where, what string) string {
	if d.n == 0 {
		return ""
	}
	return fmt.Sprintf("%s: skipped %d %s, as mmdet does (the first: %s)", where, d.n, what, d.first)
}

// Notes are one line per kind of annotation the dataset skipped while
// reading its file (bad boxes, unknown categories or images), counted and
// naming the first, for the run's log. mmdet skips the same annotations
// without a word.
func (d *CocoDataset) Notes() []string { return d.notes }

// Len is the number of images kept.
func (d *CocoDataset) Len() int { return len(d.images) }

// Classes names the labels.
func (d *CocoDataset) Classes() []string { return d.classes }

// Pipeline is the configured pipeline.
func (d *CocoDataset) Pipeline() Pipeline { return d.pipeline }

// AnnFile is the annotation file read (data_root applied).
func (d *CocoDataset) AnnFile() string { return d.annFile }

// CatIDs maps labels to COCO category ids: label i is category CatIDs()[i],
// the id detections are written with in the COCO results format.
func (d *CocoDataset) CatIDs() []int64 { return d.catIDs }

// AspectFlag is sample i's aspect-ratio group, from the annotation file's
// width and height as mmdet sets `flag`: 1 when the image is wider than
// tall, else 0.
func (d *CocoDataset) AspectFlag(i int) int {
	if im := d.images[i]; im.Width > im.Height {
		return 1
	}
	return 0
}

// ImageID is the COCO id of sample i.
func (d *CocoDataset) ImageID(i int) int64 { return *d.images[i].ID }

// CheckImages reports, before a long evaluation starts, images the
// annotation file lists that are not files under img_prefix, naming the
// first and counting the rest.
func (d *CocoDataset) CheckImages() error {
	missing, first := 0, ""
	for _, im := range d.images {
		path := im.FileName
		if d.imgPrefix != "" {
			path = filepath.Join(d.imgPrefix, path)
		}
		if st, err := os.Stat(path); err != nil || st.IsDir() {
			if missing == 0 {
				first = path
			}
			missing++
		}
	}
	if missing == 0 {
		return nil
	}
	if d.imgPrefix == "" {
		return fmt.Errorf("CocoDataset has no img_prefix, and %d of the %d images of ann_file %s are not found from the working folder (the first: %s); set img_prefix to the folder holding its file_name paths", missing, len(d.images), d.annFile, first)
	}
	return fmt.Errorf("CocoDataset img_prefix %s lacks %d of the %d images of ann_file %s (the first: %s); set img_prefix to the folder holding its file_name paths", d.imgPrefix, missing, len(d.images), d.annFile, first)
}

// Get returns sample i: its image file, size and annotations (copied into
// the sample's GT by LoadAnnotations).
func (d *CocoDataset) Get(i int) (Sample, error) {
	if i < 0 || i >= len(d.images) {
		return Sample{}, rangeError("CocoDataset", i, len(d.images))
	}
	im := d.images[i]
	return Sample{
		Index:     i,
		Source:    fmt.Sprintf("CocoDataset %s image id %d (%s)", d.annFile, *im.ID, im.FileName),
		ImgPrefix: d.imgPrefix,
		ImgInfo:   ImgInfo{Filename: im.FileName, Width: im.Width, Height: im.Height, ID: *im.ID},
		Ann:       d.anns[i].Clone(),
		GTLabel:   NoLabel,
	}, nil
}

func init() {
	registry.MustRegister(Datasets, "CocoDataset", func(o CocoOptions) (Dataset, error) { return NewCocoDataset(o) })
}
