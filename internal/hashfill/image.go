package hashfill

// numShapes is how many rectangles and ellipses Image draws.
const numShapes = 24

// Image returns an h x w RGB picture, row-major with the three channels of
// a pixel together (HWC), the same bytes as hashfill.image in
// scripts/fixtures/hashfill.py: a colour gradient, then 24 rectangles and
// ellipses whose centres, half-sizes (8 to 8+w/8 by 8 to 8+h/8 pixels),
// kinds and colours come from the hash, painted in order, then hash noise
// of -16..15 per sample, clamped to 0..255. Objects with edges give a
// detector's features structure, so its boxes are not all alike. The
// pixels are what mmdet's test pipeline has after its BGR-to-RGB flip.
func Image(h, w int) []uint8 {
	img := make([]int64, h*w*3)
	for y := range h {
		for x := range w {
			p := img[(y*w+x)*3:]
			p[0] = 32 + int64(x*192/w)
			p[1] = 32 + int64(y*192/h)
			p[2] = 224 - int64((x+y)*192/(w+h))
		}
	}
	s := seed("image.shape")
	for k := range numShapes {
		var q [6]int64
		for j := range q {
			q[j] = int64(hash32(s, uint32(6*k+j)))
		}
		cx, cy := q[0]%int64(w), q[1]%int64(h)
		rx := 8 + q[2]%int64(max(1, w/8))
		ry := 8 + q[3]%int64(max(1, h/8))
		rect := q[4]&1 == 1
		for y := range int64(h) {
			for x := range int64(w) {
				dx, dy := x-cx, y-cy
				var inside bool
				if rect {
					inside = abs(dx) <= rx && abs(dy) <= ry
				} else {
					inside = dx*dx*(ry*ry)+dy*dy*(rx*rx) <= (rx*rx)*(ry*ry)
				}
				if inside {
					p := img[(y*int64(w)+x)*3:]
					for c := range 3 {
						p[c] = (q[5] >> (8 * c)) & 0xFF
					}
				}
			}
		}
	}
	noise := seed("image.noise")
	out := make([]uint8, len(img))
	for i, v := range img {
		v += int64(hash32(noise, uint32(i))>>27) - 16
		out[i] = uint8(min(max(v, 0), 255))
	}
	return out
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
