// Package mutables holds what makes a network searchable: the search space
// (named blocks, each with named candidate ops), subnets (one chosen op per
// block), the one-shot mutator's sampling, mutation and crossover, and the
// subnet files mmrazor reads and writes.
//
// It sits above the models: it imports models, models/nn, registry and
// config, and the placeholders it replaces are models/nn's, so no model
// package imports it.
package mutables

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"sort"
	"strings"
)

// Block is one searchable position of a network.
type Block struct {
	// ID is the block's space id, the key of a subnet file in mmrazor 0.x
	// (`stage_0_block_0`).
	ID string
	// Path is the block's module path, the key of a subnet file in mmrazor
	// 1.x (`backbone.layers.0.0`).
	Path string
	// Choices names the candidate ops, in their canonical order.
	Choices []string
}

// Space is the ordered list of a network's searchable blocks.
type Space struct {
	Blocks []Block
	byID   map[string]int
	byPath map[string]int
}

// NewSpace checks and indexes blocks: ids and paths must be unique and every
// block needs at least one choice, with no choice named twice.
func NewSpace(blocks []Block) (*Space, error) {
	s := &Space{Blocks: blocks, byID: map[string]int{}, byPath: map[string]int{}}
	for i, b := range blocks {
		if b.ID == "" {
			return nil, fmt.Errorf("search space: block %d has no id", i)
		}
		if _, dup := s.byID[b.ID]; dup {
			return nil, fmt.Errorf("search space: block id %q appears twice", b.ID)
		}
		s.byID[b.ID] = i
		if b.Path != "" {
			if _, dup := s.byPath[b.Path]; dup {
				return nil, fmt.Errorf("search space: module path %q appears twice", b.Path)
			}
			s.byPath[b.Path] = i
		}
		if len(b.Choices) == 0 {
			return nil, fmt.Errorf("search space: block %s has no choices", b.ID)
		}
		seen := map[string]bool{}
		for _, c := range b.Choices {
			if seen[c] {
				return nil, fmt.Errorf("search space: block %s names choice %q twice", b.ID, c)
			}
			seen[c] = true
		}
	}
	return s, nil
}

// Block returns the block with the given space id or module path.
func (s *Space) Block(key string) (Block, bool) {
	if i, ok := s.byID[key]; ok {
		return s.Blocks[i], true
	}
	if i, ok := s.byPath[key]; ok {
		return s.Blocks[i], true
	}
	return Block{}, false
}

// IDs lists the block ids in network order.
func (s *Space) IDs() []string {
	out := make([]string, len(s.Blocks))
	for i, b := range s.Blocks {
		out[i] = b.ID
	}
	return out
}

// Size is the number of distinct subnets: the product of the choice counts.
func (s *Space) Size() *big.Int {
	n := big.NewInt(1)
	for _, b := range s.Blocks {
		n.Mul(n, big.NewInt(int64(len(b.Choices))))
	}
	return n
}

// Subnet maps each block id to its chosen op.
type Subnet map[string]string

// Clone returns an independent copy.
func (sub Subnet) Clone() Subnet {
	out := make(Subnet, len(sub))
	for k, v := range sub {
		out[k] = v
	}
	return out
}

// Validate checks that sub names every block of the space exactly once with
// one of its choices. The error names the first problem and the allowed
// values.
func (s *Space) Validate(sub Subnet) error {
	var unknown []string
	for id := range sub {
		if _, ok := s.byID[id]; !ok {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("subnet names block %q, which the search space lacks; blocks are %s", unknown[0], s.describeIDs())
	}
	for _, b := range s.Blocks {
		c, ok := sub[b.ID]
		if !ok {
			return fmt.Errorf("subnet has no choice for block %s; every block needs one of: %s", b.ID, strings.Join(b.Choices, ", "))
		}
		if b.index(c) < 0 {
			return fmt.Errorf("subnet chooses %q for block %s; allowed: %s", c, b.ID, strings.Join(b.Choices, ", "))
		}
	}
	return nil
}

func (s *Space) describeIDs() string {
	if len(s.Blocks) <= 4 {
		return strings.Join(s.IDs(), ", ")
	}
	return fmt.Sprintf("%s ... %s (%d in all)", strings.Join(s.IDs()[:3], ", "), s.Blocks[len(s.Blocks)-1].ID, len(s.Blocks))
}

func (b Block) index(choice string) int {
	for i, c := range b.Choices {
		if c == choice {
			return i
		}
	}
	return -1
}

// Key is a canonical, compact text of a subnet (choice indices in block
// order, e.g. "2120|..."), equal for equal subnets; search de-duplicates
// candidates with it. sub must be valid.
func (s *Space) Key(sub Subnet) string {
	var sb strings.Builder
	for i, b := range s.Blocks {
		if i > 0 {
			sb.WriteByte('.')
		}
		fmt.Fprintf(&sb, "%d", b.index(sub[b.ID]))
	}
	return sb.String()
}

// Sample draws one op per block, uniformly and independently.
func (s *Space) Sample(rng *rand.Rand) Subnet {
	sub := make(Subnet, len(s.Blocks))
	for _, b := range s.Blocks {
		sub[b.ID] = b.Choices[rng.IntN(len(b.Choices))]
	}
	return sub
}

// Mutate returns a copy of sub in which each block, with probability prob,
// is redrawn uniformly from all its choices (so it may keep its op), as
// mmrazor's one-shot mutator does.
func (s *Space) Mutate(sub Subnet, prob float64, rng *rand.Rand) Subnet {
	out := sub.Clone()
	for _, b := range s.Blocks {
		if rng.Float64() < prob {
			out[b.ID] = b.Choices[rng.IntN(len(b.Choices))]
		}
	}
	return out
}

// Crossover returns a child taking each block from b with probability 0.5
// and from a otherwise.
func (s *Space) Crossover(a, b Subnet, rng *rand.Rand) Subnet {
	out := make(Subnet, len(s.Blocks))
	for _, blk := range s.Blocks {
		if rng.Float64() < 0.5 {
			out[blk.ID] = b[blk.ID]
		} else {
			out[blk.ID] = a[blk.ID]
		}
	}
	return out
}
