package losses

// Accuracy is mmdet's accuracy with topk 1: the percentage of the n rows
// of logits (n×c, row-major) whose largest score sits at the row's label.
// A tie goes to the first of the largest scores; a label outside [0, c)
// (an ignored one) never matches but still counts in n, as in mmdet. No
// rows give 0. logits must hold n×c values and labels n.
func Accuracy(logits []float32, n, c int, labels []int) float64 {
	if n == 0 || c == 0 {
		return 0
	}
	correct := 0
	for i := 0; i < n; i++ {
		row := logits[i*c : (i+1)*c]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == labels[i] {
			correct++
		}
	}
	return 100 * float64(correct) / float64(n)
}
