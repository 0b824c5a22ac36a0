// Package backbones holds the backbones razor builds from configs and the
// candidate ops of their searchable blocks: SearchableShuffleNetV2 (the
// DetNAS/SPOS search space) with ShuffleBlock and ShuffleXception. Weights
// are named exactly as in the reference PyTorch checkpoints.
package backbones
