package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/razorgo/razor/algorithms"
	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/runners/checkpoint"
	"github.com/razorgo/razor/runners/search"
	"github.com/razorgo/razor/tools/cli"
)

// TestMain lets the test binary act as the search command in a child
// process, so a test can SIGKILL a real search.
func TestMain(m *testing.M) {
	if os.Getenv("RAZOR_SEARCH_CHILD") == "1" {
		if err := cli.Search(context.Background(), os.Args[1:], io.Discard, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "search:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const mnistSearch = "../../configs/nas/spos/spos_evolution_search_shufflenetv2_mnist.yaml"

// tinyOverrides shrink the MNIST search to a second or two: an
// eighth-width supernet at stem stride 2, 64 held-out digits, three epochs of four
// candidates and three random subnets, under bounds that bind at this
// width (FLOPs 378k to 527k, params 124k to 143k).
var tinyOverrides = []string{
	"algorithm.architecture.model.backbone.widen_factor=0.125", "algorithm.architecture.model.backbone.stem_stride=2", "data.samples_per_gpu=8",
	"data.val_dataloader.samples_per_gpu=16", "searcher.eval_split.num=64", "searcher.recalibrate_batches=2",
	"searcher.candidate_pool_size=4", "searcher.candidate_top_k=2", "searcher.max_epoch=3",
	"searcher.num_mutation=1", "searcher.num_crossover=1", "searcher.random_baseline=3",
	"searcher.constraints=flops < 4.6e5 && params < 1.4e5",
}

// tinySupernet saves a randomly initialised tiny supernet.
func tinySupernet(t *testing.T) string {
	t.Helper()
	cfg, err := config.Load(mnistSearch, config.Options{Overrides: tinyOverrides})
	if err != nil {
		t.Fatal(err)
	}
	alg, err := algorithms.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := alg.InitWeights(rand.New(rand.NewPCG(8, 9))); err != nil {
		t.Fatal(err)
	}
	path, err := checkpoint.SaveTraining(t.TempDir(), "supernet", alg, nil, checkpoint.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

func args(ckpt, dir string, extra ...string) []string {
	a := append([]string{mnistSearch, ckpt, "--work-dir", dir, "--seed", "3"}, extra...)
	return append(append(a, "--cfg-options"), tinyOverrides...)
}

// evaluated reads how many candidates the state file holds (0 while it
// does not exist yet).
func evaluated(dir string) (int, bool) {
	st, err := search.LoadState(filepath.Join(dir, search.StateFile))
	if err != nil {
		return 0, false
	}
	return len(st.Candidates), st.Done
}

// outcome is the best subnet file and every candidate's key and score.
func outcome(t *testing.T, dir string) string {
	t.Helper()
	best, err := os.ReadFile(filepath.Join(dir, search.BestSubnetFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := search.LoadState(filepath.Join(dir, search.StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.Write(best)
	seen := map[string]bool{}
	for _, c := range st.Candidates {
		if seen[c.Key] {
			t.Errorf("%s evaluated twice", c.Key)
		}
		seen[c.Key] = true
		fmt.Fprintf(&sb, "%s %s %d %g\n", c.Key, c.Origin, c.Epoch, c.Score)
	}
	lines, err := os.ReadFile(filepath.Join(dir, search.CandidatesFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(lines), "\n"); n != len(st.Candidates) {
		t.Errorf("%s has %d lines for %d candidates", search.CandidatesFile, n, len(st.Candidates))
	}
	return sb.String()
}

// TestKilledSearchResumes SIGKILLs a real search twice, at two points in
// its run, resumes it each time with --auto-resume, and expects the
// uninterrupted search's best subnet and candidates.
func TestKilledSearchResumes(t *testing.T) {
	ckpt := tinySupernet(t)
	ref := t.TempDir()
	if err := cli.Search(context.Background(), args(ckpt, ref), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := outcome(t, ref)

	dir := t.TempDir()
	for _, at := range []int{2, 7} {
		cmd := exec.Command(os.Args[0], args(ckpt, dir, "--auto-resume")...)
		cmd.Env = append(os.Environ(), "RAZOR_SEARCH_CHILD=1")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			n, done := evaluated(dir)
			if done {
				t.Fatalf("the search finished before it could be killed after %d candidates", at)
			}
			if n >= at {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the child evaluated %d candidates in 2 minutes", n)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
	}
	if n, _ := evaluated(dir); n < 7 {
		t.Fatalf("the killed runs left %d candidates, want at least 7", n)
	}
	if err := cli.Search(context.Background(), args(ckpt, dir, "--auto-resume"), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := outcome(t, dir); got != want {
		t.Errorf("the killed and resumed search ended with\n%s\nwant\n%s", got, want)
	}
	var rep search.Report
	raw, err := os.ReadFile(filepath.Join(dir, search.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil || rep.RandomBaseline == nil || rep.RandomBaseline.Num != 3 {
		t.Errorf("report: %v %+v", err, rep.RandomBaseline)
	}
}
