package nba

import (
	"strings"
	"testing"
	"time"
)

// TestRegressionWindowBeyondHistoryCompiled: a cap whose window was longer
// than the history the state counts compiled and was counted over the
// history kept (a 90-day cap counted 8 of 20 impressions). With
// Options.MaxWindow every history window is checked at load: caps of
// actions, groups and channels, suppressions (within+pause) and the
// history counts of rules.
func TestRegressionWindowBeyondHistoryCompiled(t *testing.T) {
	const month = 30 * 24 * time.Hour
	base := func(extra string) string {
		return `
groups:
  - id: g
actions:
  - id: x
    group: g
    channels: [web]
` + extra
	}
	for _, tt := range []struct {
		name, catalog string
		want          string // "" = loads
	}{
		{"action cap", base("    caps: [{max: 5, window: 7d}, {max: 20, window: 90d}]\n"), `caps[1].window: window 90d exceeds the customer history kept (30d)`},
		{"action cap in weeks", base("    caps: [{max: 5, window: 5w}]\n"), `caps[0].window: window 35d exceeds the customer history kept (30d)`},
		{"action cap at the limit", base("    caps: [{max: 5, window: 30d}]\n"), ""},
		{"action cap in hours", base("    caps: [{max: 5, window: 721h}]\n"), `window 721h0m0s exceeds the customer history kept (30d)`},
		{"group cap", strings.Replace(base(""), "  - id: g\n", "  - id: g\n    caps: [{max: 5, window: 60d}]\n", 1), `group "g": caps[0].window: window 60d exceeds`},
		{"channel limit", base("policies:\n  channels:\n    web: [{max: 1, window: 31d}]\n"), `policies.channels.web[0].window: window 31d exceeds`},
		{"pause", base("    suppress: [{after: reject, pause: 45d}]\n"), `suppress[0]: pause 45d exceeds the customer history kept (30d)`},
		{"within and pause", base("    suppress: [{after: impression, count: 3, without: click, within: 20d, pause: 14d}]\n"), `within 20d + pause 14d exceeds`},
		{"within and pause at the limit", base("    suppress: [{after: impression, count: 3, without: click, within: 16d, pause: 14d}]\n"), ""},
		{"rule", base("    rules:\n      eligible: ['impressions(\"action\", \"x\", \"90d\") < 3']\n"), `window 90d exceeds the customer history kept (30d)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileCatalog("c.yaml", []byte(tt.catalog), Options{Schema: testSchema, MaxWindow: month})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want %q", err, tt.want)
			}
			// Without a limit (a History that keeps everything) it loads.
			if _, err := CompileCatalog("c.yaml", []byte(tt.catalog), Options{Schema: testSchema}); err != nil {
				t.Errorf("without MaxWindow: %v", err)
			}
		})
	}
}

// TestSuppressionCatalogErrors: the suppression forms the compiler refuses.
func TestSuppressionCatalogErrors(t *testing.T) {
	for _, tt := range []struct{ sup, want string }{
		{"{after: impression, count: 3, without: click, pause: 14d}", "within: missing window"},
		{"{after: click, count: 3, without: click, within: 7d, pause: 14d}", "without: the same outcome as after"},
		{"{after: impression, count: -1, pause: 14d}", "count -1 out of range"},
		{"{after: impression, count: 1001, within: 7d, pause: 14d}", "count 1001 out of range"},
		{"{after: glance, pause: 14d}", "unknown outcome"},
		{"{after: reject}", "pause: missing window"},
	} {
		cat := "actions:\n  - id: x\n    channels: [web]\n    suppress: [" + tt.sup + "]\n"
		if _, err := CompileCatalog("c.yaml", []byte(cat), Options{Schema: testSchema}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.sup, err, tt.want)
		}
	}
}
