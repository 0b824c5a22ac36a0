package config

import (
	"reflect"
	"strings"
	"testing"
)

type normCfg struct {
	Type         string `cfg:"type,required"`
	RequiresGrad bool   `cfg:"requires_grad"`
}

type backboneOpts struct {
	WidenFactor float64        `cfg:"widen_factor"`
	OutIndices  []int          `cfg:"out_indices"`
	Stages      [4]int         `cfg:"stages"`
	Norm        *normCfg       `cfg:"norm_cfg"`
	Extra       map[string]any `cfg:"extra"`
	Raw         any            `cfg:"raw"`
	Frozen      int            `cfg:"frozen_stages"`
	Scales      map[string]float32
	internal    int
}

func TestDecode(t *testing.T) {
	node := map[string]any{
		"widen_factor": 1, "out_indices": []any{0, 1, 2, 3}, "stages": []any{4, 4, 8, 4},
		"norm_cfg": map[string]any{"type": "BN", "requires_grad": true},
		"extra":    map[string]any{"a": []any{1}}, "raw": []any{"x"}, "frozen_stages": 3e0,
		"scales": map[string]any{"a": 0.5},
	}
	got := backboneOpts{WidenFactor: 2, Frozen: -1, internal: 7}
	if err := Decode(node, "model.backbone", &got); err != nil {
		t.Fatal(err)
	}
	want := backboneOpts{
		WidenFactor: 1, OutIndices: []int{0, 1, 2, 3}, Stages: [4]int{4, 4, 8, 4},
		Norm: &normCfg{Type: "BN", RequiresGrad: true}, Extra: map[string]any{"a": []any{1}},
		Raw: []any{"x"}, Frozen: 3, Scales: map[string]float32{"a": 0.5}, internal: 7,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	defaults := backboneOpts{WidenFactor: 2, Frozen: -1}
	if err := Decode(map[string]any{}, "b", &defaults); err != nil || defaults.WidenFactor != 2 || defaults.Frozen != -1 {
		t.Fatalf("absent keys must keep defaults: %+v %v", defaults, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		node any
		frag []string
	}{
		{map[string]any{"widen_factr": 1.0}, []string{`model.backbone: unknown key "widen_factr"`, `did you mean "widen_factor"`, "accepted keys: extra, frozen_stages, norm_cfg, out_indices, raw, scales, stages, widen_factor"}},
		{map[string]any{"widen_factor": "big"}, []string{"model.backbone.widen_factor must be a number", `"big"`}},
		{map[string]any{"out_indices": 3}, []string{"model.backbone.out_indices must be a list"}},
		{map[string]any{"out_indices": []any{0, 1.5}}, []string{"model.backbone.out_indices.1 must be a whole number"}},
		{map[string]any{"stages": []any{1, 2}}, []string{"model.backbone.stages must have exactly 4 elements, not 2"}},
		{map[string]any{"norm_cfg": map[string]any{"requires_grad": true}}, []string{`model.backbone.norm_cfg: missing required key "type"`}},
		{map[string]any{"norm_cfg": "BN"}, []string{"model.backbone.norm_cfg must be a mapping"}},
		{map[string]any{"norm_cfg": map[string]any{"type": "BN", "requires_grad": "yes"}}, []string{"model.backbone.norm_cfg.requires_grad must be true or false"}},
		{[]any{1}, []string{"model.backbone must be a mapping, not a list"}},
	}
	for _, tc := range cases {
		var out backboneOpts
		err := Decode(tc.node, "model.backbone", &out)
		if err == nil {
			t.Errorf("Decode(%v) should fail", tc.node)
			continue
		}
		for _, f := range tc.frag {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("Decode(%v) error %q lacks %q", tc.node, err, f)
			}
		}
	}
	var small struct {
		N int8 `cfg:"n"`
	}
	if err := Decode(map[string]any{"n": 1000}, "x", &small); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("overflow: %v", err)
	}
	if err := Decode(map[string]any{}, "x", small); err == nil {
		t.Error("a non-pointer must be refused")
	}
}
