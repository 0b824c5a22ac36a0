package datasets

// mapBoxes rewrites every box of in (labelled and ignored) with f, dropping
// a box (and its label) when f says not to keep it.
func (in *Instances) mapBoxes(f func(Box) (Box, bool)) {
	if in == nil {
		return
	}
	keep := in.BBoxes[:0]
	labels := in.Labels[:0]
	for i, b := range in.BBoxes {
		nb, ok := f(b)
		if !ok {
			continue
		}
		keep = append(keep, nb)
		if i < len(in.Labels) {
			labels = append(labels, in.Labels[i])
		}
	}
	in.BBoxes = keep
	if in.Labels != nil {
		in.Labels = labels
	}
	ign := in.BBoxesIgnore[:0]
	for _, b := range in.BBoxesIgnore {
		if nb, ok := f(b); ok {
			ign = append(ign, nb)
		}
	}
	in.BBoxesIgnore = ign
}

// clipBox clips x to [0, w] and y to [0, h], as mmdet clips to img_shape.
func clipBox(b Box, w, h int) Box {
	fw, fh := float32(w), float32(h)
	return Box{min(max(b[0], 0), fw), min(max(b[1], 0), fh), min(max(b[2], 0), fw), min(max(b[3], 0), fh)}
}

// cropBoxes moves the boxes into a crop whose top-left corner is (x0, y0)
// and size cw x ch, clips them to it and drops those left with no area, as
// mmdet's RandomCrop does.
func cropBoxes(in *Instances, x0, y0, cw, ch int) {
	dx, dy := float32(x0), float32(y0)
	in.mapBoxes(func(b Box) (Box, bool) {
		nb := clipBox(Box{b[0] - dx, b[1] - dy, b[2] - dx, b[3] - dy}, cw, ch)
		return nb, nb[2] > nb[0] && nb[3] > nb[1]
	})
}

// scaleBoxes multiplies x by sx and y by sy, then clips to w x h when clip.
func scaleBoxes(in *Instances, sx, sy float32, w, h int, clip bool) {
	in.mapBoxes(func(b Box) (Box, bool) {
		nb := Box{b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy}
		if clip {
			nb = clipBox(nb, w, h)
		}
		return nb, true
	})
}

// flipBoxes mirrors boxes in a w x h image as mmdet's bbox_flip: for a
// horizontal flip x1' = w - x2 and x2' = w - x1.
func flipBoxes(in *Instances, direction string, w, h int) {
	fw, fh := float32(w), float32(h)
	in.mapBoxes(func(b Box) (Box, bool) {
		if direction == "horizontal" || direction == "diagonal" {
			b[0], b[2] = fw-b[2], fw-b[0]
		}
		if direction == "vertical" || direction == "diagonal" {
			b[1], b[3] = fh-b[3], fh-b[1]
		}
		return b, true
	})
}
