package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/razorgo/razor/algorithms"
	_ "github.com/razorgo/razor/all"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/mutables"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/runners/search"
)

const searchMNISTConfig = "../../configs/nas/spos/spos_evolution_search_shufflenetv2_mnist.yaml"

// searchTinyOverrides shrink the MNIST search to about a second: an
// eighth-width supernet at stem stride 2, 32 held-out digits, one recalibration batch of 8,
// three epochs of four candidates and three random subnets, under a FLOPs
// bound that rejects some subnets at this width.
var searchTinyOverrides = []string{
	"algorithm.architecture.model.backbone.widen_factor=0.125", "algorithm.architecture.model.backbone.stem_stride=2", "data.samples_per_gpu=8",
	"data.val_dataloader.samples_per_gpu=16", "searcher.eval_split.num=32", "searcher.recalibrate_batches=1",
	"searcher.candidate_pool_size=4", "searcher.candidate_top_k=2", "searcher.max_epoch=3",
	"searcher.num_mutation=1", "searcher.num_crossover=1", "searcher.random_baseline=3",
	"searcher.constraints=flops < 4.6e5 && params < 1.4e5",
}

// searchTinySupernet saves a randomly initialised tiny supernet and returns
// its checkpoint.
func searchTinySupernet(t *testing.T) string {
	t.Helper()
	cfg, err := config.Load(searchMNISTConfig, config.Options{Overrides: searchTinyOverrides})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := alg.InitWeights(rand.New(rand.NewPCG(3, 4))); err != nil {
		t.Fatal(err)
	}
	path, err := checkpoint.SaveTraining(t.TempDir(), "supernet", alg, nil, checkpoint.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func searchArgs(ckpt, workDir string, extra ...string) []string {
	args := []string{searchMNISTConfig, ckpt, "--work-dir", workDir, "--seed", "5", "--cfg-options"}
	args = append(args, searchTinyOverrides...)
	return append(args, extra...)
}

// searchOutcome is what two runs of one search must agree on.
func searchOutcome(t *testing.T, dir string) (best string, candidates []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, search.BestSubnetFile))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, search.CandidatesFile))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c search.Candidate
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if seen[c.Key] {
			t.Errorf("%s evaluated twice", c.Key)
		}
		seen[c.Key] = true
		if c.FLOPs >= 4.6e5 || c.Params >= 1.4e5 {
			t.Errorf("%s breaks the constraint: flops %d, params %d", c.Key, c.FLOPs, c.Params)
		}
		candidates = append(candidates, strings.Join([]string{c.Key, c.Origin, jsonNumber(c.Score)}, " "))
	}
	return string(b), candidates
}

func jsonNumber(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// killAfter cancels a run's context once the search logged n candidates,
// standing in for a kill at that moment.
type killAfter struct {
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
	buf    bytes.Buffer
}

func (k *killAfter) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.buf.Write(p)
	if strings.Count(k.buf.String(), " candidate [") >= k.n {
		k.cancel()
	}
	return len(p), nil
}

// TestSearchMNIST runs the tiny search on real digits, then stops the same
// search after 5 candidates (mid-epoch 2) and resumes it with
// --auto-resume: it must end with the same best subnet and the same
// candidates, none evaluated twice.
func TestSearchMNIST(t *testing.T) {
	ckpt := searchTinySupernet(t)
	ref := t.TempDir()
	res, err := SearchResult(context.Background(), searchArgs(ckpt, ref), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	best, cands := searchOutcome(t, ref)
	if len(cands) < 12 || len(cands) > 15 {
		t.Fatalf("%d candidates evaluated, want 12 in the search and up to 3 for the baseline", len(cands))
	}
	space := mustSearchSpace(t)
	sub, err := mutables.ReadSubnetFile(res.BestSubnetFile, space)
	if err != nil || space.Key(sub) != res.Best.Key {
		t.Fatalf("best_subnet.yaml holds %v (%v), want %s", sub, err, res.Best.Key)
	}
	var rep search.Report
	raw, err := os.ReadFile(res.ReportFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Best.Key != res.Best.Key || rep.RandomBaseline == nil || rep.RandomBaseline.Num != 3 || rep.Constraints != "flops < 4.6e5 && params < 1.4e5" {
		t.Errorf("report: best %s, baseline %+v, constraints %q", rep.Best.Key, rep.RandomBaseline, rep.Constraints)
	}
	for _, f := range []string{search.PlotFile, search.StateFile, "spos_evolution_search_shufflenetv2_mnist.yaml"} {
		if _, err := os.Stat(filepath.Join(ref, f)); err != nil {
			t.Error(err)
		}
	}
	finals, _ := filepath.Glob(filepath.Join(ref, "final_subnet_*.yaml"))
	if len(finals) != 1 {
		t.Errorf("final subnet files %v, want one", finals)
	}

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	k := &killAfter{n: 5, cancel: cancel}
	if _, err := SearchResult(ctx, searchArgs(ckpt, dir), k, io.Discard); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "search stopped with 5 candidates evaluated; continue it with --auto-resume") {
		t.Fatalf("stopped search returned %v", err)
	}
	st, err := search.LoadState(filepath.Join(dir, search.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st.Candidates); n != 5 {
		t.Fatalf("the stopped search saved %d candidates, want 5", n)
	}
	var out bytes.Buffer
	if _, err := SearchResult(context.Background(), searchArgs(ckpt, dir, "--auto-resume", "--seed", "99"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "resuming the search at epoch 2 of 3 with 5 candidates evaluated") || !strings.Contains(out.String(), "Set random seed to 5") {
		t.Errorf("the resumed run did not say it resumed with the saved seed:\n%s", out.String())
	}
	if n := strings.Count(out.String(), " candidate ["); n != 7 {
		t.Errorf("the resumed run evaluated %d search candidates, want the 7 left", n)
	}
	gotBest, gotCands := searchOutcome(t, dir)
	if gotBest != best || strings.Join(gotCands, "\n") != strings.Join(cands, "\n") {
		t.Errorf("resumed search ended with\n%s%s\nwant\n%s%s", gotBest, strings.Join(gotCands, "\n"), best, strings.Join(cands, "\n"))
	}
}

func mustSearchSpace(t *testing.T) *mutables.Space {
	t.Helper()
	cfg, err := config.Load(searchMNISTConfig, config.Options{Overrides: searchTinyOverrides})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return alg.(algorithms.OneShot).Space()
}

func TestSearchErrors(t *testing.T) {
	ckpt := searchTinySupernet(t)
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{searchMNISTConfig}, "expected CONFIG and CHECKPOINT, got 1 arguments"},
		{searchArgs(filepath.Join(dir, "none.json"), dir), "none.json"},
		{searchArgs(ckpt, dir, "--resume-from", filepath.Join(dir, "nothing.json")), "--resume-from " + filepath.Join(dir, "nothing.json")},
		{searchArgs(ckpt, dir, "--cfg-options", "searcher.metrics=segm"), `searcher.metrics "segm": no such metric is registered; razor scores candidates with a registered metric`},
		{searchArgs(ckpt, dir, "--cfg-options", "searcher.metrics=bbox"), "searcher.metrics bbox: the bbox metric needs a COCO-format dataset"},
		{searchArgs(ckpt, dir, "--cfg-options", "searcher.constraints=flops <"), `constraints: "flops <" is not a valid condition`},
		{searchArgs(ckpt, dir, "--cfg-options", "searcher.eval_split.num=70000"), "searcher.eval_split.num must be between 1 and the 60000 samples of data.train, got 70000"},
		{searchArgs(ckpt, dir, "--cfg-options", "searcher.recalibrate_batches=8000"), "searcher.recalibrate_batches 8000 exceeds the 7500 batches of data.train"},
		{searchArgs(ckpt, dir, "--cfg-options", "algorithm.mutable_cfg=../../configs/nas/spos/SPOS_SHUFFLENETV2_330M_IN1k_PAPER.yaml"), "algorithm.mutable_cfg fixes a subnet"},
		{searchArgs(ckpt, dir, "--cfg-options", "searcher=null"), "the config has no searcher; set searcher.type to one of: EvolutionSearcher"},
	}
	for _, tc := range cases {
		err := Search(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("search %q: %v, want an error containing %q", tc.args[len(tc.args)-1], err, tc.want)
		}
	}
}
