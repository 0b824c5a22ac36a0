package datasets

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// readIDX reads an IDX file of unsigned bytes (the MNIST format), gzipped or
// not, and returns its dimensions and data. Errors name the file and say
// what is wrong with it.
func readIDX(path string) ([]int, []uint8, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var r io.Reader = br
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("idx file %s: corrupt gzip stream: %w", path, err)
		}
		defer z.Close()
		r = z
	}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, nil, fmt.Errorf("idx file %s: too short for an IDX header: %w", path, err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, nil, fmt.Errorf("idx file %s: bad magic %x; an IDX file starts with two zero bytes", path, magic)
	}
	if magic[2] != 0x08 {
		return nil, nil, fmt.Errorf("idx file %s: element type 0x%02x is not unsigned byte (0x08)", path, magic[2])
	}
	ndim := int(magic[3])
	if ndim < 1 || ndim > 4 {
		return nil, nil, fmt.Errorf("idx file %s: %d dimensions; MNIST files have 1 (labels) or 3 (images)", path, ndim)
	}
	dims := make([]int, ndim)
	total := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			return nil, nil, fmt.Errorf("idx file %s: truncated header: %w", path, err)
		}
		if d == 0 || d > 1<<26 {
			return nil, nil, fmt.Errorf("idx file %s: dimension %d has implausible size %d", path, i, d)
		}
		dims[i] = int(d)
		total *= int(d)
		if total > 1<<32 {
			return nil, nil, fmt.Errorf("idx file %s: %v elements is implausibly large", path, dims)
		}
	}
	data := make([]uint8, total)
	if n, err := io.ReadFull(r, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("idx file %s: truncated: header promises %v = %d bytes, found %d", path, dims, total, n)
		}
		return nil, nil, fmt.Errorf("idx file %s: %w", path, err)
	}
	return dims, data, nil
}
