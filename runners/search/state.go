package search

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/razorgo/razor/config"
)

// StateFile is the name of the searcher's state in the work dir.
const StateFile = "search_state.json"

// stateFormat names the state's layout; a change to it changes the name.
const stateFormat = "razor-evolution-search-v1"

// State is everything an evolution search needs to continue where it
// stopped. It is rewritten atomically after every candidate and every
// epoch.
type State struct {
	Format string `json:"format"`
	// Seed seeded the search; a resumed search keeps it.
	Seed uint64 `json:"seed"`
	// Settings are the searcher options that shape the search; resuming
	// with other values is refused.
	Settings json.RawMessage `json:"settings"`
	// Space lists the block ids and choices, so a state is not resumed
	// over another search space.
	Space json.RawMessage `json:"space"`
	// Epoch is the number of finished epochs.
	Epoch int `json:"epoch"`
	// PoolReady is true once this epoch's pool was topped up with random
	// subnets; Pool holds its candidates not evaluated yet (cost known,
	// no score), in evaluation order.
	PoolReady bool        `json:"pool_ready"`
	Pool      []Candidate `json:"pool"`
	// Candidates are every evaluated candidate, in evaluation order.
	Candidates []Candidate `json:"candidates"`
	// TopK holds, for every finished epoch, the keys of its top-k.
	TopK [][]string `json:"top_k"`
	// RNG is the search's random source (math/rand/v2 PCG, binary).
	RNG []byte `json:"rng"`
	// Baseline are the random baseline's subnets once drawn (cost known;
	// scores are in Candidates).
	Baseline []Candidate `json:"baseline,omitempty"`
	// Done is set when the search and its baseline finished, and
	// FinalSubnet is then the name of its final_subnet_<time>.yaml.
	Done        bool   `json:"done"`
	FinalSubnet string `json:"final_subnet,omitempty"`
}

// LoadState reads a state file written by a search.
func LoadState(path string) (*State, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("search state %s does not exist", path)
		}
		return nil, fmt.Errorf("search state %s: %w", path, err)
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("search state %s is not a razor search state (%v); resume from the search_state.json a search wrote", path, err)
	}
	if st.Format != stateFormat {
		return nil, fmt.Errorf("search state %s has format %q; this razor reads %q", path, st.Format, stateFormat)
	}
	return &st, nil
}

// save writes the state atomically.
func (st *State) save(path string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding the search state: %w", err)
	}
	return config.WriteFileAtomic(path, append(b, '\n'))
}
