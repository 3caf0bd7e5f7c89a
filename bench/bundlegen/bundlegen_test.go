package bundlegen

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"nba/model"
	"nba/nba"
)

func TestGenerateLoadsAndDecides(t *testing.T) {
	b, err := Generate(Config{Customers: 500, Actions: 60, Trees: 20})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse("propensity.json", b.Model)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Features(); len(got) != 40 || got[0] != "age" || got[39] != "a7" {
		t.Fatalf("model features %v", got)
	}
	if m.Info().Trees != 20 {
		t.Fatalf("trees %d", m.Info().Trees)
	}
	opts := nba.Options{Schema: b.Schema, Models: map[string]nba.Scorer{b.ModelName: m}}
	cat, err := nba.CompileCatalog("catalog.yaml", b.Catalog, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Actions()) != 61 {
		t.Fatalf("%d actions", len(cat.Actions()))
	}
	e, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: b.Profiles(), History: b.History()})
	if err != nil {
		t.Fatal(err)
	}
	chosen, withHistory := 0, 0
	var d nba.Decision
	for i := 0; i < 500; i++ {
		id := CustomerID(i)
		if b.History().Any(id) {
			withHistory++
		}
		ch := Channels[i%len(Channels)]
		req := &nba.Request{Customer: id, Channel: ch, Placement: Placements[ch][0], Limit: 2, Now: b.Config.Now,
			Context: []nba.ContextValue{{Key: "page", Str: Pages[i%len(Pages)]}, {Key: "basket", Num: float64(i % 100)}}}
		if err := e.Decide(req, &d); err != nil {
			t.Fatal(err)
		}
		for _, a := range d.Actions {
			if !a.Fallback && (a.Propensity <= 0 || a.Propensity >= 1 || math.IsNaN(a.Priority)) {
				t.Fatalf("%s: bad scores %+v", id, a)
			}
		}
		if len(d.Actions) > 0 && !d.Actions[0].Fallback {
			chosen++
		}
	}
	// Sanity of the generated shapes, not exact values.
	if chosen < 100 {
		t.Errorf("only %d of 500 decisions chose a ranked action", chosen)
	}
	if withHistory < 20 || withHistory > 90 {
		t.Errorf("%d of 500 customers with history, want about 10%%", withHistory)
	}
}

func TestGenerateIsReproducible(t *testing.T) {
	a, _ := Generate(Config{Customers: 50, Actions: 10, Trees: 3, Seed: 7})
	b, _ := Generate(Config{Customers: 50, Actions: 10, Trees: 3, Seed: 7})
	c, _ := Generate(Config{Customers: 50, Actions: 10, Trees: 3, Seed: 8})
	if string(a.Catalog) != string(b.Catalog) || string(a.Model) != string(b.Model) {
		t.Error("same seed, different bundles")
	}
	if string(a.Model) == string(c.Model) {
		t.Error("different seeds, same model")
	}
}

func TestWrite(t *testing.T) {
	b, err := Generate(Config{Customers: 20, Actions: 5, Trees: 2})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"catalog.yaml", "models/propensity.json", "schema.txt", "customers.csv", "contacts.csv"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := model.Load(filepath.Join(dir, "models/propensity.json")); err != nil {
		t.Error(err)
	}
}

func TestConfigRejected(t *testing.T) {
	for _, c := range []Config{{Customers: -1}, {CustomerFeatures: 3}, {HistoryShare: 2}, {Depth: 40}} {
		if _, err := Generate(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
