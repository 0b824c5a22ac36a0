package runners

import (
	"strings"
	"testing"

	"github.com/razorgo/razor/config"
)

func TestSyncBNNote(t *testing.T) {
	cfg, err := config.FromMap(map[string]any{
		"norm_cfg": map[string]any{"type": "SyncBN", "requires_grad": true},
		"model": map[string]any{
			"backbone": map[string]any{"norm_cfg": map[string]any{"type": "mmcv.SyncBN"}},
			"neck":     map[string]any{"norm_cfg": map[string]any{"type": "BN"}},
			"heads":    []any{map[string]any{"norm_cfg": map[string]any{"type": "SyncBN"}}},
		},
		"data": map[string]any{"samples_per_gpu": 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	note := SyncBNNote(cfg)
	for _, frag := range []string{"(model.backbone.norm_cfg and 2 more)", "runs as BN", "one process", "samples_per_gpu"} {
		if !strings.Contains(note, frag) {
			t.Fatalf("note %q does not mention %q", note, frag)
		}
	}
	plain, err := config.FromMap(map[string]any{"norm_cfg": map[string]any{"type": "BN"}, "model": map[string]any{"type": "SyncBNFree"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := SyncBNNote(plain); n != "" {
		t.Fatalf("a BN config gets the note %q", n)
	}
}
