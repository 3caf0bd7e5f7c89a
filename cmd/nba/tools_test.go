package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// Regression: replay, evaluate, uplift and log on a directory without
// decision logs exited 0 with "0 decisions" or a table of NaN. They must
// fail and say why; given the state directory instead of its decisions
// directory, they say which one was meant.
func TestAnalysisWithoutDecisionLogs(t *testing.T) {
	bundle := exportDemo(t)
	empty := t.TempDir()
	state := t.TempDir()
	decisions := filepath.Join(state, "decisions")
	if err := os.MkdirAll(decisions, 0o755); err != nil {
		t.Fatal(err)
	}
	// A log file without records (a sidecar that stopped before its first
	// batch leaves one).
	if err := os.WriteFile(filepath.Join(decisions, "decisions-20261206T120000.000000000Z-000001.jsonl.zst"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	commands := map[string][]string{
		"replay":   {"replay", "-bundle", bundle},
		"evaluate": {"evaluate", "-bundle", bundle},
		"uplift":   {"uplift"},
		"log":      {"log"},
	}
	for _, name := range []string{"replay", "evaluate", "uplift", "log"} {
		t.Run(name, func(t *testing.T) {
			f := func(dir string, wantCode int, want string) {
				t.Helper()
				args := append(append([]string(nil), commands[name]...), dir)
				code, stdout, stderr := runNBA(t, args...)
				if code != wantCode || !strings.Contains(stderr, want) || strings.Contains(stdout, "NaN") {
					t.Errorf("nba %s: exit %d, want %d with %q; stdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, want, stdout, stderr)
				}
			}
			f(empty, 1, "no decision logs in "+empty)
			f(state, 1, "did you mean "+decisions+"?")
			switch name {
			case "log":
				f(decisions, 0, "1 files, 0 records")
			case "evaluate":
				f(decisions, 1, "no decision of "+decisions+" could be used: 0 decisions")
			default:
				f(decisions, 1, "no decisions in the logs of "+decisions)
			}
		})
	}
}

// Help that was asked for goes to stdout (it went to stderr, so
// "nba help serve | less" showed nothing), exits 0, and every command's
// help has an example.
func TestHelp(t *testing.T) {
	code, stdout, stderr := runNBA(t, "help")
	if code != 0 || stderr != "" || !strings.Contains(stdout, "Commands:") {
		t.Errorf("nba help: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, c := range commands {
		if !strings.Contains(stdout, "\n  "+c.name+" ") {
			t.Errorf("nba help does not list %s", c.name)
		}
		for _, args := range [][]string{{"help", c.name}, {c.name, "-h"}} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, stdout, stderr := runNBA(t, args...)
				if code != 0 || stderr != "" {
					t.Errorf("exit %d, stderr %q", code, stderr)
				}
				_, example, _ := strings.Cut(stdout, "\nExample")
				if !strings.Contains(stdout, "Usage: nba "+c.name) || !strings.Contains(example, "nba "+c.name) {
					t.Errorf("help without usage or an example of nba %s:\n%s", c.name, stdout)
				}
			})
		}
	}
	// Mistakes stay on stderr with a non-zero exit.
	if code, stdout, stderr := runNBA(t, "nosuch"); code != 2 || stdout != "" || !strings.Contains(stderr, `unknown command "nosuch"`) {
		t.Errorf("nba nosuch: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if code, stdout, stderr := runNBA(t, "batch", "-nosuch"); code == 0 || stdout != "" || !strings.Contains(stderr, "-nosuch") {
		t.Errorf("nba batch -nosuch: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, stderr := runNBA(t, "version")
	if code != 0 || stderr != "" {
		t.Fatalf("nba version: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"nba ", "\ngo       go1.", "\nmodule   github.com/valyala/fasthttp v1.74.0\n", "\nmodule   github.com/goccy/go-yaml v"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("nba version lacks %q:\n%s", want, stdout)
		}
	}
	if _, v, _ := runNBA(t, "--version"); v != stdout {
		t.Errorf("nba --version differs from nba version:\n%s", v)
	}
}

func TestWriteVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "nba", Version: "v0.3.0"},
		Deps: []*debug.Module{{Path: "github.com/valyala/fasthttp", Version: "v1.74.0"},
			{Path: "example.com/x", Version: "v1.0.0", Replace: &debug.Module{Path: "../x"}}},
		Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
			{Key: "vcs.revision", Value: "919a4c1"}, {Key: "vcs.time", Value: "2026-12-06T21:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	f := func(set string, mods bool, want string) {
		t.Helper()
		old := version
		version = set
		defer func() { version = old }()
		var b strings.Builder
		writeVersion(&b, bi, mods)
		if b.String() != want {
			t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
		}
	}
	head := "commit   919a4c1 (modified) 2026-12-06T21:00:00Z\ngo       go1.26.0 linux/arm64\n"
	f("", true, "nba v0.3.0\n"+head+"module   github.com/valyala/fasthttp v1.74.0\nmodule   example.com/x v1.0.0 => ../x \n")
	f("v1.0.0-rc1", false, "nba v1.0.0-rc1\n"+head)
}
