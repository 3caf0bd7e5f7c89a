package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"nba/nba/demo"
	"nba/nba/server"
	"nba/nba/sidecar"
)

// TestToolsSkipErasedCustomers: after an erasure, nba log, replay,
// evaluate and uplift read none of the erased customer's decision-log
// records: each counts fewer decisions than before, by the erased
// customer's.
func TestToolsSkipErasedCustomers(t *testing.T) {
	dir := t.TempDir()
	open := func() *sidecar.Sidecar {
		s, err := sidecar.Open(sidecar.Config{Bundle: demo.Bundle(), BundleName: "demo", StateDir: dir, Logger: quietLogger(), DecisionLog: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	n := 0 // decisions made; their ids are distinct
	for _, c := range []string{"c00042", "c00042", "c00042", "c00043", "c00044", "c00045"} {
		for _, ch := range []string{"web", "email"} {
			n++
			req := server.DecideRequest{DecisionID: fmt.Sprintf("%032x", n), CustomerID: c, Channel: ch, Limit: 2}
			var resp server.DecideResponse
			if err := s.Decide(&req, &resp); err != nil {
				t.Fatal(err)
			}
		}
	}
	s.Close()
	bundle := exportDemo(t)
	logs := filepath.Join(dir, "decisions")
	tools := map[string][]string{
		"log":      {"log", logs},
		"replay":   {"replay", "-bundle", bundle, logs},
		"evaluate": {"evaluate", "-bundle", bundle, logs},
		"uplift":   {"uplift", logs},
	}
	number := regexp.MustCompile(`(\d+) (records|decisions)`)
	count := func(name string) string {
		t.Helper()
		code, stdout, stderr := runNBA(t, tools[name]...)
		if code != 0 {
			t.Fatalf("nba %s: exit %d\n%s\n%s", name, code, stdout, stderr)
		}
		m := number.FindStringSubmatch(stdout + stderr)
		if m == nil {
			t.Fatalf("nba %s: no count of records or decisions:\n%s\n%s", name, stdout, stderr)
		}
		return m[1]
	}
	before := map[string]string{}
	for name := range tools {
		before[name] = count(name)
	}
	s = open()
	if _, err := s.EraseCustomer("c00042"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for name := range tools {
		after := count(name)
		t.Logf("nba %s: %s before, %s after", name, before[name], after)
		b, _ := strconv.Atoi(before[name])
		a, _ := strconv.Atoi(after)
		if a != b-6 { // c00042's three decisions on two channels
			t.Errorf("nba %s counts %d after erasing c00042, want %d - 6", name, a, b)
		}
		if name == "log" {
			if _, _, stderr := runNBA(t, tools[name]...); !strings.Contains(stderr, "6 records of erased customers skipped") {
				t.Errorf("nba log does not say what it skipped: %s", stderr)
			}
		}
	}
}
