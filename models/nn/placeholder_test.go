package nn

import (
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

func TestPlaceholderRefusesToRun(t *testing.T) {
	args := map[string]any{"in_channels": 2, "out_channels": 2}
	net := NewSequential(NewSequential(NewPlaceholder("all_blocks", "b0", args), NewPlaceholder("all_blocks", "b1", args)))
	b := NewBinding()
	_, err := net.Forward(b, b.Input("x", tensor.New(tensor.WithShape(1, 2, 1, 1), tensor.Of(tensor.Float32))))
	want := `0.0: block b0 is still a placeholder of group "all_blocks"`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want it to start with %q", err, want)
	}
}
