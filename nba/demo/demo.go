// Package demo embeds the demo bundle that "nba serve" runs without -bundle:
// a retail scenario with 10,000 synthetic customers, about 30 actions (a
// pinned birthday gift, a welcome journey, a locked abandoned-cart journey,
// model-ranked cross-sell, up-sell and win-back, service recovery while a
// ticket is open) and a propensity model trained on synthetic responses.
// The generator (gen/) and training script (train.py) are beside it.
package demo

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

//go:embed bundle
var files embed.FS

// Bundle returns the demo bundle's files.
func Bundle() fs.FS {
	sub, err := fs.Sub(files, "bundle")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Export writes the demo bundle into dir, creating it; it refuses to
// overwrite existing files.
func Export(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot export demo bundle: %w", err)
	}
	return fs.WalkDir(Bundle(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(Bundle(), path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, path)
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("cannot export demo bundle: %w", err)
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return fmt.Errorf("cannot export demo bundle: %w", err)
		}
		return f.Close()
	})
}
