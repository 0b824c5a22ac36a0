// Package configs holds razor's experiment files: YAML translations of the
// mmrazor 0.x SPOS and DetNAS config tree (nas/spos, nas/detnas) with the
// _base_ files they inherit (datasets, schedules, runtimes), and the two
// published subnets (DETNAS_FRCNN_SHUFFLENETV2_340M_COCO_MMRAZOR.yaml and
// SPOS_SHUFFLENETV2_330M_IN1k_PAPER.yaml) in mmrazor 0.x mutable_cfg form.
//
// The folder has no Go API; its tests load every file with package config
// and check the values the reference sets.
//
// A value the reference keeps in a Python variable and uses in several
// places (norm_cfg, img_norm_cfg, dataset_type, data_root, test_pipeline,
// mutable_cfg) is a top-level key that those places refer to with `${ name }`,
// so one --cfg-options override reaches all of them. A value used in one
// place lives there (algorithm.architecture.model, algorithm.mutator,
// data.train.pipeline, optimizer.paramwise_cfg), which is the key to
// override; its reference name (model, mutator, train_pipeline,
// paramwise_cfg) is kept as a read-only `${ ... }` view of it, so an override
// through the view is an error instead of a silent no-op.
//
// Only its tests import Go packages (config, and tools/cli to run the
// files through a tool); nothing imports it.
package configs
