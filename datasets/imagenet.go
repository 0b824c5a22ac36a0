package datasets

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/razorgo/razor/registry"
)

// imageExtensions are the file extensions mmcls's folder datasets list.
// Only JPEG and PNG decode; NewImageNet refuses folders with the others
// rather than failing halfway through an epoch.
var imageExtensions = []string{".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif"}

func decodableExtension(ext string) bool {
	switch strings.ToLower(ext) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// ImageNetOptions configure an ImageNet-style dataset (mmcls keys).
type ImageNetOptions struct {
	// DataPrefix is the image folder: for the folder layout, one sub-folder
	// per class (sorted names give labels 0, 1, ...); with AnnFile, the
	// folder the listed names are relative to.
	DataPrefix string `cfg:"data_prefix,required"`
	// AnnFile lists the samples, one `relative/name label` line each, as
	// ImageNet's meta/val.txt does. Empty selects the folder layout.
	AnnFile  string   `cfg:"ann_file"`
	Pipeline Pipeline `cfg:"pipeline"`
	// Classes are the label names: a list, or the path of a file with one
	// name per line. Without it the folder layout uses the folder names and
	// a list file the label numbers.
	Classes  any  `cfg:"classes"`
	TestMode bool `cfg:"test_mode"`
}

// ImageNet is an image classification dataset in the layout ImageNet users
// already have: data/imagenet/train/<class>/<image> for training and
// data/imagenet/val/<image> listed with labels in data/imagenet/meta/val.txt.
type ImageNet struct {
	prefix   string
	files    []string
	labels   []int
	sources  []string
	classes  []string
	pipeline Pipeline
}

const imagenetHint = "put ImageNet there as mmcls expects: data/imagenet/train/<class folder>/*.JPEG for training, data/imagenet/val/*.JPEG with data/imagenet/meta/val.txt (lines `ILSVRC2012_val_00000001.JPEG 65`) for validation, or point data_prefix/ann_file elsewhere"

// NewImageNet lists the samples of the folder or list layout.
func NewImageNet(opts ImageNetOptions) (*ImageNet, error) {
	if !isDir(opts.DataPrefix) {
		return nil, fmt.Errorf("ImageNet data_prefix %s is not an existing folder; %s", opts.DataPrefix, imagenetHint)
	}
	classes, err := resolveClasses(opts.Classes)
	if err != nil {
		return nil, fmt.Errorf("ImageNet classes: %w", err)
	}
	d := &ImageNet{prefix: opts.DataPrefix, pipeline: opts.Pipeline}
	if opts.AnnFile != "" {
		err = d.readList(opts.AnnFile)
	} else {
		err = d.walkFolders()
	}
	if err != nil {
		return nil, err
	}
	maxLabel := slices.Max(d.labels)
	switch {
	case classes != nil:
		if maxLabel >= len(classes) {
			i := slices.Index(d.labels, maxLabel)
			return nil, fmt.Errorf("ImageNet %s: label %d is outside the %d classes given", d.sources[i], maxLabel, len(classes))
		}
		d.classes = classes
	case d.classes == nil:
		for l := 0; l <= maxLabel; l++ {
			d.classes = append(d.classes, strconv.Itoa(l))
		}
	}
	return d, nil
}

func (d *ImageNet) readList(annFile string) error {
	f, err := os.Open(annFile)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ImageNet ann_file %s does not exist; %s", annFile, imagenetHint)
		}
		return fmt.Errorf("ImageNet ann_file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		cut := strings.LastIndexAny(text, " \t")
		if cut < 0 {
			return fmt.Errorf("ImageNet ann_file %s line %d: %q is not `name label`", annFile, line, text)
		}
		name, lbl := strings.TrimSpace(text[:cut]), text[cut+1:]
		label, err := strconv.Atoi(lbl)
		if err != nil || label < 0 {
			return fmt.Errorf("ImageNet ann_file %s line %d: label %q is not a non-negative integer", annFile, line, lbl)
		}
		if !decodableExtension(filepath.Ext(name)) {
			return fmt.Errorf("ImageNet ann_file %s line %d: %s is not a JPEG or PNG file (razor decodes .jpg, .jpeg and .png)", annFile, line, name)
		}
		d.files = append(d.files, name)
		d.labels = append(d.labels, label)
		d.sources = append(d.sources, fmt.Sprintf("ann_file %s line %d", annFile, line))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("ImageNet ann_file %s: %w", annFile, err)
	}
	if len(d.files) == 0 {
		return fmt.Errorf("ImageNet ann_file %s lists no images", annFile)
	}
	return nil
}

func (d *ImageNet) walkFolders() error {
	entries, err := os.ReadDir(d.prefix)
	if err != nil {
		return fmt.Errorf("ImageNet data_prefix: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			d.classes = append(d.classes, e.Name())
		}
	}
	if len(d.classes) == 0 {
		return fmt.Errorf("ImageNet data_prefix %s has no class folders and no ann_file is set; %s", d.prefix, imagenetHint)
	}
	for label, class := range d.classes {
		root := filepath.Join(d.prefix, class)
		err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			ext := filepath.Ext(p)
			if e.IsDir() || !slices.Contains(imageExtensions, strings.ToLower(ext)) {
				return nil
			}
			rel, err := filepath.Rel(d.prefix, p)
			if err != nil {
				return err
			}
			if !decodableExtension(ext) {
				return fmt.Errorf("%s is not a JPEG or PNG file (razor decodes .jpg, .jpeg and .png); convert or remove it", p)
			}
			d.files = append(d.files, filepath.ToSlash(rel))
			d.labels = append(d.labels, label)
			d.sources = append(d.sources, fmt.Sprintf("folder %s entry %s", d.prefix, filepath.ToSlash(rel)))
			return nil
		})
		if err != nil {
			return fmt.Errorf("ImageNet: %w", err)
		}
	}
	if len(d.files) == 0 {
		return fmt.Errorf("ImageNet data_prefix %s: the class folders hold no .jpg, .jpeg or .png files", d.prefix)
	}
	return nil
}

// resolveClasses reads the `classes` option: nil, a list of names, or the
// path of a file with one name per line.
func resolveClasses(v any) ([]string, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case string:
		data, err := os.ReadFile(t)
		if err != nil {
			return nil, fmt.Errorf("reading the class names file: %w", err)
		}
		var out []string
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("class names file %s is empty", t)
		}
		return out, nil
	case []any:
		out := make([]string, len(t))
		for i, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("element %d is %v, not a class name string", i, e)
			}
			out[i] = s
		}
		if len(out) == 0 {
			return nil, errors.New("the list of class names is empty")
		}
		return out, nil
	}
	return nil, fmt.Errorf("%v is neither a list of names nor the path of a names file", v)
}

// Len is the number of images.
func (d *ImageNet) Len() int { return len(d.files) }

// Classes names the labels.
func (d *ImageNet) Classes() []string { return d.classes }

// Pipeline is the configured pipeline.
func (d *ImageNet) Pipeline() Pipeline { return d.pipeline }

// Get returns sample i: the file to load (LoadImageFromFile reads it) and
// its label.
func (d *ImageNet) Get(i int) (Sample, error) {
	if i < 0 || i >= len(d.files) {
		return Sample{}, rangeError("ImageNet", i, len(d.files))
	}
	return Sample{Index: i, Source: "ImageNet " + d.sources[i], ImgPrefix: d.prefix, ImgInfo: ImgInfo{Filename: d.files[i]}, GTLabel: d.labels[i]}, nil
}

func init() {
	registry.MustRegister(Datasets, "ImageNet", func(o ImageNetOptions) (Dataset, error) { return NewImageNet(o) })
}
