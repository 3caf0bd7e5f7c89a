package sidecar

import (
	"bytes"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"nba/nba/demo"
)

// demoWith is the demo bundle with some files replaced or edited.
func demoWith(t *testing.T, edit func(name string, data []byte) []byte) fs.FS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(demo.Bundle(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(demo.Bundle(), p)
		if err != nil {
			return err
		}
		out[p] = &fstest.MapFile{Data: edit(p, data)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Bundle problems name the file, line and column once: a catalog problem
// used to read "catalog.yaml: actions[3]...", a manifest typo
// "cannot parse bundle.yaml: [4:3] ...".
func TestValidateBundlePlacesProblems(t *testing.T) {
	t.Run("catalog", func(t *testing.T) {
		fsys := demoWith(t, func(name string, data []byte) []byte {
			if name == "catalog.yaml" {
				data = bytes.Replace(data, []byte("    lever: 1.2\n"), []byte("    levr: 1.2\n"), 1)
			}
			return data
		})
		errs := ValidateBundle(fsys)
		if len(errs) != 1 {
			t.Fatalf("want 1 problem, got %v", errs)
		}
		const want = `group "up_sell": unknown field "levr" (did you mean "lever"?)`
		got := errs[0].Error()
		if !strings.HasPrefix(got, "catalog.yaml:") || !strings.HasSuffix(got, ": "+want) || strings.Count(got, "catalog.yaml") != 1 {
			t.Errorf("got %q, want catalog.yaml:LINE:COL: %s", got, want)
		}
	})
	t.Run("manifest", func(t *testing.T) {
		fsys := demoWith(t, func(name string, data []byte) []byte {
			if name == ManifestFile {
				data = append(data, "snapshots: {}\n"...)
			}
			return data
		})
		lines := bytes.Count(fsys.(fstest.MapFS)[ManifestFile].Data, []byte("\n"))
		errs := ValidateBundle(fsys)
		want := ManifestFile + ":" + strconv.Itoa(lines) + ":1: unknown field \"snapshots\""
		if len(errs) != 1 || errs[0].Error() != want {
			t.Errorf("got %v, want %q", errs, want)
		}
	})
}
