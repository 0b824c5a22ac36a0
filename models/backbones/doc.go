// Package backbones holds the backbones razor builds from configs and the
// candidate ops of their searchable blocks: SearchableShuffleNetV2 (the
// DetNAS/SPOS search space) with ShuffleBlock and ShuffleXception. Weights
// are named exactly as in the reference PyTorch checkpoints.
//
// It imports models, models/nn, models/ops and registry. Searchable blocks
// start as nn.Placeholder, so the package needs nothing from mutables,
// which turns placeholders into candidate ops one layer up.
package backbones
