package config

import (
	"path/filepath"
	"strings"
)

// WorkDir picks where a run keeps its outputs, in mmcv's tools' order:
// dir (a --work-dir flag) when it is not empty, then the config's
// work_dir, then work_dirs/<config file name without extension>. Every
// tool that takes --work-dir resolves it here, so that train, search and a
// pipeline of them agree on where a config's outputs go.
func (c *Config) WorkDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	dir, err := c.String("work_dir", "")
	if err != nil || dir != "" {
		return dir, err
	}
	base := filepath.Base(c.File)
	return filepath.Join("work_dirs", strings.TrimSuffix(base, filepath.Ext(base))), nil
}
