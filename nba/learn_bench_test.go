package nba_test

import (
	"fmt"
	"strings"
	"testing"

	"nba/nba"
)

// BenchmarkDecideLearning measures decisions on the synthetic bundle with
// learning on (ten online features) for each exploration method, beside
// the same catalog without learning in the same run. Thompson's cost grows
// with draws × candidates that can still reach the top ranks.
func BenchmarkDecideLearning(b *testing.B) {
	s := setup(b)
	var feats []string
	for _, f := range s.b.Schema.Fields {
		if f.Kind == nba.KindNumber && len(feats) < 10 {
			feats = append(feats, f.Name)
		}
	}
	explore := func(spec string) string {
		out := ""
		for _, ch := range []string{"web", "app", "email", "sms"} {
			out += fmt.Sprintf("    %s: %s\n", ch, spec)
		}
		return out
	}
	variants := []struct{ name, section string }{
		{"off", ""},
		{"mean", "learning:\n  features: %s\n"},
		{"epsilon", "learning:\n  features: %s\n  explore:\n" + explore("{method: epsilon, epsilon: 0.05}")},
		{"thompson_16", "learning:\n  features: %s\n  explore:\n" + explore("{method: thompson, draws: 16}")},
		{"thompson_64", "learning:\n  features: %s\n  explore:\n" + explore("{method: thompson, draws: 64}")},
		{"thompson_256", "learning:\n  features: %s\n  explore:\n" + explore("{method: thompson, draws: 256}")},
	}
	for _, v := range variants {
		src := string(s.b.Catalog)
		if v.section != "" {
			src += "\n" + fmt.Sprintf(v.section, "["+strings.Join(feats, ", ")+"]")
		}
		cat, err := nba.CompileCatalog("catalog.yaml", []byte(src), nba.Options{Schema: s.b.Schema,
			Models: map[string]nba.Scorer{s.b.ModelName: s.m}})
		if err != nil {
			b.Fatal(err)
		}
		e, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: s.b.Profiles(), History: s.b.History()})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(v.name, func(b *testing.B) {
			var d nba.Decision
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_ = e.Decide(&s.reqs[i%len(s.reqs)], &d)
				i++
			}
		})
	}
}
