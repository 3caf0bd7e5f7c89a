package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nba/bench/bundlegen"
)

func TestCheckCustomers(t *testing.T) {
	known := map[string]bool{}
	for i := range 1000 {
		known[fmt.Sprintf("c%08d", i)] = true
	}
	f := func(format string, n int, want string) {
		t.Helper()
		err := checkCustomers(func(id string) bool { return known[id] }, format, n)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("checkCustomers(%q, %d) = %v, want %q", format, n, err, want)
		}
	}
	f("c%08d", 1000, "")
	f("c%08d", 1, "")
	f("cust-%d", 1000, `64 of 64 sampled customer ids are not in the bundle's snapshot (first "cust-0"`)
	f("c%08d", 1001, `1 of 64 sampled customer ids are not in the bundle's snapshot (first "c00001000"`) // one past the end
	f("c%d", 5, `5 of 5 sampled`)                                                                        // a near miss of the format
}

// Regression: with the default -customer.format cust-%d against a bench/gen
// bundle (ids c%08d), every request was for an unknown customer, decided as
// anonymous, and the run measured that. The bundle now says its id format,
// and a run whose ids the snapshot does not know is refused before it starts.
func TestLoadRefusesUnknownCustomers(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a bundle and drives it")
	}
	b, err := bundlegen.Generate(bundlegen.Config{Customers: 200, Actions: 10, Trees: 4, Depth: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, bundlegen.IDFormatFile)); err != nil || string(data) != "c%08d\n" {
		t.Fatalf("customer.format: %q, %v", data, err)
	}
	common := []string{"-bundle", dir, "-d", "100ms", "-rounds", "1", "-c", "2", "-decisionlog", "off"}
	f := func(extra []string, want string) {
		t.Helper()
		var out bytes.Buffer
		err := run(append(append([]string(nil), common...), extra...), &out)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("%v: %v, want %q\n%s", extra, err, want, out.String())
		}
	}
	f([]string{"-customers", "200", "-customer.format", "cust-%d"}, "64 of 64 sampled customer ids are not in the bundle's snapshot")
	f([]string{"-customers", "300"}, "sampled customer ids are not in the bundle's snapshot") // more than the bundle has
	f([]string{"-customers", "200"}, "")                                                      // the bundle's own format

	// A bundle without the file: the fake's default format is checked too.
	if err := os.Remove(filepath.Join(dir, bundlegen.IDFormatFile)); err != nil {
		t.Fatal(err)
	}
	f([]string{"-customers", "200"}, `first "cust-0"`)
}
