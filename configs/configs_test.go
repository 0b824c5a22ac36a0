package configs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/razorgo/razor/config"
	"github.com/razorgo/razor/runners/pipeline"
	"github.com/razorgo/razor/tools/cli"
)

// The config files as mmrazor 0.x names them, relative to this folder.
const (
	sposSupernet    = "nas/spos/spos_supernet_shufflenetv2_8xb128_in1k.yaml"
	sposSearch      = "nas/spos/spos_evolution_search_shufflenetv2_8xb2048_in1k.yaml"
	sposSearchMNIST = "nas/spos/spos_evolution_search_shufflenetv2_mnist.yaml"
	sposSubnet      = "nas/spos/spos_subnet_shufflenetv2_8xb128_in1k.yaml"
	sposPaper       = "nas/spos/SPOS_SHUFFLENETV2_330M_IN1k_PAPER.yaml"
	detnasStep1     = "nas/detnas/detnas_supernet_shufflenetv2_8xb128_in1k.yaml"
	detnasStep2     = "nas/detnas/detnas_supernet_frcnn_shufflenetv2_fpn_1x_coco.yaml"
	detnasStep3     = "nas/detnas/detnas_evolution_search_frcnn_shufflenetv2_fpn_coco.yaml"
	detnasStep4     = "nas/detnas/detnas_subnet_shufflenetv2_8xb128_in1k.yaml"
	detnasStep5     = "nas/detnas/detnas_subnet_frcnn_shufflenetv2_fpn_1x_coco.yaml"
	detnasPublished = "nas/detnas/DETNAS_FRCNN_SHUFFLENETV2_340M_COCO_MMRAZOR.yaml"
)

// expectedFiles lists every file the reference tree has for SPOS and DetNAS;
// losing one would break a documented command.
var expectedFiles = []string{
	"_base_/datasets/mmcls/imagenet_bs128_colorjittor.yaml",
	"_base_/datasets/mmdet/coco_detection.yaml",
	"_base_/schedules/mmcls/imagenet_bs1024_spos.yaml",
	"_base_/schedules/mmdet/schedule_1x.yaml",
	"_base_/mmcls_runtime.yaml",
	"_base_/mmdet_runtime.yaml",
	sposSupernet, sposSearch, sposSubnet, sposPaper,
	detnasStep1, detnasStep2, detnasStep3, detnasStep4, detnasStep5, detnasPublished,
}

// load loads a config and fails the test on an error or a warning, since no
// shipped file or tested override should touch a key that does not exist.
func load(t *testing.T, file string, overrides ...string) *config.Config {
	t.Helper()
	c, err := config.Load(file, config.Options{Overrides: overrides})
	if err != nil {
		t.Fatalf("loading %s with %q: %v", file, overrides, err)
	}
	if len(c.Warnings) > 0 {
		t.Fatalf("loading %s with %q warned: %q", file, overrides, c.Warnings)
	}
	return c
}

// yamlFiles lists every .yaml file below this folder.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			files = append(files, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestExpectedFilesExist(t *testing.T) {
	have := map[string]bool{}
	for _, f := range yamlFiles(t) {
		have[f] = true
	}
	for _, f := range expectedFiles {
		if !have[f] {
			t.Errorf("%s is missing", f)
		}
	}
}

// TestEveryConfigLoadsAndDumps loads every YAML file, dumps it and loads the
// dump again: the dump must parse and give back the same tree.
func TestEveryConfigLoadsAndDumps(t *testing.T) {
	dir := t.TempDir()
	for i, file := range yamlFiles(t) {
		t.Run(file, func(t *testing.T) {
			c := load(t, file)
			if len(c.Tree()) == 0 {
				t.Fatal("loaded an empty config")
			}
			for _, provenance := range []bool{false, true} {
				out, err := c.YAML(provenance)
				if err != nil {
					t.Fatalf("dump (provenance %v): %v", provenance, err)
				}
				var back any
				if err := yaml.Unmarshal(out, &back); err != nil {
					t.Fatalf("dump (provenance %v) does not parse: %v\n%s", provenance, err, out)
				}
				dumped := filepath.Join(dir, fmt.Sprintf("dump%d_%v.yaml", i, provenance))
				if err := os.WriteFile(dumped, out, 0o644); err != nil {
					t.Fatal(err)
				}
				again := load(t, dumped)
				if !reflect.DeepEqual(again.Tree(), c.Tree()) {
					t.Fatalf("reloading the dump (provenance %v) changed the config:\n%s", provenance, out)
				}
			}
		})
	}
}

// TestReferenceValues checks values of the reference configs that a
// translation could get wrong, including those reached only by inheritance.
func TestReferenceValues(t *testing.T) {
	cases := []struct {
		file string
		key  string
		want any
	}{
		// Classification supernet: schedule, data and model.
		{sposSupernet, "runner.type", "IterBasedRunner"},
		{sposSupernet, "runner.max_iters", 150000},
		{sposSupernet, "optimizer.type", "SGD"},
		{sposSupernet, "optimizer.lr", 0.5},
		{sposSupernet, "optimizer.momentum", 0.9},
		{sposSupernet, "optimizer.weight_decay", 4e-5},
		{sposSupernet, "optimizer.paramwise_cfg", map[string]any{"bias_decay_mult": 0.0, "norm_decay_mult": 0.0}},
		{sposSupernet, "paramwise_cfg", map[string]any{"bias_decay_mult": 0.0, "norm_decay_mult": 0.0}},
		{sposSupernet, "optimizer_config.grad_clip", nil},
		{sposSupernet, "lr_config", map[string]any{"policy": "poly", "power": 1.0, "min_lr": 0.0, "by_epoch": false}},
		{sposSupernet, "evaluation", map[string]any{"interval": 1000, "metric": "accuracy"}},
		{sposSupernet, "checkpoint_config.interval", 1000},
		{sposSupernet, "log_config.interval", 100},
		{sposSupernet, "workflow", []any{[]any{"train", 1}}},
		{sposSupernet, "find_unused_parameters", true},
		{sposSupernet, "data.samples_per_gpu", 128},
		{sposSupernet, "data.workers_per_gpu", 8},
		{sposSupernet, "data.train.type", "ImageNet"},
		{sposSupernet, "data.train.data_prefix", "data/imagenet/train"},
		{sposSupernet, "data.val.ann_file", "data/imagenet/meta/val.txt"},
		{sposSupernet, "data.train.pipeline.1", map[string]any{"type": "RandomResizedCrop", "size": 224}},
		{sposSupernet, "data.train.pipeline.2", map[string]any{"type": "ColorJitter", "brightness": 0.4, "contrast": 0.4, "saturation": 0.4}},
		{sposSupernet, "data.train.pipeline.3", map[string]any{"type": "RandomFlip", "flip_prob": 0.5, "direction": "horizontal"}},
		{sposSupernet, "data.train.pipeline.4", map[string]any{"type": "Normalize",
			"mean": []any{123.675, 116.28, 103.53}, "std": []any{58.395, 57.12, 57.375}, "to_rgb": true}},
		{sposSupernet, "data.train.pipeline.7.keys", []any{"img", "gt_label"}},
		{sposSupernet, "data.test.pipeline.1", map[string]any{"type": "Resize", "size": []any{256, -1}}},
		{sposSupernet, "data.test.pipeline.2", map[string]any{"type": "CenterCrop", "crop_size": 224}},
		{sposSupernet, "data.val.pipeline.3.std", []any{58.395, 57.12, 57.375}},
		{sposSupernet, "algorithm.type", "SPOS"},
		{sposSupernet, "algorithm.architecture.type", "MMClsArchitecture"},
		{sposSupernet, "algorithm.architecture.model.type", "mmcls.ImageClassifier"},
		{sposSupernet, "algorithm.architecture.model.backbone", map[string]any{
			"type": "SearchableShuffleNetV2", "widen_factor": 1.0, "norm_cfg": map[string]any{"type": "BN"}}},
		{sposSupernet, "algorithm.architecture.model.head.in_channels", 1024},
		{sposSupernet, "algorithm.architecture.model.head.loss", map[string]any{"type": "LabelSmoothLoss",
			"num_classes": 1000, "label_smooth_val": 0.1, "mode": "original", "loss_weight": 1.0}},
		{sposSupernet, "algorithm.architecture.model.head.topk", []any{1, 5}},
		{sposSupernet, "algorithm.mutator.type", "OneShotMutator"},
		{sposSupernet, "algorithm.mutator.placeholder_mapping.all_blocks.type", "OneShotOP"},
		{sposSupernet, "algorithm.mutator.placeholder_mapping.all_blocks.choices.shuffle_5x5",
			map[string]any{"type": "ShuffleBlock", "kernel_size": 5, "norm_cfg": map[string]any{"type": "BN"}}},
		{sposSupernet, "algorithm.mutator.placeholder_mapping.all_blocks.choices.shuffle_xception",
			map[string]any{"type": "ShuffleXception", "norm_cfg": map[string]any{"type": "BN"}}},
		{sposSupernet, "algorithm.retraining", false},
		{sposSupernet, "algorithm.bn_training_mode", false},
		{sposSupernet, "model.head.num_classes", 1000},
		{sposSupernet, "mutator.placeholder_mapping.all_blocks.choices.shuffle_3x3.kernel_size", 3},

		// SPOS search and retraining.
		{sposSearch, "data.samples_per_gpu", 2048},
		{sposSearch, "data.workers_per_gpu", 16},
		{sposSearch, "data.test.type", "ImageNet"},
		{sposSearch, "algorithm.bn_training_mode", true},
		{sposSearch, "searcher", map[string]any{"type": "EvolutionSearcher", "candidate_pool_size": 50,
			"candidate_top_k": 10, "constraints": map[string]any{"flops": 330e6}, "metrics": "accuracy",
			"score_key": "accuracy_top-1", "max_epoch": 20, "num_mutation": 25, "num_crossover": 25, "mutate_prob": 0.1}},
		// The MNIST search: the supernet's model and data, FLOPs at 32x32.
		{sposSearchMNIST, "algorithm.input_shape", []any{3, 32, 32}},
		{sposSearchMNIST, "algorithm.architecture.model.backbone.widen_factor", 0.5},
		{sposSearchMNIST, "data.train.type", "MNIST"},
		{sposSearchMNIST, "searcher.constraints", "flops < 8.8e6"},
		{sposSearchMNIST, "searcher.eval_split", map[string]any{"from": "train", "num": 1000, "seed": 0}},
		{sposSearchMNIST, "searcher.bn_mode", "recalibrate"},
		{sposSearchMNIST, "searcher.random_baseline", 20},
		{sposSubnet, "runner.max_iters", 300000},
		{sposSubnet, "algorithm.retraining", true},
		{sposSubnet, "find_unused_parameters", false},

		// DetNAS step 1: the SPOS supernet recipe, twice as long.
		{detnasStep1, "runner.max_iters", 300000},
		{detnasStep1, "optimizer.lr", 0.5},
		{detnasStep1, "algorithm.type", "SPOS"},
		{detnasStep1, "algorithm.retraining", false},

		// DetNAS step 2: Faster R-CNN + FPN on COCO, schedule 1x.
		{detnasStep2, "norm_cfg", map[string]any{"type": "SyncBN", "requires_grad": true}},
		{detnasStep2, "algorithm.type", "DetNAS"},
		{detnasStep2, "algorithm.architecture.type", "MMDetArchitecture"},
		{detnasStep2, "algorithm.pruner", nil},
		{detnasStep2, "algorithm.distiller", nil},
		{detnasStep2, "algorithm.retraining", false},
		{detnasStep2, "algorithm.architecture.model.type", "mmdet.FasterRCNN"},
		{detnasStep2, "model.type", "mmdet.FasterRCNN"},
		{detnasStep2, "algorithm.architecture.model.backbone", map[string]any{
			"type": "mmcls.SearchableShuffleNetV2", "out_indices": []any{0, 1, 2, 3}, "widen_factor": 1.0,
			"with_last_layer": false, "norm_cfg": map[string]any{"type": "SyncBN", "requires_grad": true}}},
		{detnasStep2, "algorithm.architecture.model.neck.type", "FPN"},
		{detnasStep2, "algorithm.architecture.model.neck.in_channels", []any{64, 160, 320, 640}},
		{detnasStep2, "algorithm.architecture.model.neck.out_channels", 256},
		{detnasStep2, "algorithm.architecture.model.neck.num_outs", 5},
		{detnasStep2, "algorithm.architecture.model.neck.norm_cfg.type", "SyncBN"},
		{detnasStep2, "algorithm.architecture.model.rpn_head.anchor_generator", map[string]any{
			"type": "AnchorGenerator", "scales": []any{8}, "ratios": []any{0.5, 1.0, 2.0}, "strides": []any{4, 8, 16, 32, 64}}},
		{detnasStep2, "algorithm.architecture.model.rpn_head.bbox_coder.target_stds", []any{1.0, 1.0, 1.0, 1.0}},
		{detnasStep2, "algorithm.architecture.model.rpn_head.loss_cls", map[string]any{
			"type": "CrossEntropyLoss", "use_sigmoid": true, "loss_weight": 1.0}},
		{detnasStep2, "algorithm.architecture.model.roi_head.bbox_roi_extractor.roi_layer", map[string]any{
			"type": "RoIAlign", "output_size": 7, "sampling_ratio": 0}},
		{detnasStep2, "algorithm.architecture.model.roi_head.bbox_roi_extractor.featmap_strides", []any{4, 8, 16, 32}},
		{detnasStep2, "algorithm.architecture.model.roi_head.bbox_head.type", "Shared4Conv1FCBBoxHead"},
		{detnasStep2, "algorithm.architecture.model.roi_head.bbox_head.fc_out_channels", 1024},
		{detnasStep2, "algorithm.architecture.model.roi_head.bbox_head.num_classes", 80},
		{detnasStep2, "algorithm.architecture.model.roi_head.bbox_head.norm_cfg.type", "SyncBN"},
		{detnasStep2, "algorithm.architecture.model.roi_head.bbox_head.bbox_coder.target_stds", []any{0.1, 0.1, 0.2, 0.2}},
		{detnasStep2, "algorithm.architecture.model.roi_head.bbox_head.reg_class_agnostic", false},
		{detnasStep2, "algorithm.architecture.model.roi_head.bbox_head.loss_cls.use_sigmoid", false},
		{detnasStep2, "algorithm.architecture.model.train_cfg.rpn.assigner", map[string]any{
			"type": "MaxIoUAssigner", "pos_iou_thr": 0.7, "neg_iou_thr": 0.3, "min_pos_iou": 0.3,
			"match_low_quality": true, "ignore_iof_thr": -1}},
		{detnasStep2, "algorithm.architecture.model.train_cfg.rpn.sampler", map[string]any{
			"type": "RandomSampler", "num": 256, "pos_fraction": 0.5, "neg_pos_ub": -1, "add_gt_as_proposals": false}},
		{detnasStep2, "algorithm.architecture.model.train_cfg.rpn_proposal", map[string]any{
			"nms_pre": 2000, "max_per_img": 1000, "nms": map[string]any{"type": "nms", "iou_threshold": 0.7}, "min_bbox_size": 0}},
		{detnasStep2, "algorithm.architecture.model.train_cfg.rcnn.assigner.match_low_quality", false},
		{detnasStep2, "algorithm.architecture.model.train_cfg.rcnn.assigner.pos_iou_thr", 0.5},
		{detnasStep2, "algorithm.architecture.model.train_cfg.rcnn.sampler", map[string]any{
			"type": "RandomSampler", "num": 512, "pos_fraction": 0.25, "neg_pos_ub": -1, "add_gt_as_proposals": true}},
		{detnasStep2, "algorithm.architecture.model.test_cfg.rpn.nms_pre", 1000},
		{detnasStep2, "algorithm.architecture.model.test_cfg.rpn.nms.iou_threshold", 0.7},
		{detnasStep2, "algorithm.architecture.model.test_cfg.rcnn", map[string]any{
			"score_thr": 0.05, "nms": map[string]any{"type": "nms", "iou_threshold": 0.5}, "max_per_img": 100}},
		{detnasStep2, "algorithm.mutator.placeholder_mapping.all_blocks.choices.shuffle_7x7",
			map[string]any{"type": "ShuffleBlock", "kernel_size": 7, "norm_cfg": map[string]any{"type": "SyncBN", "requires_grad": true}}},
		{detnasStep2, "optimizer", map[string]any{"type": "SGD", "lr": 0.02, "momentum": 0.9, "weight_decay": 0.0001}},
		{detnasStep2, "lr_config", map[string]any{"policy": "step", "warmup": "linear", "warmup_iters": 500,
			"warmup_ratio": 0.001, "step": []any{8, 11}}},
		{detnasStep2, "runner", map[string]any{"type": "EpochBasedRunner", "max_epochs": 12}},
		{detnasStep2, "log_config.interval", 50},
		{detnasStep2, "custom_hooks", []any{map[string]any{"type": "NumClassCheckHook"}}},
		{detnasStep2, "load_from", nil},
		{detnasStep2, "resume_from", nil},
		{detnasStep2, "find_unused_parameters", true},
		{detnasStep2, "data.samples_per_gpu", 2},
		{detnasStep2, "data.train.type", "CocoDataset"},
		{detnasStep2, "data.train.ann_file", "data/coco/annotations/instances_train2017.json"},
		{detnasStep2, "data.train.img_prefix", "data/coco/train2017/"},
		{detnasStep2, "data.val.ann_file", "data/coco/annotations/instances_val2017.json"},
		{detnasStep2, "data.test.img_prefix", "data/coco/val2017/"},
		{detnasStep2, "data.train.pipeline.2", map[string]any{"type": "Resize", "img_scale": []any{1333, 800}, "keep_ratio": true}},
		{detnasStep2, "data.train.pipeline.3", map[string]any{"type": "RandomFlip", "flip_ratio": 0.5}},
		{detnasStep2, "data.train.pipeline.5", map[string]any{"type": "Pad", "size_divisor": 32}},
		{detnasStep2, "data.train.pipeline.7.keys", []any{"img", "gt_bboxes", "gt_labels"}},
		{detnasStep2, "data.test.pipeline.1.img_scale", []any{1333, 800}},
		{detnasStep2, "data.test.pipeline.1.flip", false},
		{detnasStep2, "data.val.pipeline.1.transforms.2.mean", []any{123.675, 116.28, 103.53}},
		{detnasStep2, "evaluation", map[string]any{"interval": 1, "metric": "bbox"}},

		// DetNAS step 3: search scored by bbox mAP under 300M FLOPs.
		{detnasStep3, "searcher", map[string]any{"type": "EvolutionSearcher", "metrics": "bbox", "score_key": "bbox_mAP",
			"constraints": map[string]any{"flops": 300e6}, "candidate_pool_size": 50, "candidate_top_k": 10,
			"max_epoch": 20, "num_mutation": 20, "num_crossover": 20, "mutate_prob": 0.1}},
		{detnasStep3, "data.samples_per_gpu", 128},
		{detnasStep3, "data.workers_per_gpu", 8},
		{detnasStep3, "data.test.ann_file", "data/coco/annotations/instances_val2017.json"},
		{detnasStep3, "algorithm.bn_training_mode", true},
		{detnasStep3, "algorithm.retraining", false},
		{detnasStep3, "algorithm.architecture.model.backbone.with_last_layer", false},

		// DetNAS steps 4 and 5: retraining the searched subnet.
		{detnasStep4, "algorithm.type", "SPOS"},
		{detnasStep4, "algorithm.retraining", true},
		{detnasStep4, "runner.max_iters", 300000},
		{detnasStep4, "find_unused_parameters", false},
		{detnasStep4, "algorithm.architecture.model.backbone.norm_cfg.type", "BN"},
		{detnasStep5, "algorithm.type", "DetNAS"},
		{detnasStep5, "algorithm.retraining", true},
		{detnasStep5, "runner.max_epochs", 12},
		{detnasStep5, "algorithm.architecture.model.neck.in_channels", []any{64, 160, 320, 640}},
	}
	loaded := map[string]*config.Config{}
	for _, tc := range cases {
		c, ok := loaded[tc.file]
		if !ok {
			c = load(t, tc.file)
			loaded[tc.file] = c
		}
		got, ok := c.Get(tc.key)
		if !ok {
			t.Errorf("%s: %s is not set", tc.file, tc.key)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %s = %#v, want %#v", tc.file, tc.key, got, tc.want)
		}
	}
}

// opNames maps the short names of DETNAS.md's subnet tables to op names.
var opNames = map[string]string{
	"3": "shuffle_3x3", "5": "shuffle_5x5", "7": "shuffle_7x7", "X": "shuffle_xception",
}

// stageBlocks is the number of searchable blocks in each ShuffleNetV2 stage.
var stageBlocks = []int{4, 4, 8, 4}

// TestPublishedSubnets checks the two published subnet files block by block,
// and that they keep mmrazor's layout: block style, keys sorted.
func TestPublishedSubnets(t *testing.T) {
	cases := []struct {
		file   string
		stages []string
	}{
		{detnasPublished, []string{"7 5 7 3", "7 5 5 7", "X X 5 X 3 3 X 5", "X 5 X 7"}},
		{sposPaper, []string{"7 5 3 5", "7 3 7 3", "7 3 7 X 3 3 3 3", "X 7 X X"}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			want := map[string]any{}
			var order []string
			for s, ops := range tc.stages {
				fields := strings.Fields(ops)
				if len(fields) != stageBlocks[s] {
					t.Fatalf("stage %d lists %d ops, the search space has %d blocks", s, len(fields), stageBlocks[s])
				}
				for b, op := range fields {
					key := fmt.Sprintf("stage_%d_block_%d", s, b)
					want[key] = map[string]any{"chosen": []any{opNames[op]}}
					order = append(order, key)
				}
			}
			if len(want) != 20 {
				t.Fatalf("expected subnet has %d blocks, want 20", len(want))
			}
			c := load(t, tc.file)
			if !reflect.DeepEqual(c.Tree(), want) {
				t.Errorf("subnet = %v\nwant %v", c.Tree(), want)
			}

			raw, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			var doc yaml.Node
			if err := yaml.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			top := doc.Content[0]
			var keys []string
			for i := 0; i < len(top.Content); i += 2 {
				keys = append(keys, top.Content[i].Value)
				block := top.Content[i+1]
				if block.Style&yaml.FlowStyle != 0 || len(block.Content) != 2 ||
					block.Content[1].Kind != yaml.SequenceNode || block.Content[1].Style&yaml.FlowStyle != 0 {
					t.Errorf("%s is not written as `chosen:` over a block list", top.Content[i].Value)
				}
			}
			if !reflect.DeepEqual(keys, order) {
				t.Errorf("keys in the file are %v, want sorted %v", keys, order)
			}
		})
	}
}

// TestSubnetConfigsUseShippedSubnets checks that each retraining config's
// mutable_cfg is the published subnet file beside it.
func TestSubnetConfigsUseShippedSubnets(t *testing.T) {
	cases := []struct{ file, subnet string }{
		{sposSubnet, sposPaper},
		{detnasStep4, detnasPublished},
		{detnasStep5, detnasPublished},
	}
	for _, tc := range cases {
		c := load(t, tc.file)
		want, err := filepath.Abs(tc.subnet)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"algorithm.mutable_cfg", "mutable_cfg"} {
			got, _ := c.Get(key)
			if got != want {
				t.Errorf("%s: %s = %v, want %s", tc.file, key, got, want)
			}
		}
	}
}

// same maps each key to v.
func same(v any, keys ...string) map[string]any {
	m := make(map[string]any, len(keys))
	for _, k := range keys {
		m[k] = v
	}
	return m
}

// TestOverrideReachesEveryPlace checks that overriding one key changes every
// place that refers to it, with no warning about unknown keys.
func TestOverrideReachesEveryPlace(t *testing.T) {
	choices := "algorithm.mutator.placeholder_mapping.all_blocks.choices."
	viewChoices := "mutator.placeholder_mapping.all_blocks.choices."
	cases := []struct {
		file     string
		override string
		want     map[string]any
	}{
		{sposSupernet, "norm_cfg.type=SyncBN", same("SyncBN",
			"algorithm.architecture.model.backbone.norm_cfg.type",
			choices+"shuffle_3x3.norm_cfg.type", choices+"shuffle_5x5.norm_cfg.type",
			choices+"shuffle_7x7.norm_cfg.type", choices+"shuffle_xception.norm_cfg.type",
			"model.backbone.norm_cfg.type", viewChoices+"shuffle_xception.norm_cfg.type")},
		{detnasStep4, "norm_cfg.type=SyncBN", same("SyncBN",
			"algorithm.architecture.model.backbone.norm_cfg.type", choices+"shuffle_3x3.norm_cfg.type")},
		{detnasStep2, "norm_cfg.type=BN", same("BN",
			"algorithm.architecture.model.backbone.norm_cfg.type",
			"algorithm.architecture.model.neck.norm_cfg.type",
			"algorithm.architecture.model.roi_head.bbox_head.norm_cfg.type",
			choices+"shuffle_3x3.norm_cfg.type", choices+"shuffle_5x5.norm_cfg.type",
			choices+"shuffle_7x7.norm_cfg.type", choices+"shuffle_xception.norm_cfg.type",
			"model.neck.norm_cfg.type", viewChoices+"shuffle_7x7.norm_cfg.type")},
		{detnasStep3, "norm_cfg.requires_grad=false", same(false,
			"algorithm.architecture.model.backbone.norm_cfg.requires_grad",
			"algorithm.architecture.model.roi_head.bbox_head.norm_cfg.requires_grad",
			choices+"shuffle_xception.norm_cfg.requires_grad")},
		{detnasStep2, "algorithm.architecture.model.backbone.widen_factor=1.5", same(1.5,
			"algorithm.architecture.model.backbone.widen_factor", "model.backbone.widen_factor")},
		{detnasStep1, "algorithm.architecture.model.backbone.widen_factor=1.5", same(1.5,
			"algorithm.architecture.model.backbone.widen_factor", "model.backbone.widen_factor")},
		{detnasStep5, "data_root=/datasets/coco/", map[string]any{
			"data.train.ann_file":   "/datasets/coco/annotations/instances_train2017.json",
			"data.train.img_prefix": "/datasets/coco/train2017/",
			"data.val.ann_file":     "/datasets/coco/annotations/instances_val2017.json",
			"data.val.img_prefix":   "/datasets/coco/val2017/",
			"data.test.ann_file":    "/datasets/coco/annotations/instances_val2017.json",
			"data.test.img_prefix":  "/datasets/coco/val2017/",
		}},
		{sposSupernet, "img_norm_cfg.to_rgb=false", same(false,
			"data.train.pipeline.4.to_rgb", "data.val.pipeline.3.to_rgb", "data.test.pipeline.3.to_rgb",
			"train_pipeline.4.to_rgb", "test_pipeline.3.to_rgb")},
		{detnasStep2, "img_norm_cfg.mean=[0,0,0]", same([]any{0, 0, 0},
			"data.train.pipeline.4.mean", "data.val.pipeline.1.transforms.2.mean",
			"data.test.pipeline.1.transforms.2.mean")},
		{sposSearch, "dataset_type=ImageList", same("ImageList",
			"data.train.type", "data.val.type", "data.test.type")},
		{detnasStep3, "dataset_type=CocoSubset", same("CocoSubset",
			"data.train.type", "data.val.type", "data.test.type")},
		{sposSupernet, "test_pipeline.2.crop_size=192", same(192,
			"data.val.pipeline.2.crop_size", "data.test.pipeline.2.crop_size")},
		{sposSupernet, "data.train.pipeline.3.flip_prob=0.0", same(0.0,
			"data.train.pipeline.3.flip_prob", "train_pipeline.3.flip_prob")},
		{detnasStep1, "optimizer.paramwise_cfg.norm_decay_mult=1.0", same(1.0,
			"optimizer.paramwise_cfg.norm_decay_mult", "paramwise_cfg.norm_decay_mult")},
		{detnasStep5, "mutable_cfg=work_dirs/search/final_subnet.yaml", same("work_dirs/search/final_subnet.yaml",
			"algorithm.mutable_cfg")},
		{detnasStep4, "algorithm.mutable_cfg=work_dirs/search/final_subnet.yaml", same("work_dirs/search/final_subnet.yaml",
			"algorithm.mutable_cfg")},
	}
	for _, tc := range cases {
		t.Run(tc.file+" "+tc.override, func(t *testing.T) {
			c := load(t, tc.file, tc.override)
			for key, want := range tc.want {
				if got, _ := c.Get(key); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", key, got, want)
				}
			}
		})
	}
}

// TestOverrideThroughViewIsRefused checks that the reference's helper names
// kept as read-only views refuse a nested override, naming the key to use,
// instead of silently leaving the real value unchanged.
func TestOverrideThroughViewIsRefused(t *testing.T) {
	cases := []struct{ file, override, source string }{
		{sposSupernet, "model.backbone.widen_factor=1.5", "algorithm.architecture.model"},
		{detnasStep2, "model.backbone.widen_factor=1.5", "algorithm.architecture.model"},
		{detnasStep2, "mutator.placeholder_mapping.all_blocks.type=OneShotOP", "algorithm.mutator"},
		{sposSupernet, "train_pipeline.3.flip_prob=0.0", "data.train.pipeline"},
		{detnasStep1, "paramwise_cfg.norm_decay_mult=1.0", "optimizer.paramwise_cfg"},
	}
	for _, tc := range cases {
		_, err := config.Load(tc.file, config.Options{Overrides: []string{tc.override}})
		if err == nil {
			t.Errorf("%s with %s: loaded, want an error naming %s", tc.file, tc.override, tc.source)
			continue
		}
		if !strings.Contains(err.Error(), "${ "+tc.source+" }") {
			t.Errorf("%s with %s: error %q does not name %s", tc.file, tc.override, err, tc.source)
		}
	}
}

// TestPipelines checks each pipeline's steps as the pipeline tool plans
// them, and that every step's config loads with the step's overrides (a
// reference to an earlier step's output stands in as a path) without a
// warning, so no override names a key the step's config lacks.
func TestPipelines(t *testing.T) {
	cases := []struct {
		file  string
		steps []string // name:tool
		// want are values of a step's loaded config.
		want map[string]map[string]any
		// created are overrides a step may make of keys its config lacks.
		created map[string]string
	}{
		{"nas/spos/spos_pipeline_mnist.yaml",
			[]string{"supernet:train", "search:search", "retrain:train", "test:test"},
			map[string]map[string]any{
				"retrain": {"algorithm.mutable_cfg": "/from/search/best_subnet", "algorithm.retraining": true},
				"test":    {"algorithm.mutable_cfg": "/from/search/best_subnet", "algorithm.input_shape": []any{3, 32, 32}},
			}, nil},
		{"nas/detnas/detnas_pipeline.yaml",
			[]string{"supernet_in1k:train", "supernet_coco:train", "search:search", "subnet_in1k:train", "subnet_coco:train"},
			map[string]map[string]any{
				"supernet_coco": {"load_from": "/from/supernet_in1k/checkpoint", "algorithm.type": "DetNAS"},
				"subnet_in1k":   {"algorithm.mutable_cfg": "/from/search/best_subnet", "algorithm.type": "SPOS"},
				"subnet_coco":   {"algorithm.mutable_cfg": "/from/search/best_subnet", "load_from": "/from/subnet_in1k/checkpoint"},
			}, nil},
		{"nas/detnas/detnas_pipeline_mnist.yaml",
			[]string{"data:make_mnist_det", "supernet_cls:train", "supernet_det:train", "search:search", "subnet_cls:train", "subnet_det:train", "test:test", "show:infer"},
			map[string]map[string]any{
				"supernet_det": {"load_from": "/from/supernet_cls/checkpoint", "runner.max_epochs": 4, "evaluation.num_subnets": 3, "algorithm.input_shape": []any{3, 256, 256}},
				"search":       {"searcher.eval_split": "search", "data.search.ann_file": "data/mnist_det/annotations/instances_search.json"},
				"subnet_cls":   {"algorithm.mutable_cfg": "/from/search/best_subnet", "algorithm.retraining": true},
				"subnet_det":   {"algorithm.mutable_cfg": "/from/search/best_subnet", "load_from": "/from/subnet_cls/checkpoint", "runner.max_epochs": 5, "lr_config.step": []any{4}},
				"show":         {"algorithm.mutable_cfg": "/from/search/best_subnet"},
			}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			cmds, err := pipeline.Plan(load(t, tc.file), cli.PipelineTools(), "work", func(step, output string) string {
				return "/from/" + step + "/" + output
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range cmds {
				got = append(got, c.Step+":"+c.Tool)
			}
			if !reflect.DeepEqual(got, tc.steps) {
				t.Fatalf("steps %v, want %v", got, tc.steps)
			}
			for _, c := range cmds {
				if c.Tool == "make_mnist_det" {
					continue // a data maker takes no config
				}
				if !filepath.IsAbs(c.Config) {
					t.Errorf("step %s: config %q is not beside the pipeline ({{fileDirname}})", c.Step, c.Config)
				}
				cfg, err := config.Load(c.Config, config.Options{Overrides: c.CfgOptions})
				if err != nil {
					t.Fatalf("step %s: %v", c.Step, err)
				}
				for _, w := range cfg.Warnings {
					if key, ok := tc.created[c.Step]; !ok || !strings.Contains(w, "no config file sets "+key+";") {
						t.Errorf("step %s: %s", c.Step, w)
					}
				}
				for key, want := range tc.want[c.Step] {
					if v, _ := cfg.Get(key); !reflect.DeepEqual(v, want) {
						t.Errorf("step %s: %s = %v, want %v", c.Step, key, v, want)
					}
				}
				if (c.Tool == "train" || c.Tool == "search") && !strings.HasSuffix(strings.Join(c.Args, " "), " --seed 0") {
					t.Errorf("step %s: args %q do not end with the pipeline's seed", c.Step, c.Args)
				}
			}
		})
	}
}
