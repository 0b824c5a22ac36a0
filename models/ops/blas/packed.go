package blas

import (
	"sync"
	"unsafe"
)

// microKernel is one register-tile multiply in assembly (package
// models/ops/internal/simd; models/ops/internal/asmgen/gemm states the
// contract every kernel keeps).
type microKernel struct {
	name   string
	mr, nr int
	lanes  int                                    // floats in one of its vectors
	run    func(k int, a, b, c *float32, ldc int) // C += A·B
	set    func(k int, a, b, c *float32, ldc int) // C = A·B
	// The same reading B unpacked, rows ldb floats apart.
	runStrided, setStrided func(k int, a, b *float32, ldb int, c *float32, ldc int)
}

// Cache blocking around the micro-kernel, as in BLIS and OpenBLAS: a
// blockK-deep slice of op(B), blockN columns wide, is packed once into
// nr-column panels (1.5 MiB at most, read from L2/L3); for it, blockM rows
// of op(A) are packed into mr-row panels (288 KiB, kept in L2), and every
// pair of panels is one micro-kernel call, whose B panel (48 KiB at most)
// stays in L1 while the A panels stream past it. A depth of 384 (BLIS's
// for single precision on AVX-512) against 256 took 10% off a
// 256×4096×2304 product and a 1024×98×1024 one, and 10% off the 1x1
// convolution on 32 images of 7x7 (K = 320 in one block instead of two),
// with no shape slower (paired runs, 41 rounds each).
const (
	blockK = 384
	blockM = 192 // a multiple of every kernel's mr (6, 12)
	blockN = 1024
)

// packBuffers are one goroutine's packing space, reused across calls.
type packBuffers struct {
	a, b   []float32
	tile   []float32 // an edge tile's scratch C
	segs   []seg     // contiguous stretches of an operand (see segments)
	panels []bPanel  // where each panel of a block of op(B) is read
}

var packPool = sync.Pool{New: func() any {
	return &packBuffers{
		a:    make([]float32, blockM*blockK),
		b:    make([]float32, blockK*blockN),
		tile: make([]float32, 12*32),
	}
}}

// operand is a stored row-major matrix seen from an origin: its element
// (r, q), r the row and q the position along the contiguous dimension
// counted from the origin (r0, q0), is d[(r0+r)·ld + q0+q] for a plain
// matrix. With planes set (w > 0), the contiguous dimension is cut into
// planes of w values, s apart: d[(r0+r)·ld + ⌊(q0+q)/w⌋·s + (q0+q) mod w].
// A 1x1 convolution's input over n images is such a matrix: row r is
// channel r, and the plane of image i, h·w pixels, starts i·C·h·w in.
type operand struct {
	d      []float32
	ld     int
	w, s   int
	r0, q0 int
}

// plain is a matrix stored without planes.
func plain(d []float32, ld int) operand { return operand{d: d, ld: ld} }

// at is the index of element (r, q) in o.d.
func (o operand) at(r, q int) int {
	r, q = o.r0+r, o.q0+q
	if o.w == 0 {
		return r*o.ld + q
	}
	return r*o.ld + q/o.w*o.s + q%o.w
}

// seg is a contiguous stretch of an operand's positions: the n positions
// from pos on (counted from where segments started) of row r lie from
// off + r·ld on.
type seg struct{ pos, n, off int }

// segments appends to segs the contiguous stretches that cover positions
// [q, q+n): one for a plain matrix, one per plane touched otherwise. Each
// row's addresses follow by adding r·ld, so callers compute them once for
// all rows instead of dividing by the plane width per row.
func (o operand) segments(q, n int, segs []seg) []seg {
	if o.w == 0 {
		return append(segs, seg{0, n, o.at(0, q)})
	}
	abs := o.q0 + q
	plane, in := abs/o.w, abs%o.w
	base := o.r0 * o.ld
	for pos := 0; pos < n; {
		l := min(n-pos, o.w-in)
		segs = append(segs, seg{pos, l, base + plane*o.s + in})
		pos += l
		plane, in = plane+1, 0
	}
	return segs
}

// shift moves the origin by dr rows and dq positions.
func (o operand) shift(dr, dq int) operand {
	o.r0 += dr
	o.q0 += dq
	return o
}

// opShift moves the origin of op(X) by di rows and dj columns: for a
// transposed X the stored rows are op(X)'s columns.
func (o operand) opShift(trans bool, di, dj int) operand {
	if trans {
		return o.shift(dj, di)
	}
	return o.shift(di, dj)
}

// sgemmPacked is the serial multiply through kernel kn: C = alpha·op(A)·
// op(B) + beta·C with op(A) m×k, op(B) k×n (arguments already checked).
func sgemmPacked(kn *microKernel, transA, transB bool, m, n, k int, alpha float32, a, b operand, beta float32, c operand) {
	if alpha == 0 || k == 0 || m == 0 || n == 0 {
		scaleOperand(m, n, beta, c)
		return
	}
	// With beta 0 the first block of the shared dimension overwrites C
	// (never reading it, so stale NaNs do not leak); otherwise C is scaled
	// once and every block adds to it.
	if beta != 0 {
		scaleOperand(m, n, beta, c)
	}
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	mr, nr := kn.mr, kn.nr
	tile := buf.tile[:mr*nr]
	// The shared dimension in equal blocks: 576 as two of 288, not 384
	// and a short 192, whose tiles would spend longer loading and storing
	// C for each multiply-add.
	kb := (k + blockK - 1) / blockK
	kstep := (k + kb - 1) / kb
	for jc := 0; jc < n; jc += blockN {
		nc := min(blockN, n-jc)
		for pc := 0; pc < k; pc += kstep {
			kc := min(kstep, k-pc)
			// op(B)ᵀ is n×k: its rows run along B's stored rows unless B
			// is stored transposed. Where a panel's nr columns lie
			// contiguous in B's rows, the kernel reads them in place.
			panels := buf.panels[:0]
			for jr := 0; jr < nc; jr += nr {
				cols := min(nr, nc-jr)
				if !transB && cols == nr && directB {
					if sg := b.segments(jc+jr, nr, buf.segs[:0]); len(sg) == 1 {
						buf.segs = sg
						panels = append(panels, bPanel{&b.d[sg[0].off+pc*b.ld], b.ld})
						continue
					}
				}
				pack(b, !transB, 1, jc+jr, cols, pc, kc, nr, buf.b[jr*kc:], &buf.segs)
				panels = append(panels, bPanel{&buf.b[jr*kc], 0})
			}
			buf.panels = panels
			for ic := 0; ic < m; ic += blockM {
				mc := min(blockM, m-ic)
				pack(a, transA, alpha, ic, mc, pc, kc, mr, buf.a, &buf.segs)
				for jr := 0; jr < nc; jr += nr {
					cols := min(nr, nc-jr)
					bp := panels[jr/nr]
					segs := c.segments(jc+jr, cols, buf.segs[:0])
					buf.segs = segs
					whole := cols == nr && len(segs) == 1
					for ir := 0; ir < mc; ir += mr {
						rows := min(mr, mc-ir)
						ap := &buf.a[ir*kc]
						overwrite := pc == 0 && beta == 0
						if rows == mr && whole {
							off := segs[0].off + (ic+ir)*c.ld
							kn.call(overwrite, kc, ap, bp, &c.d[off], c.ld)
							continue
						}
						// An edge tile, or one across two planes of C:
						// through scratch.
						kn.call(true, kc, ap, bp, unsafe.SliceData(tile), nr)
						for r := 0; r < rows; r++ {
							c.scatter(segs, ic+ir+r, tile[r*nr:r*nr+cols], !overwrite)
						}
					}
				}
			}
		}
	}
}

// bPanel is where the kernel reads one panel of op(B): packed (ld 0), or
// in place with rows ld floats apart.
type bPanel struct {
	p  *float32
	ld int
}

// directB turns reading B in place on (benchmarks turn it off to compare).
// Packing copies every value of B to multiply it by m rows; read in place,
// paired runs took 0.64x the time of a 1x1 convolution over 32 images of
// 56x56 at 32 channels, 0.80x at 28x28 and 80 channels, 0.53x for the
// 16×12544×27 product of a stem convolution, and 0.89-0.97x for products
// with 256-1024 rows.
var directB = true

// call runs the kernel on panels ap and bp into the tile at c: overwriting
// it, or adding to it.
func (kn *microKernel) call(overwrite bool, kc int, ap *float32, bp bPanel, c *float32, ldc int) {
	switch {
	case bp.ld == 0 && overwrite:
		kn.set(kc, ap, bp.p, c, ldc)
	case bp.ld == 0:
		kn.run(kc, ap, bp.p, c, ldc)
	case overwrite:
		kn.setStrided(kc, ap, bp.p, bp.ld, c, ldc)
	default:
		kn.runStrided(kc, ap, bp.p, bp.ld, c, ldc)
	}
}

// scatter writes src into row r of the stretches segs of o (adds it when
// add is set); src holds the stretches' positions in turn.
func (o operand) scatter(segs []seg, r int, src []float32, add bool) {
	for _, sg := range segs {
		dst := o.d[sg.off+r*o.ld:][:sg.n]
		from := src[sg.pos : sg.pos+sg.n]
		if add {
			for j, v := range from {
				dst[j] += v
			}
		} else {
			copy(dst, from)
		}
	}
}

// gather copies alpha times row r of the stretches segs of o into dst.
func (o operand) gather(segs []seg, r int, dst []float32, alpha float32) {
	for _, sg := range segs {
		src := o.d[sg.off+r*o.ld:][:sg.n]
		to := dst[sg.pos : sg.pos+sg.n]
		if alpha == 1 {
			copy(to, src)
		} else {
			for j, v := range src {
				to[j] = alpha * v
			}
		}
	}
}

// scaleOperand applies beta to the m×n matrix o; beta 0 clears it without
// reading it.
func scaleOperand(m, n int, beta float32, o operand) {
	if beta == 1 {
		return
	}
	segs := o.segments(0, n, nil)
	for i := 0; i < m; i++ {
		for _, sg := range segs {
			row := o.d[sg.off+i*o.ld:][:sg.n]
			if beta == 0 {
				clear(row)
				continue
			}
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// scaleC applies beta to the m×n matrix C; beta 0 clears it without
// reading it.
func scaleC[T Float](m, n int, beta T, c []T, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// pack copies alpha·X[x0:x0+nx, p0:p0+kc] of the matrix X = op(A) (or
// op(B)ᵀ) into width-wide panels: panel t holds rows x0+t·width.. as kc
// steps of width values, the rows past nx zero. X's element (x, p) is
// o's element (p, x) when across is set (X's rows run along o's
// contiguous dimension), else (x, p). segs is scratch for the stretches.
func pack(o operand, across bool, alpha float32, x0, nx, p0, kc, width int, dst []float32, segs *[]seg) {
	for xr := 0; xr < nx; xr += width {
		rows := min(width, nx-xr)
		panel := dst[xr*kc : xr*kc+width*kc]
		if across {
			// Each step's rows are contiguous (within a plane).
			sg := o.segments(x0+xr, rows, (*segs)[:0])
			*segs = sg
			for p := 0; p < kc; p++ {
				out := panel[p*width : p*width+width]
				o.gather(sg, p0+p, out, alpha)
				clear(out[rows:])
			}
			continue
		}
		// Each row's steps are contiguous (within a plane), so the panel
		// is their transpose, a plane's stretch at a time.
		sg := o.segments(p0, kc, (*segs)[:0])
		*segs = sg
		for _, s := range sg {
			off := s.off + (x0+xr)*o.ld
			if alpha == 1 {
				packTransposed(o.d, off, o.ld, rows, s.n, panel[s.pos*width:], width)
				continue
			}
			for r := 0; r < rows; r++ {
				for p, v := range o.d[off+r*o.ld:][:s.n] {
					panel[(s.pos+p)*width+r] = alpha * v
				}
			}
		}
		for r := rows; r < width; r++ {
			for p := 0; p < kc; p++ {
				panel[p*width+r] = 0
			}
		}
	}
}

// packTransposed writes the transpose of rows×kc values (row q's at
// src[off+q*ld:]) into a panel whose steps are width floats apart: value p
// of row q goes to panel[p*width+q]. Where the assembly loops run, groups
// of 8 or 4 rows go a vector of steps at a time; the rest goes in Go.
func packTransposed(src []float32, off, ld, rows, kc int, panel []float32, width int) {
	_ = src[off+(rows-1)*ld+kc-1]
	_ = panel[(kc-1)*width+rows-1]
	r := 0
	if packT8 != nil {
		for _, g := range [...]struct {
			rows int
			pack func(src *float32, ld, k int, dst *float32, stride int)
		}{{8, packT8}, {4, packT4}} {
			k := kc &^ (g.rows - 1)
			for ; k > 0 && r+g.rows <= rows; r += g.rows {
				g.pack(&src[off+r*ld], ld*4, k, &panel[r], width*4)
				for q := r; q < r+g.rows; q++ {
					for p := k; p < kc; p++ {
						panel[p*width+q] = src[off+q*ld+p]
					}
				}
			}
		}
	}
	for ; r < rows; r++ {
		for p, v := range src[off+r*ld:][:kc] {
			panel[p*width+r] = v
		}
	}
}
