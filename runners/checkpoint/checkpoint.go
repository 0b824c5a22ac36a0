// Package checkpoint saves and restores training state, and imports PyTorch
// checkpoints.
//
// # On-disk layout
//
// A checkpoint called NAME in directory DIR is two files:
//
//	DIR/NAME.safetensors  every tensor: the model's state dict under its own
//	                      names (e.g. "backbone.conv1.conv.weight") and the
//	                      optimizer's tensors under "optimizer/" + its key
//	                      (a slash never occurs in a module path)
//	DIR/NAME.json         the meta: format marker, iteration, epoch, config
//	                      text, subnet, optimizer hyper-parameters, RNG states,
//	                      razor version, and the size and SHA-256 of the
//	                      tensors file
//
// Each file is written to a hidden temporary file in DIR (".NAME.*.tmp-*"),
// flushed with fsync and renamed into place, and the directory is synced after
// each rename. The tensors file goes first and the meta file last, so the meta
// file is the commit mark: a save killed at any moment leaves either no meta
// file for NAME (the load refuses and says the save was interrupted), the
// previous NAME intact, or a meta file whose recorded size and hash do not
// match the tensors file (the load refuses). Temporary files are never read.
//
// Of razor it imports only models/nn: it sees weights as named tensors, so
// the runners and the tools load and save through it alike.
package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gorgonia.org/tensor"
)

// FormatName is the value of the "format" field of every meta file this
// package writes.
const FormatName = "razor-checkpoint"

// FormatVersion is the layout version this package writes and reads.
const FormatVersion = 1

// OptimizerPrefix starts the name of every optimizer tensor in the tensors
// file.
const OptimizerPrefix = "optimizer/"

const (
	metaExt    = ".json"
	tensorsExt = ".safetensors"
)

// Checkpoint is one saved training state.
type Checkpoint struct {
	// Model is the model's state dict: parameter and buffer names to tensors
	// (float32 values, int64 counters such as num_batches_tracked).
	Model map[string]*tensor.Dense
	// Optimizer holds the optimizer's tensors under the optimizer's own keys;
	// nil or empty when no optimizer state is saved.
	Optimizer map[string]*tensor.Dense
	// Meta is everything that is not a tensor.
	Meta Meta
}

// Meta is the JSON part of a checkpoint.
type Meta struct {
	// Iteration is the number of training iterations completed.
	Iteration int64 `json:"iteration"`
	// Epoch is the number of training epochs completed.
	Epoch int64 `json:"epoch"`
	// Config is the text of the merged config the run used.
	Config string `json:"config,omitempty"`
	// Subnet maps each searchable block to its chosen op, when the model is a
	// subnet or was trained on a fixed subnet.
	Subnet map[string]string `json:"subnet,omitempty"`
	// Optimizer holds the optimizer's non-tensor state (type, learning
	// rates, groups) as the optimizer encodes it.
	Optimizer json.RawMessage `json:"optimizer,omitempty"`
	// RNG holds the serialized state of each named random source, so a
	// resumed run draws the same numbers an uninterrupted one would.
	RNG map[string][]byte `json:"rng,omitempty"`
	// RazorVersion is the version of the program that wrote the checkpoint.
	RazorVersion string `json:"razor_version,omitempty"`
	// Extra holds anything else a hook wants to keep, by name.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// metaFile is the full content of NAME.json.
type metaFile struct {
	Format        string `json:"format"`
	FormatVersion int    `json:"format_version"`
	TensorsFile   string `json:"tensors_file"`
	TensorsSize   int64  `json:"tensors_size"`
	TensorsSHA256 string `json:"tensors_sha256"`
	Meta
}

// Save writes checkpoint c as DIR/NAME.safetensors and DIR/NAME.json,
// atomically as the package documentation describes, replacing any earlier
// checkpoint of the same name. It returns the path of the meta file, which is
// what Load takes.
func Save(dir, name string, c *Checkpoint) (string, error) {
	steps, cleanup, err := planSave(dir, name, c)
	if err != nil {
		return "", err
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			cleanup()
			return "", fmt.Errorf("save checkpoint %s: %s: %w", filepath.Join(dir, name), s.name, err)
		}
	}
	return filepath.Join(dir, name+metaExt), nil
}

// saveStep is one durable step of a save; a kill between two steps leaves the
// files exactly as the earlier steps made them.
type saveStep struct {
	name string
	run  func() error
}

// planSave validates the checkpoint and returns the steps of its save and a
// cleanup that removes the temporary files a failed save created.
func planSave(dir, name string, c *Checkpoint) ([]saveStep, func(), error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	if c == nil {
		return nil, nil, fmt.Errorf("save checkpoint %s: checkpoint is nil", filepath.Join(dir, name))
	}
	all := make(map[string]*tensor.Dense, len(c.Model)+len(c.Optimizer))
	for k, v := range c.Model {
		if strings.Contains(k, "/") {
			return nil, nil, fmt.Errorf("save checkpoint %s: model key %q contains '/', which is reserved for optimizer tensors", filepath.Join(dir, name), k)
		}
		all[k] = v
	}
	for k, v := range c.Optimizer {
		all[OptimizerPrefix+k] = v
	}

	tensorsPath := filepath.Join(dir, name+tensorsExt)
	metaPath := filepath.Join(dir, name+metaExt)
	var temps []string
	var tmpTensors, tmpMeta string
	var size int64
	var sum []byte

	steps := []saveStep{
		{"write tensors to a temporary file", func() error {
			var err error
			tmpTensors, err = writeTemp(dir, name+tensorsExt, &temps, func(w io.Writer) error {
				h := sha256.New()
				cw := &countingWriter{w: io.MultiWriter(w, h)}
				if err := WriteSafetensors(cw, all, map[string]string{"format": FormatName}); err != nil {
					return err
				}
				size, sum = cw.n, h.Sum(nil)
				return nil
			})
			return err
		}},
		{"rename the tensors file into place", func() error {
			return renameDurably(tmpTensors, tensorsPath)
		}},
		{"write meta to a temporary file", func() error {
			mf := metaFile{
				Format:        FormatName,
				FormatVersion: FormatVersion,
				TensorsFile:   name + tensorsExt,
				TensorsSize:   size,
				TensorsSHA256: hex.EncodeToString(sum),
				Meta:          c.Meta,
			}
			js, err := json.MarshalIndent(mf, "", "  ")
			if err != nil {
				return fmt.Errorf("encode meta: %w", err)
			}
			tmpMeta, err = writeTemp(dir, name+metaExt, &temps, func(w io.Writer) error {
				_, err := w.Write(append(js, '\n'))
				return err
			})
			return err
		}},
		{"rename the meta file into place", func() error {
			return renameDurably(tmpMeta, metaPath)
		}},
	}
	cleanup := func() {
		for _, t := range temps {
			os.Remove(t)
		}
	}
	return steps, cleanup, nil
}

func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("checkpoint name %q must be a plain file name without '/' and not starting with '.'", name)
	}
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeTemp writes a new hidden temporary file in dir through fill, syncs and
// closes it, and records its path in temps so a failed save can remove it.
func writeTemp(dir, final string, temps *[]string, fill func(io.Writer) error) (string, error) {
	f, err := os.CreateTemp(dir, "."+final+".tmp-*")
	if err != nil {
		return "", err
	}
	*temps = append(*temps, f.Name())
	// CreateTemp makes the file private; a checkpoint is as readable as any
	// file the user writes.
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return "", err
	}
	if err := fill(f); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// renameDurably renames from to to and syncs the directory, so the rename
// survives a power loss as well as a kill.
func renameDurably(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(to))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// basePath strips a .json or .safetensors extension, so a checkpoint can be
// named by either of its files or by their common stem.
func basePath(path string) string {
	for _, ext := range []string{metaExt, tensorsExt} {
		if strings.HasSuffix(path, ext) {
			return strings.TrimSuffix(path, ext)
		}
	}
	return path
}

// Load reads the checkpoint at path (DIR/NAME.json, DIR/NAME.safetensors or
// DIR/NAME). It refuses a checkpoint whose save did not complete: a missing
// meta file, a missing or truncated tensors file, or a tensors file whose
// SHA-256 differs from the one the meta file records.
func Load(path string) (*Checkpoint, error) {
	base := basePath(path)
	mf, err := readMeta(base)
	if err != nil {
		return nil, err
	}
	tensorsPath := filepath.Join(filepath.Dir(base), mf.TensorsFile)
	data, err := os.ReadFile(tensorsPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("checkpoint %s is incomplete: its tensors file %s is missing", base+metaExt, tensorsPath)
		}
		return nil, fmt.Errorf("load checkpoint %s: %w", base+metaExt, err)
	}
	if int64(len(data)) != mf.TensorsSize {
		return nil, fmt.Errorf("checkpoint %s is incomplete or corrupt: %s is %d bytes but the meta file records %d", base+metaExt, tensorsPath, len(data), mf.TensorsSize)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != mf.TensorsSHA256 {
		return nil, fmt.Errorf("checkpoint %s is corrupt: %s has SHA-256 %x but the meta file records %s (an interrupted save or a modified file)", base+metaExt, tensorsPath, sum, mf.TensorsSHA256)
	}
	all, _, err := ReadSafetensors(data)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", tensorsPath, err)
	}
	c := &Checkpoint{Model: map[string]*tensor.Dense{}, Meta: mf.Meta}
	for k, v := range all {
		if rest, ok := strings.CutPrefix(k, OptimizerPrefix); ok {
			if c.Optimizer == nil {
				c.Optimizer = map[string]*tensor.Dense{}
			}
			c.Optimizer[rest] = v
			continue
		}
		c.Model[k] = v
	}
	return c, nil
}

// ReadMeta reads only the meta file of the checkpoint at path, for what a
// caller needs before loading the tensors (a resumed run's seed). Load
// still checks the tensors file.
func ReadMeta(path string) (Meta, error) {
	mf, err := readMeta(basePath(path))
	if err != nil {
		return Meta{}, err
	}
	return mf.Meta, nil
}

// readMeta reads and validates DIR/NAME.json for the checkpoint stem base.
func readMeta(base string) (*metaFile, error) {
	metaPath := base + metaExt
	js, err := os.ReadFile(metaPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(base + tensorsExt); serr == nil {
				return nil, fmt.Errorf("checkpoint %s is incomplete: %s exists but its meta file %s does not (the save was interrupted); use an earlier checkpoint", base, base+tensorsExt, metaPath)
			}
			return nil, fmt.Errorf("no checkpoint at %s: %s does not exist", base, metaPath)
		}
		return nil, fmt.Errorf("load checkpoint %s: %w", metaPath, err)
	}
	var mf metaFile
	if err := json.Unmarshal(js, &mf); err != nil {
		return nil, fmt.Errorf("checkpoint meta %s is not valid JSON: %w", metaPath, err)
	}
	if mf.Format != FormatName {
		return nil, fmt.Errorf("%s is not a razor checkpoint: its \"format\" is %q, want %q", metaPath, mf.Format, FormatName)
	}
	if mf.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("checkpoint %s has format_version %d; this program reads version %d", metaPath, mf.FormatVersion, FormatVersion)
	}
	if checkName(strings.TrimSuffix(mf.TensorsFile, tensorsExt)) != nil || !strings.HasSuffix(mf.TensorsFile, tensorsExt) {
		return nil, fmt.Errorf("checkpoint %s names tensors file %q; want a plain NAME.safetensors in the same directory", metaPath, mf.TensorsFile)
	}
	return &mf, nil
}

// Entry describes one checkpoint found by List.
type Entry struct {
	// Path is the checkpoint's meta file, as Load takes it.
	Path string
	// Iteration and Epoch are copied from the meta file.
	Iteration, Epoch int64
}

// List returns the checkpoints in dir whose meta file is a valid razor meta
// file and whose tensors file exists with the recorded size, ordered by
// iteration, then epoch, then path. It skips temporary files and incomplete
// checkpoints; Load still verifies the hash of the one that is chosen.
func List(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints in %s: %w", dir, err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, metaExt) {
			continue
		}
		base := filepath.Join(dir, strings.TrimSuffix(name, metaExt))
		mf, err := readMeta(base)
		if err != nil {
			continue
		}
		st, err := os.Stat(filepath.Join(dir, mf.TensorsFile))
		if err != nil || st.Size() != mf.TensorsSize {
			continue
		}
		out = append(out, Entry{Path: base + metaExt, Iteration: mf.Iteration, Epoch: mf.Epoch})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Iteration != b.Iteration {
			return a.Iteration < b.Iteration
		}
		if a.Epoch != b.Epoch {
			return a.Epoch < b.Epoch
		}
		return a.Path < b.Path
	})
	return out, nil
}

// Latest returns the path of the checkpoint in dir with the highest
// iteration (then epoch), for resuming a run, or an error saying that dir
// holds no complete checkpoint.
func Latest(dir string) (string, error) {
	es, err := List(dir)
	if err != nil {
		return "", err
	}
	if len(es) == 0 {
		return "", fmt.Errorf("no complete checkpoint in %s", dir)
	}
	return es[len(es)-1].Path, nil
}
