package datasets

import "math/rand/v2"

// AspectGrouped is a dataset that knows each sample's aspect-ratio group
// before loading it, as mmdet's CustomDataset sets `flag` from img_info:
// 1 for an image wider than tall (width / height > 1), 0 for the rest.
type AspectGrouped interface {
	Dataset
	// AspectFlag is sample i's group, 0 or 1.
	AspectFlag(i int) int
}

// AspectFlags returns every sample's aspect-ratio group (through Subsets),
// or nil when ds does not know them.
func AspectFlags(ds Dataset) []int {
	switch d := ds.(type) {
	case AspectGrouped:
		flags := make([]int, d.Len())
		for i := range flags {
			flags[i] = d.AspectFlag(i)
		}
		return flags
	case *Subset:
		inner := AspectFlags(d.Dataset)
		if inner == nil {
			return nil
		}
		flags := make([]int, len(d.Indices))
		for i, j := range d.Indices {
			flags[i] = inner[j]
		}
		return flags
	}
	return nil
}

// groupSizes counts the samples of each group, group g at position g.
func groupSizes(groups []int) []int {
	var sizes []int
	for _, g := range groups {
		for g >= len(sizes) {
			sizes = append(sizes, 0)
		}
		sizes[g]++
	}
	return sizes
}

// groupedPerRank is how many samples each rank sees per epoch when every
// group is padded to whole batches on every rank, as mmdet's group
// samplers pad it.
func groupedPerRank(groups []int, batch, world int) int {
	n := 0
	for _, size := range groupSizes(groups) {
		n += (size + batch*world - 1) / (batch * world) * batch
	}
	return n
}

// groupedOrder is one epoch's order of dataset indices for all ranks
// together, batched by group as mmdet 2.x does. Each group's indices are shuffled and padded to
// whole batches (GroupSampler, one process: with extra indices drawn at
// random from the group; DistributedGroupSampler: to whole batches on every
// rank, by repeating the shuffled group), the groups are concatenated, the
// batches are shuffled; rank r takes the r-th of world equal contiguous
// shares. So every batch holds one group only, and the order depends only
// on the seed and the epoch.
func groupedOrder(groups []int, batch, world int, seed uint64, epoch int) []int {
	rng := rand.New(rand.NewPCG(seed, mix64(uint64(epoch))))
	members := make([][]int, len(groupSizes(groups)))
	for i, g := range groups {
		members[g] = append(members[g], i)
	}
	var all []int
	for _, idx := range members {
		size := len(idx)
		if size == 0 {
			continue
		}
		rng.Shuffle(size, func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		padded := (size + batch*world - 1) / (batch * world) * batch * world
		for k := size; k < padded; k++ {
			if world == 1 {
				idx = append(idx, idx[rng.IntN(size)])
			} else {
				idx = append(idx, idx[k%size])
			}
		}
		all = append(all, idx...)
	}
	out := make([]int, 0, len(all))
	for _, p := range rng.Perm(len(all) / batch) {
		out = append(out, all[p*batch:(p+1)*batch]...)
	}
	return out
}
