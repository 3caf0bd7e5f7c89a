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
func demoWith(t testing.TB, edit func(name string, data []byte) []byte) fs.FS {
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
// used to read "catalog.yaml: actions[3]...", and a manifest's first typo
// ("cannot parse bundle.yaml: [4:3] ...") hid its other problems.
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
		// Three mistakes: strict decoding used to stop at the first.
		fsys := demoWith(t, func(name string, data []byte) []byte {
			if name == ManifestFile {
				data = bytes.Replace(data, []byte("  max_shrink: 0.2\n"), []byte("  max_shrink: lots\n"), 1)
				data = bytes.Replace(data, []byte("  as_of:"), []byte("  asof:"), 1)
				data = append(data, "snapshots: {}\n"...)
			}
			return data
		})
		lines := bytes.Count(fsys.(fstest.MapFS)[ManifestFile].Data, []byte("\n"))
		var got []string
		for _, err := range ValidateBundle(fsys) {
			got = append(got, err.Error())
		}
		want := []string{
			`bundle.yaml:10:3: snapshot: unknown field "asof" (did you mean "as_of"?)`,
			`bundle.yaml:11:15: snapshot.max_shrink: want a number, got a string`,
			ManifestFile + ":" + strconv.Itoa(lines) + `:1: unknown field "snapshots" (did you mean "snapshot"?)`,
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
