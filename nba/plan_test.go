package nba_test

import (
	"encoding/csv"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"nba/bench/bundlegen"
	"nba/model"
	"nba/nba"
	"nba/nba/demo"
)

// sameDecision compares what two engines decided for one request, scores
// bit for bit (Explain lists every candidate with its propensity).
func sameDecision(t *testing.T, i int, a, b *nba.Decision) {
	t.Helper()
	if a.Reason != b.Reason || a.Control != b.Control || len(a.Actions) != len(b.Actions) ||
		len(a.Withheld) != len(b.Withheld) || len(a.Explain) != len(b.Explain) {
		t.Fatalf("request %d: decisions differ:\nplan:    %+v\nno plan: %+v", i, a, b)
	}
	for k := range a.Actions {
		if a.Actions[k].Action.ID != b.Actions[k].Action.ID {
			t.Fatalf("request %d: action %d is %q with the plan, %q without", i, k, a.Actions[k].Action.ID, b.Actions[k].Action.ID)
		}
	}
	for k := range a.Withheld {
		if a.Withheld[k].Action.ID != b.Withheld[k].Action.ID {
			t.Fatalf("request %d: withheld %d is %q with the plan, %q without", i, k, a.Withheld[k].Action.ID, b.Withheld[k].Action.ID)
		}
	}
	for k := range a.Explain {
		x, y := a.Explain[k], b.Explain[k]
		if x.Action != y.Action || x.Stage != y.Stage || math.Float64bits(x.Propensity) != math.Float64bits(y.Propensity) ||
			math.Float64bits(x.Priority) != math.Float64bits(y.Priority) {
			t.Fatalf("request %d: candidate %d differs:\nplan:    %+v\nno plan: %+v", i, k, x, y)
		}
	}
}

// comparePlans decides every request with a catalog compiled with score
// plans and one without and checks the decisions are the same; it returns
// the number of candidates scored.
func comparePlans(t *testing.T, name string, catalog []byte, opts nba.Options, cfg nba.Config, reqs []nba.Request) uint64 {
	t.Helper()
	with, err := nba.CompileCatalog(name, catalog, opts)
	if err != nil {
		t.Fatal(err)
	}
	if fb := with.PlanFallbacks(); len(fb) > 0 {
		t.Fatalf("models without a plan: %v", fb)
	}
	opts.NoScorePlans = true
	without, err := nba.CompileCatalog(name, catalog, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Catalog = with
	ew, err := nba.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Catalog = without
	eo, err := nba.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var a, b nba.Decision
	for i := range reqs {
		r := reqs[i]
		r.Explain, r.DryRun, r.Seed = true, true, uint64(i+1)
		if err := ew.Decide(&r, &a); err != nil {
			t.Fatal(err)
		}
		if err := eo.Decide(&r, &b); err != nil {
			t.Fatal(err)
		}
		sameDecision(t, i, &a, &b)
	}
	sw, so := ew.Stats(), eo.Stats()
	if sw.Scored != so.Scored || sw.Scored == 0 {
		t.Fatalf("scored %d candidates with the plan, %d without", sw.Scored, so.Scored)
	}
	return sw.Scored
}

func TestPlanDecidesAsRowsOnBenchBundle(t *testing.T) {
	b, err := bundlegen.Generate(bundlegen.Config{Customers: 3000})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse("propensity.json", b.Model)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(11, 12))
	reqs := make([]nba.Request, 3000)
	for i := range reqs {
		ch := bundlegen.Channels[r.IntN(len(bundlegen.Channels))]
		pl := bundlegen.Placements[ch]
		reqs[i] = nba.Request{Customer: bundlegen.CustomerID(r.IntN(b.Config.Customers)), Channel: ch,
			Placement: pl[r.IntN(len(pl))], Limit: 3, Now: b.Config.Now,
			Context: []nba.ContextValue{{Key: "page", Str: bundlegen.Pages[r.IntN(len(bundlegen.Pages))]},
				{Key: "basket", Num: float64(r.IntN(200))}}}
	}
	n := comparePlans(t, "catalog.yaml", b.Catalog, nba.Options{Schema: b.Schema,
		Models: map[string]nba.Scorer{b.ModelName: m}},
		nba.Config{Profiles: b.Profiles(), History: b.History()}, reqs)
	t.Logf("%d candidates scored", n)
}

// demoProfiles holds the demo snapshot's customers, with random values for
// the overlay fields the snapshot does not carry.
type demoProfiles struct {
	rows map[string]nba.Profile
}

func (d *demoProfiles) Profile(id string, p *nba.Profile) bool {
	r, ok := d.rows[id]
	if ok {
		copy(p.Num, r.Num)
		copy(p.Str, r.Str)
	}
	return ok
}

func (d *demoProfiles) Version() string { return "demo" }

// loadDemo reads the demo snapshot's first n customers against a schema of
// its columns and overlay fields.
func loadDemo(t *testing.T, n int) (nba.Schema, *demoProfiles, []string) {
	t.Helper()
	f, err := demo.Bundle().Open("customers.csv.zst")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	cr := csv.NewReader(zr)
	head, err := cr.Read()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]nba.Kind{"email_opt_in": nba.KindBool, "app_installed": nba.KindBool,
		"kids_in_household": nba.KindBool, "in_arrears": nba.KindBool, "loyalty_tier": nba.KindCategory,
		"segment": nba.KindCategory, "region": nba.KindCategory, "birth_date": nba.KindTime, "signup_at": nba.KindTime}
	var schema nba.Schema
	for _, c := range head[1:] {
		k := kinds[c]
		if k == 0 {
			k = nba.KindNumber
		}
		schema.Fields = append(schema.Fields, nba.Field{Name: c, Kind: k})
	}
	overlay := []nba.Field{{Name: "open_ticket", Kind: nba.KindBool}, {Name: "ticket_opened_at", Kind: nba.KindTime},
		{Name: "cart_value", Kind: nba.KindNumber}, {Name: "cart_abandoned_at", Kind: nba.KindTime},
		{Name: "last_purchase_at", Kind: nba.KindTime}, {Name: "orders_since_snapshot", Kind: nba.KindNumber}}
	schema.Fields = append(schema.Fields, overlay...)
	asOf := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	codes := map[string]float64{}
	d := &demoProfiles{rows: map[string]nba.Profile{}}
	var ids []string
	for len(ids) < n {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := nba.Profile{Num: make([]float64, len(schema.Fields)), Str: make([]string, len(schema.Fields))}
		for j, s := range rec[1:] {
			p.Num[j] = math.NaN()
			switch schema.Fields[j].Kind {
			case nba.KindNumber:
				if v, err := strconv.ParseFloat(s, 64); err == nil {
					p.Num[j] = v
				}
			case nba.KindBool:
				if s == "true" {
					p.Num[j] = 1
				} else if s == "false" {
					p.Num[j] = 0
				}
			case nba.KindCategory:
				if s != "" {
					if _, ok := codes[s]; !ok {
						codes[s] = float64(len(codes))
					}
					p.Num[j], p.Str[j] = codes[s], s
				}
			case nba.KindTime:
				for _, layout := range []string{time.RFC3339, "2006-01-02"} {
					if tm, err := time.Parse(layout, s); err == nil {
						p.Num[j] = float64(tm.Unix())
						break
					}
				}
			}
		}
		o := len(head) - 1
		ago := func() float64 { return float64(asOf.Add(-time.Duration(rng.IntN(30*24)) * time.Hour).Unix()) }
		for k := range overlay {
			p.Num[o+k] = math.NaN()
		}
		if rng.IntN(5) == 0 {
			p.Num[o], p.Num[o+1] = 1, ago()
		}
		if rng.IntN(3) == 0 {
			p.Num[o+2], p.Num[o+3] = float64(rng.IntN(300)), ago()
		}
		if rng.IntN(2) == 0 {
			p.Num[o+4], p.Num[o+5] = ago(), float64(rng.IntN(3))
		}
		d.rows[rec[0]] = p
		ids = append(ids, rec[0])
	}
	return schema, d, ids
}

func TestPlanDecidesAsRowsOnDemoBundle(t *testing.T) {
	schema, profiles, ids := loadDemo(t, 3000)
	catalog, err := fs.ReadFile(demo.Bundle(), "catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.ReadFile(demo.Bundle(), "model.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse("model.json", data)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(21, 22))
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	channels := []string{"web", "app", "email", "push", "agent", "sms"}
	pages := []string{"home", "product", "cart", "checkout", "account", ""}
	devices := []string{"mobile", "desktop", ""}
	reqs := make([]nba.Request, 4000)
	for i := range reqs {
		reqs[i] = nba.Request{Customer: ids[r.IntN(len(ids))], Channel: channels[r.IntN(len(channels))],
			Limit: 1 + r.IntN(3), Now: now.Add(time.Duration(r.IntN(48)) * time.Hour),
			Context: []nba.ContextValue{{Key: "page", Str: pages[r.IntN(len(pages))]},
				{Key: "device", Str: devices[r.IntN(len(devices))]}}}
	}
	n := comparePlans(t, "catalog.yaml", catalog, nba.Options{Schema: schema,
		Models: map[string]nba.Scorer{"propensity": m}}, nba.Config{Profiles: profiles}, reqs)
	t.Logf("%d candidates scored", n)
}

// TestPlanFallsBackForLargeTrees: a model whose trees have more leaves than
// a plan takes is scored row by row, and PlanFallbacks says why.
func TestPlanFallsBackForLargeTrees(t *testing.T) {
	b, err := bundlegen.Generate(bundlegen.Config{Customers: 300, Trees: 4, Depth: 9})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse("propensity.json", b.Model)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := nba.CompileCatalog("catalog.yaml", b.Catalog, nba.Options{Schema: b.Schema,
		Models: map[string]nba.Scorer{b.ModelName: m}})
	if err != nil {
		t.Fatal(err)
	}
	fb := cat.PlanFallbacks()
	if len(fb) != 1 || !strings.Contains(fb[0], "more than 256 leaves") {
		t.Fatalf("PlanFallbacks() = %q, want one model with too many leaves", fb)
	}
	e, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: b.Profiles(), History: b.History()})
	if err != nil {
		t.Fatal(err)
	}
	var d nba.Decision
	for i := 0; i < 300; i++ {
		ch := bundlegen.Channels[i%len(bundlegen.Channels)]
		req := nba.Request{Customer: bundlegen.CustomerID(i), Channel: ch, Limit: 3, Now: b.Config.Now,
			Context: []nba.ContextValue{{Key: "page", Str: "home"}}}
		if err := e.Decide(&req, &d); err != nil {
			t.Fatal(err)
		}
	}
	if e.Stats().Scored == 0 {
		t.Error("no candidate was scored")
	}
}
