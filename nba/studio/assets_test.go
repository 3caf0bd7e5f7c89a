package studio

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestScriptURLsEncoded: in the page's scripts, every value joined to a
// path or a query by string concatenation goes through
// encodeURIComponent, or is one of the few expressions listed here with
// the reason it needs none. Regression test of the customer page's link
// to the explorer, which joined the channel to its query unencoded.
func TestScriptURLsEncoded(t *testing.T) {
	safe := map[string]string{ // file: expression → why it is safe
		"app.js: path":           "api()'s argument: a path its callers built, checked here too",
		"app.js: page":           "a page name of the studio's own table",
		"app.js: k":              "a page name of the studio's own table",
		"explain.js: p.toString": "URLSearchParams, which encodes",
		"funnel.js: p.toString":  "URLSearchParams, which encodes",
	}
	// A string literal that starts a path ("/...") or a query part
	// ("?...", "&...") followed by "+" and the expression joined to it.
	joined := regexp.MustCompile(`(?:"(?:[/?&][^"\\]*)"|'(?:[/?&][^'\\]*)')\s*\+\s*([A-Za-z_$][\w$.]*)`)
	files, err := fs.Glob(assets, "assets/*.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	checked := 0
	for _, name := range files {
		b, err := fs.ReadFile(assets, name)
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimPrefix(name, "assets/")
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range joined.FindAllStringSubmatch(line, -1) {
				checked++
				expr := m[1]
				if expr == "encodeURIComponent" || safe[base+": "+expr] != "" {
					continue
				}
				t.Errorf("%s:%d: %s joins %s to a URL unencoded: use encodeURIComponent", base, i+1, strings.TrimSpace(m[0]), expr)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no URL built by concatenation found: the pattern no longer matches the scripts")
	}
}
