package runners

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/razorgo/razor/dist"
	"github.com/razorgo/razor/models"
)

// cannedComm is rank 0 of a fake group whose AllGather returns the
// other ranks' data given in advance.
type cannedComm struct {
	dist.Single
	others [][]byte
}

func (c cannedComm) Size() int { return 1 + len(c.others) }
func (c cannedComm) AllGather(d []byte) ([][]byte, error) {
	return append([][]byte{d}, c.others...), nil
}

// TestGatherShardsCountsEverySampleOnce: 3 ranks over 7 samples, dealt as
// DistributedSampler deals them (rank r takes r, r+3, ...; the order is
// padded to 9 by repeating samples 0 and 1), each predicting batches of 2:
// every sample reaches the metric once, with its own label and scores.
func TestGatherShardsCountsEverySampleOnce(t *testing.T) {
	shard := func(idx ...int) []shardResult {
		var out []shardResult
		for lo := 0; lo < len(idx); lo += 2 {
			b := idx[lo:min(len(idx), lo+2)]
			sr := shardResult{In: &models.Batch{}}
			for _, i := range b {
				sr.In.Indices = append(sr.In.Indices, i)
				sr.In.Labels = append(sr.In.Labels, 10+i)
				sr.In.Metas = append(sr.In.Metas, models.ImageMeta{Filename: string(rune('a' + i))})
				sr.Res.Scores = append(sr.Res.Scores, []float32{float32(i)})
			}
			out = append(out, sr)
		}
		return out
	}
	enc := func(s []shardResult) []byte {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	c := cannedComm{others: [][]byte{enc(shard(1, 4, 0)), enc(shard(2, 5, 1))}}
	var got []int
	err := gatherShards(c, shard(0, 3, 6), func(in *models.Batch, res models.Result) error {
		for k, i := range in.Indices {
			if in.Labels[k] != 10+i || res.Scores[k][0] != float32(i) || in.Metas[k].Filename != string(rune('a'+i)) {
				t.Errorf("sample %d arrived with label %d, score %v, file %q", i, in.Labels[k], res.Scores[k], in.Metas[k].Filename)
			}
			got = append(got, i)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 3, 6, 1, 4, 2, 5}; !slices.Equal(got, want) {
		t.Errorf("the metric saw samples %v, want %v (each once, in rank and batch order)", got, want)
	}
}
