package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

const (
	sposSubnet       = "../../configs/nas/spos/spos_subnet_shufflenetv2_8xb128_in1k.yaml"
	sposSupernet     = "../../configs/nas/spos/spos_supernet_shufflenetv2_8xb128_in1k.yaml"
	detnasSubnet     = "../../configs/nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_1x_coco.yaml"
	detnasSupernet   = "../../configs/nas/detnas/detnas_supernet_frcnn_shufflenetv2_fpn_1x_coco.yaml"
	detnasSubnetYAML = "../../configs/nas/detnas/DETNAS_FRCNN_SHUFFLENETV2_340M_COCO_MMRAZOR.yaml"
)

// refCount is one PyTorch hook count that follows mmcv's conventions.
type refCount struct {
	FLOPs  int64 `json:"flops"`
	Params int64 `json:"params"`
}

func reference(t *testing.T) map[string]refCount {
	t.Helper()
	raw, err := os.ReadFile("../../algorithms/testdata/shufflenet_flops.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]refCount
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	return ref
}

func runTool(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestJSONMatchesReference(t *testing.T) {
	ref := reference(t)
	cases := []struct {
		args     []string
		fixture  string
		shape    []int
		scope    string
		supernet bool
	}{
		{[]string{sposSubnet}, "spos_paper_whole", []int{3, 224, 224}, "whole model", false},
		{[]string{detnasSubnet}, "detnas_published_backbone", []int{3, 224, 224}, "backbone only", false},
		{[]string{detnasSubnet, "--shape", "320", "320"}, "detnas_published_backbone_320", []int{3, 320, 320}, "backbone only", false},
		{[]string{detnasSubnet, "--shape", "320"}, "detnas_published_backbone_320", []int{3, 320, 320}, "backbone only", false},
		{[]string{sposSupernet}, "supernet_whole", []int{3, 224, 224}, "whole model", true},
		{[]string{detnasSupernet, "--cfg-options", "algorithm.mutable_cfg=" + detnasSubnetYAML}, "detnas_published_backbone", []int{3, 224, 224}, "backbone only", false},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args[1:], " "), func(t *testing.T) {
			out, stderr, err := runTool(t, append(c.args, "--json")...)
			if err != nil {
				t.Fatal(err)
			}
			if stderr != "" {
				t.Fatalf("stderr: %s", stderr)
			}
			var got report
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("%v in %s", err, out)
			}
			want := ref[c.fixture]
			if got.FLOPs != want.FLOPs || got.Params != want.Params || got.Supernet != c.supernet ||
				!strings.HasPrefix(got.Scope, c.scope) || len(got.Shape) != 3 || got.Shape[1] != c.shape[1] || got.Shape[2] != c.shape[2] {
				t.Fatalf("got %+v, want flops %d, params %d, shape %v, scope %s..., supernet %v", got, want.FLOPs, want.Params, c.shape, c.scope, c.supernet)
			}
		})
	}
}

func TestTextOutput(t *testing.T) {
	out, _, err := runTool(t, sposSubnet)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Input shape: (3, 224, 224)\n", "Flops: 0.33 GFLOPs (333668928)\n", "Params: 3.56 M (3558952)\n", "Scope: whole model"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Note:") {
		t.Errorf("a subnet config got the supernet note:\n%s", out)
	}
	out, _, err = runTool(t, detnasSupernet)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Note: these numbers are for the whole supernet") || !strings.Contains(out, "algorithm.mutable_cfg=") {
		t.Errorf("a supernet config without a subnet must say the numbers are the whole supernet's:\n%s", out)
	}
}

func TestPerLayer(t *testing.T) {
	out, _, err := runTool(t, detnasSubnet, "--per-layer")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "layer ") || !strings.Contains(lines[1], "backbone.conv1.conv") || !strings.Contains(lines[1], "Conv2d") {
		t.Fatalf("per-layer table starts with:\n%s\n%s", lines[0], lines[1])
	}
	if strings.Contains(out, "BatchNorm2d") || strings.Contains(out, "layers.4") {
		t.Fatal("the DetNAS scope listed BN or the last layer")
	}
	js, _, err := runTool(t, detnasSubnet, "--per-layer", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r report
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, l := range r.Layers {
		sum += l.FLOPs
	}
	if len(r.Layers) != 138 || sum != r.FLOPs {
		t.Fatalf("%d layers summing to %d of %d", len(r.Layers), sum, r.FLOPs)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "expected one CONFIG file, got 0 arguments"},
		{[]string{"no/such.yaml"}, "no/such.yaml"},
		{[]string{sposSubnet, "--shape"}, "--shape needs the input height and width"},
		{[]string{sposSubnet, "--shape", "0", "3"}, "--shape [0 3] must be a positive height and width"},
		{[]string{sposSubnet, "--bogus"}, "unknown flag: --bogus"},
		{[]string{sposSubnet, "--cfg-options", "algorithm.mutable_cfg=/missing.yaml"}, "subnet file /missing.yaml does not exist"},
		{[]string{detnasSubnet, "--scope", "neck"}, `--scope "neck" is not a scope; use algorithm, backbone or model`},
		{[]string{detnasSubnet, "--shape", "100000"}, `--shape [3 100000 100000] makes an image of 30000000000 values, more than the 268435456 (1 GiB of float32) a count may build`},
		{[]string{detnasSubnet, "--cfg-options", "algorithm.input_shape=[3,100000,100000]"}, `input_shape [3 100000 100000] makes an image of 30000000000 values`},
	}
	for _, c := range cases {
		_, _, err := runTool(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line containing %q", c.args, err, c.want)
		}
	}
}

func TestStringsAsMMCV(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{flopsString(333668928), "0.33 GFLOPs"},
		{flopsString(1236736576), "1.24 GFLOPs"},
		{flopsString(300000000), "0.3 GFLOPs"},
		{paramsString(3558952), "3.56 M"},
		{paramsString(12345), "12.35 k"},
		{paramsString(999), "999"},
		{paramsString(2675000), "2.67 M"},
		{paramsString(1125000), "1.12 M"},
		{flopsString(1e9), "1.0 GFLOPs"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestScopeModel counts the whole DetNAS detector: backbone with BN, FPN,
// RPN head and the box head on mmdet's forward_dummy 1000 proposals, and
// --scope backbone gives DetNAS's own count for any config.
func TestScopeModel(t *testing.T) {
	var model, backbone, own report
	for _, c := range []struct {
		scope string
		r     *report
	}{{"model", &model}, {"backbone", &backbone}, {"algorithm", &own}} {
		out, _, err := runTool(t, detnasSubnet, "--shape", "800", "1344", "--scope", c.scope, "--json", "--per-layer")
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(out), c.r); err != nil {
			t.Fatalf("--scope %s: %v\n%s", c.scope, err, out)
		}
	}
	if own.FLOPs != backbone.FLOPs || own.Params != backbone.Params {
		t.Errorf("DetNAS's own scope counts %d FLOPs, --scope backbone %d: they should agree", own.FLOPs, backbone.FLOPs)
	}
	layers := map[string]int64{}
	for _, l := range model.Layers {
		layers[l.Path] = l.FLOPs
	}
	// The box head's fully connected layer sees 1000 RoIs of 256x7x7.
	if got, want := layers["roi_head.bbox_head.shared_fcs.0"], int64(1000*12544*1024); got != want {
		t.Errorf("roi_head.bbox_head.shared_fcs.0: %d FLOPs, want %d", got, want)
	}
	// The RPN's 3x3 conv runs on all five levels: 256*256*9 per position
	// plus the bias, over 200x336 + 100x168 + 50x84 + 25x42 + 13x21 positions.
	var rpnConv int64
	for _, l := range model.Layers {
		if l.Path == "rpn_head.rpn_conv" {
			rpnConv += l.FLOPs
		}
	}
	positions := int64(200*336 + 100*168 + 50*84 + 25*42 + 13*21)
	if want := positions * (256*256*9 + 256); rpnConv != want {
		t.Errorf("rpn_head.rpn_conv: %d FLOPs over its levels, want %d", rpnConv, want)
	}
	if model.Params != 20728032 || model.FLOPs <= 10*backbone.FLOPs {
		t.Errorf("whole detector: %d params (want 20728032), %d FLOPs against the backbone's %d", model.Params, model.FLOPs, backbone.FLOPs)
	}
	if !strings.Contains(model.Scope, "1000 proposals") {
		t.Errorf("scope %q does not say how the second stage was counted", model.Scope)
	}
}
