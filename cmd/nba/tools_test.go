package main

import (
	"os"
	"path/filepath"
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
