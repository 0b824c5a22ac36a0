package checkpoint

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// checkPthStorages reads a PyTorch checkpoint's pickles (isZip: the zip
// format, else the legacy one, as checkPthHeader found) once without
// building anything, to check that every storage they declare fits in
// the bytes the file holds for it: gopickle allocates a storage of the
// pickle's declared size before reading its data, so a few bytes that
// declare a billion elements would allocate gigabytes. What the scan
// cannot parse it leaves to gopickle, which then fails on the same bytes.
func checkPthStorages(p string, isZip bool) error {
	if isZip {
		return checkZipStorages(p)
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return checkLegacyStorages(f, st.Size())
}

// storageElem is the element size of each storage class torch.save names.
var storageElem = map[string]int64{
	"FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "DoubleStorage": 8, "CharStorage": 1,
	"ShortStorage": 2, "IntStorage": 4, "LongStorage": 8, "ByteStorage": 1, "BoolStorage": 1,
}

// scanStorageClass stands for a storage class in the scan.
type scanStorageClass struct{ elem int64 }

// scanAny stands for every other class in the scan: calling or
// instantiating it gives nothing.
type scanAny struct{}

func (scanAny) Call(...any) (any, error)  { return nil, nil }
func (scanAny) PyNew(...any) (any, error) { return nil, nil }

func scanFindClass(module, name string) (any, error) {
	if module == "torch" {
		if e, ok := storageElem[name]; ok {
			return scanStorageClass{e}, nil
		}
	}
	return scanAny{}, nil
}

// maxStorageElems bounds a declared storage before any size arithmetic.
const maxStorageElems = 1 << 40

// scanStorages unpickles one pickle from r and records, for every
// storage it declares, its key's byte size and element size.
func scanStorages(r io.Reader, bytes, elems map[string]int64) error {
	u := pickle.NewUnpickler(r)
	u.FindClass = scanFindClass
	u.PersistentLoad = func(id any) (any, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() < 5 {
			return nil, nil
		}
		if kind, _ := t.Get(0).(string); kind != "storage" {
			return nil, nil
		}
		cls, ok1 := t.Get(1).(scanStorageClass)
		key, ok2 := t.Get(2).(string)
		size, ok3 := t.Get(4).(int)
		if !ok1 || !ok2 || !ok3 {
			return nil, nil
		}
		if size < 0 || size > maxStorageElems {
			return nil, fmt.Errorf("storage %q declares %d elements", key, size)
		}
		bytes[key] = int64(size) * cls.elem
		elems[key] = cls.elem
		return nil, nil
	}
	_, err := u.Load()
	return err
}

// checkZipStorages checks each storage of data.pkl against its record's
// uncompressed size in the archive.
func checkZipStorages(p string) error {
	r, err := zip.OpenReader(p)
	if err != nil {
		return nil
	}
	defer r.Close()
	records := map[string]*zip.File{}
	for _, f := range r.File {
		records[path.Base(f.Name)] = f
	}
	data, ok := records["data.pkl"]
	if !ok {
		return nil
	}
	lc, err := data.Open()
	if err != nil {
		return nil
	}
	err = checkPickleLengths(bufio.NewReader(lc), 1, int64(data.UncompressedSize64))
	lc.Close()
	if err != nil {
		return err
	}
	rc, err := data.Open()
	if err != nil {
		return nil
	}
	defer rc.Close()
	bytes, elems := map[string]int64{}, map[string]int64{}
	if err := scanStorages(rc, bytes, elems); err != nil {
		return err
	}
	for key, n := range bytes {
		if rec, ok := records[key]; ok && uint64(n) > rec.UncompressedSize64 {
			return fmt.Errorf("storage %q declares %d bytes but the archive holds %d for it", key, n, rec.UncompressedSize64)
		}
	}
	return nil
}

// checkLegacyStorages walks the legacy format -- pickles of the magic
// number, the protocol version, the system info and the object, the list
// of storage keys, then each storage as an 8-byte element count and its
// data -- checking each count against what the file has left.
func checkLegacyStorages(f *os.File, size int64) error {
	// Magic number, protocol, system info, object and storage keys.
	if err := checkPickleLengths(bufio.NewReader(f), 5, size); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	for range 3 { // magic number, protocol version, system info
		u := pickle.NewUnpickler(f)
		if _, err := u.Load(); err != nil {
			return nil
		}
	}
	bytes, elems := map[string]int64{}, map[string]int64{}
	if err := scanStorages(f, bytes, elems); err != nil {
		return err
	}
	ku := pickle.NewUnpickler(f)
	keysObj, err := ku.Load()
	if err != nil {
		return nil
	}
	keys, ok := keysObj.(*types.List)
	if !ok {
		return nil
	}
	for _, k := range *keys {
		key, _ := k.(string)
		var n int64
		if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
			return nil
		}
		pos, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return err
		}
		elem := elems[key]
		if elem == 0 {
			elem = 1
		}
		if n < 0 || n > maxStorageElems || n*elem > size-pos {
			return fmt.Errorf("storage %q declares %d elements but the file has %d bytes left", key, n, size-pos)
		}
		if _, err := f.Seek(n*elem, io.SeekCurrent); err != nil {
			return err
		}
	}
	return nil
}

// checkPickleLengths steps through n consecutive pickles on r, opcode by
// opcode, and refuses an opcode whose length prefix (a string's, bytes',
// a long's or a frame's) exceeds limit, the bytes the file has: gopickle
// allocates the declared length before reading. It stops without error at
// an opcode it does not know, which gopickle then refuses.
func checkPickleLengths(r *bufio.Reader, n int, limit int64) error {
	fixed := map[byte]int{
		'J': 4, 'K': 1, 'M': 2, 'G': 8, 'h': 1, 'j': 4, 'q': 1, 'r': 4, 0x82: 1, 0x83: 2, 0x84: 4, 0x80: 1,
	}
	prefixed := map[byte]int{ // opcode: bytes of its length prefix
		'X': 4, 0x8c: 1, 0x8d: 8, 'B': 4, 'C': 1, 0x8e: 8, 0x96: 8, 'T': 4, 'U': 1, 0x8a: 1, 0x8b: 4, 0x95: 8,
	}
	lines := map[byte]int{'I': 1, 'L': 1, 'S': 1, 'V': 1, 'F': 1, 'c': 2, 'i': 2, 'P': 1, 'g': 1, 'p': 1}
	noArg := "().01234N]ade}lostuRbQ\x85\x86\x87\x88\x89\x81\x8f\x90\x91\x92\x93\x94\x97\x98"
	for n > 0 {
		op, err := r.ReadByte()
		if err != nil {
			return nil
		}
		switch {
		case op == '.':
			n--
		case fixed[op] > 0:
			if _, err := r.Discard(fixed[op]); err != nil {
				return nil
			}
		case prefixed[op] > 0:
			var b [8]byte
			if _, err := io.ReadFull(r, b[:prefixed[op]]); err != nil {
				return nil
			}
			length := binary.LittleEndian.Uint64(b[:])
			if prefixed[op] == 4 && op == 0x8b { // LONG4 is signed
				length = uint64(int64(int32(binary.LittleEndian.Uint32(b[:]))))
			}
			if length > uint64(limit) {
				return fmt.Errorf("a pickled value declares %d bytes, more than the file's %d", length, limit)
			}
			if op == 0x95 { // FRAME: its bytes are opcodes
				continue
			}
			if _, err := r.Discard(int(length)); err != nil {
				return nil
			}
		case lines[op] > 0:
			for range lines[op] {
				if _, err := r.ReadSlice('\n'); err != nil {
					return nil
				}
			}
		case strings.IndexByte(noArg, op) >= 0:
		default:
			return nil
		}
	}
	return nil
}
