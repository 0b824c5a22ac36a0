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
}

// Cache blocking around the micro-kernel, as in BLIS and OpenBLAS: a
// blockK-deep slice of op(B), blockN columns wide, is packed once into
// nr-column panels (1 MiB at most, read from L2/L3); for it, blockM rows of
// op(A) are packed into mr-row panels (192 KiB, kept in L2), and every
// pair of panels is one micro-kernel call, whose B panel (32 KiB at most)
// stays in L1 while the A panels stream past it.
const (
	blockK = 256
	blockM = 192 // a multiple of every kernel's mr (6, 12)
	blockN = 1024
)

// packBuffers are one goroutine's packing space, reused across calls.
type packBuffers struct {
	a, b []float32
	tile []float32 // an edge tile's scratch C
}

var packPool = sync.Pool{New: func() any {
	return &packBuffers{
		a:    make([]float32, blockM*blockK),
		b:    make([]float32, blockK*blockN),
		tile: make([]float32, 12*32),
	}
}}

// sgemmPacked is the serial multiply through kernel kn, with the contract
// of Gemm.Sgemm (arguments already checked).
func sgemmPacked(kn *microKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if alpha == 0 || k == 0 || m == 0 || n == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	// With beta 0 the first block of the shared dimension overwrites C
	// (never reading it, so stale NaNs do not leak); otherwise C is scaled
	// once and every block adds to it.
	if beta != 0 {
		scaleC(m, n, beta, c, ldc)
	}
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	mr, nr := kn.mr, kn.nr
	tile := buf.tile[:mr*nr]
	for jc := 0; jc < n; jc += blockN {
		nc := min(blockN, n-jc)
		for pc := 0; pc < k; pc += blockK {
			kc := min(blockK, k-pc)
			packB(transB, b, ldb, pc, kc, jc, nc, nr, buf.b)
			for ic := 0; ic < m; ic += blockM {
				mc := min(blockM, m-ic)
				packA(transA, alpha, a, lda, ic, mc, pc, kc, mr, buf.a)
				for jr := 0; jr < nc; jr += nr {
					cols := min(nr, nc-jr)
					bp := &buf.b[jr*kc]
					for ir := 0; ir < mc; ir += mr {
						rows := min(mr, mc-ir)
						ap := &buf.a[ir*kc]
						off := (ic+ir)*ldc + jc + jr
						overwrite := pc == 0 && beta == 0
						if rows == mr && cols == nr {
							if overwrite {
								kn.set(kc, ap, bp, &c[off], ldc)
							} else {
								kn.run(kc, ap, bp, &c[off], ldc)
							}
							continue
						}
						kn.set(kc, ap, bp, unsafe.SliceData(tile), nr)
						for r := 0; r < rows; r++ {
							dst := c[off+r*ldc : off+r*ldc+cols]
							src := tile[r*nr : r*nr+cols]
							if overwrite {
								copy(dst, src)
								continue
							}
							for j, v := range src {
								dst[j] += v
							}
						}
					}
				}
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

// packA copies alpha·op(A)[ic:ic+mc, pc:pc+kc] into mr-row panels: panel
// q holds rows ic+q·mr.. as kc steps of mr values, the rows past mc zero.
func packA(transA bool, alpha float32, a []float32, lda, ic, mc, pc, kc, mr int, dst []float32) {
	for ir := 0; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		panel := dst[ir*kc : ir*kc+mr*kc]
		if transA {
			// op(A)[i][p] = a[p*lda+i]: each step's rows are contiguous.
			for p := 0; p < kc; p++ {
				src := a[(pc+p)*lda+ic+ir:][:rows]
				out := panel[p*mr : p*mr+mr]
				if alpha == 1 {
					copy(out, src)
				} else {
					for r, v := range src {
						out[r] = alpha * v
					}
				}
				clear(out[rows:])
			}
			continue
		}
		// op(A)[i][p] = a[i*lda+p]: each row's steps are contiguous, so
		// the panel is their transpose.
		if alpha == 1 {
			packTransposed(a, (ic+ir)*lda+pc, lda, rows, kc, panel, mr)
		} else {
			for r := 0; r < rows; r++ {
				src := a[(ic+ir+r)*lda+pc:][:kc]
				for p, v := range src {
					panel[p*mr+r] = alpha * v
				}
			}
		}
		for r := rows; r < mr; r++ {
			for p := 0; p < kc; p++ {
				panel[p*mr+r] = 0
			}
		}
	}
}

// packB copies op(B)[pc:pc+kc, jc:jc+nc] into nr-column panels: panel q
// holds columns jc+q·nr.. as kc steps of nr values, the columns past nc
// zero.
func packB(transB bool, b []float32, ldb, pc, kc, jc, nc, nr int, dst []float32) {
	for jr := 0; jr < nc; jr += nr {
		cols := min(nr, nc-jr)
		panel := dst[jr*kc : jr*kc+nr*kc]
		if !transB {
			// op(B)[p][j] = b[p*ldb+j]: each step's columns are contiguous.
			for p := 0; p < kc; p++ {
				out := panel[p*nr : p*nr+nr]
				copy(out, b[(pc+p)*ldb+jc+jr:][:cols])
				clear(out[cols:])
			}
			continue
		}
		// op(B)[p][j] = b[j*ldb+p]: each column's steps are contiguous, so
		// the panel is their transpose.
		packTransposed(b, (jc+jr)*ldb+pc, ldb, cols, kc, panel, nr)
		for j := cols; j < nr; j++ {
			for p := 0; p < kc; p++ {
				panel[p*nr+j] = 0
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
