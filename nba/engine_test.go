package nba

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

var testSchema = Schema{Fields: []Field{
	{"age", KindNumber},
	{"birth_date", KindTime},
	{"signup", KindTime},
	{"clv", KindNumber},
	{"in_arrears", KindBool},
	{"ticket_open", KindBool},
	{"segment", KindCategory},
	{"tz_offset", KindNumber},
	{"orders_since_cart", KindNumber},
	{"aff_birthday", KindNumber},
	{"aff_welcome", KindNumber},
	{"aff_xsell", KindNumber},
}}

// pick model inputs: the three affinities, then the action's "pick" index.
var testModels = map[string]Scorer{
	"propensity": pickModel{feats: []string{"aff_birthday", "aff_welcome", "aff_xsell", "pick"}},
}

var testOpts = Options{Schema: testSchema, Models: testModels, ModelVersions: map[string]string{"propensity": "v1"}}

var monday = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// textbook builds the catalog of the textbook example: a birthday campaign,
// a three-step welcome series and a cross-sell, all valid the same day.
// birthdayTier and pinWhen set the birthday's manual priority.
func textbook(birthdayTier int, pinWhen string) string {
	pin := ""
	if pinWhen != "" {
		pin = fmt.Sprintf("\n    pin_when: %q", pinWhen)
	}
	return fmt.Sprintf(`
version: textbook
defaults: {model: propensity}
groups:
  - id: sales
    rules:
      suitable: ["!profile.in_arrears"]
actions:
  - id: birthday
    channels: [web, email]
    tier: %d%s
    features: {pick: 0}
    rules:
      eligible: ["days_to_birthday(profile.birth_date) <= 7"]
    treatments:
      web: {headline: "Happy birthday"}
  - id: welcome_1
    channels: [web, email]
    features: {pick: 1}
  - id: welcome_2
    channels: [web, email]
    features: {pick: 1}
  - id: welcome_3
    channels: [web, email]
    features: {pick: 1}
  - id: cross_sell
    group: sales
    channels: [web, email]
    features: {pick: 2}
journeys:
  - id: welcome
    mode: free
    entry: {event: signup}
    steps:
      - {action: welcome_1}
      - {action: welcome_2, wait: 1d}
      - {action: welcome_3, wait: 1d}
`, birthdayTier, pin)
}

func TestTextbookExample(t *testing.T) {
	// Three customers, each with a birthday today, on day 3 of the welcome
	// series (step 3 due) and eligible for the cross-sell; each prefers a
	// different action.
	type cust struct {
		id      string
		aff     [3]float64 // birthday, welcome, cross-sell
		segment string
	}
	custs := []cust{
		{"c1", [3]float64{0.10, 0.20, 0.60}, "gold"},
		{"c2", [3]float64{0.10, 0.50, 0.30}, "silver"},
		{"c3", [3]float64{0.40, 0.20, 0.30}, "silver"},
	}
	prof := newMemProfiles(testSchema)
	jour := &memJourneys{by: map[string][]JourneyState{}}
	for _, c := range custs {
		prof.set(c.id, map[string]any{
			"birth_date":   time.Date(1990, monday.Month(), monday.Day(), 0, 0, 0, 0, time.UTC),
			"aff_birthday": c.aff[0], "aff_welcome": c.aff[1], "aff_xsell": c.aff[2],
			"segment": c.segment, "in_arrears": false,
		})
		jour.by[c.id] = []JourneyState{{Journey: "welcome", Step: 2, Status: JourneyActive,
			EnteredAt: monday.Add(-48 * time.Hour), LastStepAt: monday.Add(-24 * time.Hour)}}
	}
	names := []string{"birthday", "welcome_3", "cross_sell"}
	bestEV := func(c cust) string {
		best := 0
		for i := range c.aff {
			if c.aff[i] > c.aff[best] {
				best = i
			}
		}
		return names[best]
	}
	tests := []struct {
		name    string
		catalog string
		want    func(c cust) string
	}{
		{"manual priority: birthday wins for everyone", textbook(1, ""), func(cust) string { return "birthday" }},
		{"AI ranking: highest expected value", textbook(0, ""), bestEV},
		{"AI ranking with birthday pinned for gold", textbook(1, `profile.segment == "gold"`), func(c cust) string {
			if c.segment == "gold" {
				return "birthday"
			}
			return bestEV(c)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustEngine(t, mustCatalog(t, tt.catalog, testOpts), prof, nil, jour)
			for _, c := range custs {
				var d Decision
				if err := e.Decide(&Request{Customer: c.id, Channel: "web", Now: monday}, &d); err != nil {
					t.Fatal(err)
				}
				if got := chosenIDs(&d); len(got) != 1 || got[0] != tt.want(c) {
					t.Errorf("%s: got %v, want [%s]", c.id, got, tt.want(c))
				}
			}
		})
	}
	// The welcome step, when given, advances the journey.
	e := mustEngine(t, mustCatalog(t, textbook(0, ""), testOpts), prof, nil, jour)
	var d Decision
	if err := e.Decide(&Request{Customer: "c2", Channel: "web", Now: monday}, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Effects) != 1 || d.Effects[0].Status != JourneyCompleted || d.Effects[0].Step != 3 {
		t.Errorf("effects after the last welcome step: %+v", d.Effects)
	}
	d = Decision{}
	if err := e.Decide(&Request{Customer: "c2", Channel: "web", Now: monday, DryRun: true}, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Effects) != 0 {
		t.Errorf("dry run produced effects: %+v", d.Effects)
	}
}

func TestJourneyStepsInOrder(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"aff_welcome": 0.9})
	jour := &memJourneys{by: map[string][]JourneyState{}}
	e := mustEngine(t, mustCatalog(t, textbook(0, ""), testOpts), prof, nil, jour)
	jour.apply("c", e.OnEvent("c", "signup", nil, monday, nil))
	var got []string
	for day := range 5 {
		var d Decision
		if err := e.Decide(&Request{Customer: "c", Channel: "web", Now: monday.Add(time.Duration(day) * 24 * time.Hour)}, &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join(chosenIDs(&d), ","))
		jour.apply("c", d.Effects)
	}
	want := []string{"welcome_1", "welcome_2", "welcome_3", "cross_sell", "cross_sell"}
	if !slices.Equal(got, want) {
		t.Errorf("days: got %v, want %v", got, want)
	}
	// A second sign-up does not restart it.
	if us := e.OnEvent("c", "signup", nil, monday, nil); len(us) != 0 {
		t.Errorf("re-entry: %+v", us)
	}
}

const journeysCatalog = `
defaults: {model: propensity}
actions:
  - id: birthday
    channels: [web]
    tier: 1
    pin_when: "days_to_birthday(profile.birth_date) == 0"
    features: {pick: 0}
  - id: offer
    channels: [web]
    features: {pick: 2}
  - id: onboard_1
    channels: [web, email]
    features: {pick: 1}
  - id: onboard_2
    channels: [web, email]
    features: {pick: 1}
  - id: cart_1
    channels: [web, email]
    features: {pick: 1}
  - id: cart_2
    channels: [web, email]
    features: {pick: 1}
journeys:
  - id: onboarding
    mode: lock
    entry: {event: signup}
    steps:
      - {action: onboard_1}
      - {action: onboard_2, wait: 3d}
  - id: cart
    mode: free
    entry: {event: cart_abandoned, match: {store: online}}
    exit: {events: [purchase], rule: "profile.orders_since_cart > 0"}
    steps:
      - {action: cart_1}
      - {action: cart_2, wait: 2d}
`

func TestJourneyLockHoldsFreeLetsGo(t *testing.T) {
	prof := newMemProfiles(testSchema)
	// Both customers prefer the offer over any journey step.
	for _, id := range []string{"locked", "free", "locked_bday"} {
		prof.set(id, map[string]any{"aff_welcome": 0.1, "aff_xsell": 0.8, "birth_date": time.Date(1980, 3, 1, 0, 0, 0, 0, time.UTC)})
	}
	prof.set("locked_bday", map[string]any{"aff_welcome": 0.1, "aff_xsell": 0.8,
		"birth_date": time.Date(1980, monday.Month(), monday.Day(), 0, 0, 0, 0, time.UTC)})
	jour := &memJourneys{by: map[string][]JourneyState{}}
	// Step 2 of each is waiting (delivered step 1 a day ago; waits 2-3 days).
	wait := func(j string) []JourneyState {
		return []JourneyState{{Journey: j, Step: 1, Status: JourneyActive, EnteredAt: monday.Add(-24 * time.Hour), LastStepAt: monday.Add(-24 * time.Hour)}}
	}
	jour.by["locked"], jour.by["locked_bday"], jour.by["free"] = wait("onboarding"), wait("onboarding"), wait("cart")
	e := mustEngine(t, mustCatalog(t, journeysCatalog, testOpts), prof, nil, jour)
	tests := []struct {
		customer string
		at       time.Time
		want     string
		reason   string
	}{
		{"locked", monday, "", "journey_hold"},
		{"locked_bday", monday, "birthday", ""},
		{"free", monday, "offer", ""},
		{"locked", monday.Add(2 * 24 * time.Hour), "onboard_2", ""},
		{"free", monday.Add(24 * time.Hour), "offer", ""},
	}
	for _, tt := range tests {
		t.Run(tt.customer+"@"+tt.at.Format("Jan2"), func(t *testing.T) {
			var d Decision
			if err := e.Decide(&Request{Customer: tt.customer, Channel: "web", Now: tt.at, Explain: true}, &d); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(chosenIDs(&d), ",")
			if got != tt.want || (tt.reason != "" && d.Reason != tt.reason) {
				t.Errorf("got %q (%s), want %q (%s); explain %+v", got, d.Reason, tt.want, tt.reason, d.Explain)
			}
		})
	}
}

func TestPurchaseEndsAbandonedCart(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"aff_welcome": 0.9, "aff_xsell": 0.1, "orders_since_cart": 0})
	jour := &memJourneys{by: map[string][]JourneyState{}}
	e := mustEngine(t, mustCatalog(t, journeysCatalog, testOpts), prof, nil, jour)

	if us := e.OnEvent("c", "cart_abandoned", map[string]string{"store": "shop"}, monday, nil); len(us) != 0 {
		t.Fatalf("entry despite a non-matching attribute: %+v", us)
	}
	jour.apply("c", e.OnEvent("c", "cart_abandoned", map[string]string{"store": "online"}, monday, nil))
	var d Decision
	if err := e.Decide(&Request{Customer: "c", Channel: "email", Now: monday}, &d); err != nil {
		t.Fatal(err)
	}
	if got := chosenIDs(&d); !slices.Equal(got, []string{"cart_1"}) {
		t.Fatalf("first cart step: got %v", got)
	}
	jour.apply("c", d.Effects)

	t.Run("by event", func(t *testing.T) {
		us := e.OnEvent("c", "purchase", nil, monday.Add(time.Hour), nil)
		if len(us) != 1 || us[0].Journey != "cart" || us[0].Status != JourneyExited {
			t.Fatalf("purchase: %+v", us)
		}
		j := &memJourneys{by: map[string][]JourneyState{"c": slices.Clone(jour.by["c"])}}
		j.apply("c", us)
		e2 := mustEngine(t, e.Catalog(), prof, nil, j)
		var d Decision
		if err := e2.Decide(&Request{Customer: "c", Channel: "email", Now: monday.Add(3 * 24 * time.Hour)}, &d); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(chosenIDs(&d), "cart_2") {
			t.Errorf("cart_2 given after the purchase")
		}
	})
	t.Run("by rule", func(t *testing.T) {
		p2 := newMemProfiles(testSchema)
		p2.set("c", map[string]any{"aff_welcome": 0.9, "orders_since_cart": 1})
		e2 := mustEngine(t, e.Catalog(), p2, nil, jour)
		var d Decision
		if err := e2.Decide(&Request{Customer: "c", Channel: "email", Now: monday.Add(3 * 24 * time.Hour)}, &d); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(chosenIDs(&d), "cart_2") || len(d.Effects) != 1 || d.Effects[0].Status != JourneyExited {
			t.Errorf("got %v, effects %+v", chosenIDs(&d), d.Effects)
		}
	})
}

const policyCatalog = `
fallback: generic
policies:
  max_per_decision: 3
  channels:
    email:
      - {max: 1, window: 1d}
      - {max: 3, window: 7d}
groups:
  - id: sales
    exclusive: true
    caps: [{max: 5, window: 30d}]
    suppress:
      - {after: reject, pause: 30d}
      - {after: impression, count: 3, without: click, within: 7d, pause: 14d}
    rules:
      suitable: ["!profile.in_arrears", "!profile.ticket_open"]
  - id: service
actions:
  - id: card
    group: sales
    channels: [web, app, email]
    caps: [{max: 2, window: 7d}]
    value: "profile.clv * 0.5"
  - id: loan
    group: sales
    channels: [web, app, email]
    value: 10
  - id: service_recovery
    group: service
    channels: [web, app, agent, email]
    tier: 1
    rules:
      applicable: ["profile.ticket_open"]
  - id: tips
    group: service
    channels: [web, app, email]
    value: 1
  - id: generic
    channels: [web, app, agent, email]
    rules:
      eligible: ["false"]
`

func TestContactPolicies(t *testing.T) {
	prof := newMemProfiles(testSchema)
	hist := newMemHistory()
	day := 24 * time.Hour
	add := func(c, action, ch string, o Outcome, ago time.Duration) {
		var g []string
		if action == "card" || action == "loan" {
			g = []string{"sales"}
		}
		hist.add(c, contact{action: action, channel: ch, groups: g, outcome: o, at: monday.Add(-ago)})
	}
	for _, id := range []string{"fresh", "capped", "once", "rejected", "ignored", "clicked", "group_capped", "emailed", "emailed_week", "arrears", "ticket"} {
		prof.set(id, map[string]any{"clv": 100, "in_arrears": id == "arrears", "ticket_open": id == "ticket"})
	}
	// Caps count across channels: one impression on web and one on app.
	add("capped", "card", "web", Impression, day)
	add("capped", "card", "app", Impression, 2*day)
	add("once", "card", "web", Impression, day)
	add("rejected", "card", "web", Reject, 20*day)
	// Three impressions 8-10 days ago: outside the 2/7d cap, inside the
	// "3 impressions without a click in 7 days, pause 14 days" rule.
	for i := range 3 {
		add("ignored", "card", "app", Impression, time.Duration(i+8)*day)
		add("clicked", "card", "app", Impression, time.Duration(i+8)*day)
	}
	add("clicked", "card", "app", Click, 9*day)
	for i := range 5 {
		add("group_capped", "loan", "web", Impression, time.Duration(i+10)*day)
	}
	add("emailed", "tips", "email", Impression, time.Hour)
	for i := range 3 {
		add("emailed_week", "tips", "email", Impression, time.Duration(i+2)*day)
	}
	e := mustEngine(t, mustCatalog(t, policyCatalog, Options{Schema: testSchema}), prof, hist, nil)
	tests := []struct {
		customer, channel string
		want              string // chosen ids, comma separated
		reason            string
	}{
		{"fresh", "app", "card,tips", ""}, // card (50) beats loan (10): one per exclusive group
		{"once", "app", "card,tips", ""},
		{"capped", "email", "loan,tips", ""}, // 2 card impressions on web+app hit the 2/7d cap
		{"rejected", "web", "loan,tips", ""}, // paused 30 days after a reject
		{"ignored", "app", "loan,tips", ""},  // 3 impressions without a click
		{"clicked", "app", "card,tips", ""},  // the same with a click: not paused
		{"group_capped", "web", "tips", ""},  // 5 group impressions in 30 days
		{"emailed", "email", "", "channel_limit"},
		{"emailed_week", "email", "", "channel_limit"},
		{"emailed", "web", "card,tips", ""},
		{"arrears", "web", "tips", ""},
		{"ticket", "app", "service_recovery,tips", ""},
		{"ticket", "agent", "service_recovery", ""},
		{"fresh", "agent", "generic", "fallback"},
	}
	for _, tt := range tests {
		t.Run(tt.customer+"/"+tt.channel, func(t *testing.T) {
			var d Decision
			if err := e.Decide(&Request{Customer: tt.customer, Channel: tt.channel, Limit: 5, Now: monday, Explain: true}, &d); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(chosenIDs(&d), ",")
			if got != tt.want || (tt.reason != "" && d.Reason != tt.reason) {
				t.Errorf("got %q (%s), want %q (%s)", got, d.Reason, tt.want, tt.reason)
				for _, c := range d.Explain {
					t.Logf("  %s %s %q prio=%v", c.Action, c.Stage, c.Reason, c.Priority)
				}
			}
		})
	}
}

func TestOpenTicketSuppressesSales(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("ok", map[string]any{"clv": 100, "ticket_open": false})
	prof.set("ticket", map[string]any{"clv": 100, "ticket_open": true})
	e := mustEngine(t, mustCatalog(t, policyCatalog, Options{Schema: testSchema}), prof, nil, nil)
	for _, tt := range []struct {
		customer      string
		salesStage    Stage
		serviceChosen bool
	}{
		{"ok", StageChosen, false},
		{"ticket", StageSuitability, true},
	} {
		var d Decision
		if err := e.Decide(&Request{Customer: tt.customer, Channel: "web", Limit: 3, Now: monday, Explain: true}, &d); err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Explain {
			if c.Action == "card" && c.Stage != tt.salesStage {
				t.Errorf("%s: card stage %s (%q), want %s", tt.customer, c.Stage, c.Reason, tt.salesStage)
			}
			if c.Action == "card" && c.Stage == StageSuitability && c.Reason != "!profile.ticket_open" {
				t.Errorf("%s: reason %q", tt.customer, c.Reason)
			}
		}
		got := chosenIDs(&d)
		if (len(got) > 0 && got[0] == "service_recovery") != tt.serviceChosen {
			t.Errorf("%s: got %v", tt.customer, got)
		}
	}
}

func TestHoldout(t *testing.T) {
	const src = `
holdout: {salt: "2026q4", global: 0.1}
actions:
  - id: a
    channels: [web]
    holdout: 0.25
  - id: b
    channels: [web]
    value: 0.5
`
	prof := newMemProfiles(testSchema)
	e := mustEngine(t, mustCatalog(t, src, Options{Schema: testSchema}), prof, nil, nil)
	const n = 20000
	global, actionA := 0, 0
	for i := range n {
		id := fmt.Sprintf("cust-%d", i)
		var d1, d2 Decision
		for _, d := range []*Decision{&d1, &d2} {
			if err := e.Decide(&Request{Customer: id, Channel: "web", Now: monday}, d); err != nil {
				t.Fatal(err)
			}
		}
		if d1.Control != d2.Control || !slices.Equal(chosenIDs(&d1), chosenIDs(&d2)) {
			t.Fatalf("%s: unstable across requests", id)
		}
		if d1.Control != (InHoldout("2026q4", "", id, 0.1) || InHoldout("2026q4", "a", id, 0.25)) {
			t.Fatalf("%s: Control=%v disagrees with InHoldout", id, d1.Control)
		}
		switch {
		case d1.Control && len(d1.Actions) == 0:
			global++
			if len(d1.Withheld) != 1 || d1.Withheld[0].Action.ID != "a" {
				t.Fatalf("%s: withheld %v", id, d1.Withheld)
			}
		case d1.Control:
			actionA++
			if chosenIDs(&d1)[0] != "b" || d1.Withheld[0].Action.ID != "a" {
				t.Fatalf("%s: action holdout gave %v", id, chosenIDs(&d1))
			}
		}
	}
	// Within 5 standard deviations of the configured shares.
	check := func(name string, got int, share float64) {
		t.Helper()
		p := float64(got) / n
		sd := 5 * sqrt(share*(1-share)/n)
		if p < share-sd || p > share+sd {
			t.Errorf("%s share %.4f, want %.3f±%.4f", name, p, share, sd)
		}
	}
	check("global", global, 0.1)
	check("action a among the rest", actionA, 0.9*0.25)
}

func sqrt(x float64) float64 {
	z := x
	for range 30 {
		z = (z + x/z) / 2
	}
	return z
}

func TestDecideDoesNotAllocate(t *testing.T) {
	if RaceEnabled {
		t.Skip("sync.Pool drops objects under the race detector")
	}
	prof := newMemProfiles(testSchema)
	hist := newMemHistory()
	prof.set("c", map[string]any{"clv": 100, "aff_xsell": 0.5})
	hist.add("c", contact{action: "card", channel: "web", groups: []string{"sales"}, outcome: Impression, at: monday.Add(-time.Hour)})
	for i := range 3 { // the suppression reads loan's contact sequence
		hist.add("c", contact{action: "loan", channel: "web", groups: []string{"sales"}, outcome: Impression, at: monday.Add(-time.Duration(i+2) * 24 * time.Hour)})
	}
	jour := &memJourneys{by: map[string][]JourneyState{"c": {{Journey: "welcome", Step: 1, Status: JourneyActive, EnteredAt: monday.Add(-48 * time.Hour), LastStepAt: monday.Add(-48 * time.Hour)}}}}
	for name, e := range map[string]*Engine{
		"policies": mustEngine(t, mustCatalog(t, policyCatalog, Options{Schema: testSchema}), prof, hist, nil),
		"textbook": mustEngine(t, mustCatalog(t, textbook(1, `profile.segment == "gold"`), testOpts), prof, hist, jour),
	} {
		t.Run(name, func(t *testing.T) {
			var d Decision
			req := &Request{Customer: "c", Channel: "web", Limit: 3, Now: monday,
				Context: []ContextValue{{Key: "page", Str: "home"}}}
			if err := e.Decide(req, &d); err != nil {
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(200, func() {
				if err := e.Decide(req, &d); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > 0 {
				t.Errorf("Decide allocates %.1f times per call, want 0", allocs)
			}
		})
	}
}

func TestDecisionIDsUnique(t *testing.T) {
	e := mustEngine(t, mustCatalog(t, policyCatalog, Options{Schema: testSchema}), newMemProfiles(testSchema), nil, nil)
	seen := map[string]bool{}
	for range 1000 {
		var d Decision
		if err := e.Decide(&Request{Channel: "web"}, &d); err != nil {
			t.Fatal(err)
		}
		id := d.IDString()
		if seen[id] || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("id %q repeated or not hex", id)
		}
		seen[id] = true
	}
	var d Decision
	if err := e.Decide(&Request{Channel: "fax"}, &d); err != ErrUnknownChannel {
		t.Errorf("unknown channel: err = %v", err)
	}
}

func TestConcurrentDecideAndSwap(t *testing.T) {
	prof := newMemProfiles(testSchema)
	prof.set("c", map[string]any{"clv": 100, "aff_xsell": 0.5, "segment": "gold"})
	cats := []*Catalog{
		mustCatalog(t, policyCatalog, Options{Schema: testSchema}),
		mustCatalog(t, textbook(1, `profile.segment == "gold"`), testOpts),
	}
	e := mustEngine(t, cats[0], prof, newMemHistory(), &memJourneys{by: map[string][]JourneyState{}})
	done := make(chan bool)
	for g := range 4 {
		go func() {
			defer func() { done <- true }()
			var d Decision
			for i := range 300 {
				if err := e.Decide(&Request{Customer: "c", Channel: "web", Limit: 2, Now: monday, Explain: i%2 == 0}, &d); err != nil {
					t.Error(err)
					return
				}
				if len(d.Actions) == 0 {
					t.Errorf("goroutine %d: empty decision (%s)", g, d.Reason)
					return
				}
			}
		}()
	}
	for i := range 100 {
		e.Swap(cats[i%2])
	}
	for range 4 {
		<-done
	}
}

// A per-action holdout once counted the withheld action against the limit,
// so a limit-1 decision for a held-out customer came back empty instead of
// giving the next best action.
func TestRegressionActionHoldoutConsumedLimit(t *testing.T) {
	const src = `
holdout: {salt: s}
actions:
  - {id: a, channels: [web], value: 2, holdout: 0.5}
  - {id: b, channels: [web], value: 1}
`
	e := mustEngine(t, mustCatalog(t, src, Options{Schema: testSchema}), newMemProfiles(testSchema), nil, nil)
	held := 0
	for i := range 200 {
		id := fmt.Sprint("c", i)
		var d Decision
		if err := e.Decide(&Request{Customer: id, Channel: "web", Limit: 1, Now: monday}, &d); err != nil {
			t.Fatal(err)
		}
		want := "a"
		if InHoldout("s", "a", id, 0.5) {
			want = "b"
			held++
		}
		if got := chosenIDs(&d); len(got) != 1 || got[0] != want {
			t.Fatalf("%s: got %v, want [%s]", id, got, want)
		}
	}
	if held == 0 {
		t.Fatal("no customer in the holdout: the test proves nothing")
	}
}

func TestMissingValueScoresZero(t *testing.T) {
	const src = `
actions:
  - {id: by_clv, channels: [web], value: "profile.clv * 2"}
  - {id: by_zero, channels: [web], value: "profile.clv / 0"}
  - {id: flat, channels: [web], value: 0.5}
`
	prof := newMemProfiles(testSchema)
	prof.set("no_clv", map[string]any{})
	prof.set("clv", map[string]any{"clv": 10})
	e := mustEngine(t, mustCatalog(t, src, Options{Schema: testSchema}), prof, nil, nil)
	for _, tt := range []struct{ customer, want string }{{"no_clv", "flat,by_clv,by_zero"}, {"clv", "by_clv,flat,by_zero"}} {
		var d Decision
		if err := e.Decide(&Request{Customer: tt.customer, Channel: "web", Limit: 3, Now: monday}, &d); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(chosenIDs(&d), ","); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.customer, got, tt.want)
		}
		for _, a := range d.Actions {
			if math.IsNaN(a.Priority) || math.IsInf(a.Priority, 0) || math.IsNaN(a.Value) || math.IsInf(a.Value, 0) {
				t.Errorf("%s: %s has a non-finite score %+v", tt.customer, a.Action.ID, a)
			}
		}
	}
}

func TestRuleStages(t *testing.T) {
	const src = `
context: {page: category}
groups:
  - id: credit
    rules: {suitable: ["!profile.in_arrears"]}
actions:
  - id: offer
    group: credit
    channels: [web]
    start: 2026-01-01
    end: 2027-01-01
    placements: [hero]
    rules:
      eligible: ["profile.age >= 18"]
      applicable: ["context.page in [\"cards\", \"home\"]"]
`
	prof := newMemProfiles(testSchema)
	prof.set("adult", map[string]any{"age": 30, "in_arrears": false})
	prof.set("minor", map[string]any{"age": 16, "in_arrears": false})
	prof.set("arrears", map[string]any{"age": 30, "in_arrears": true})
	e := mustEngine(t, mustCatalog(t, src, Options{Schema: testSchema}), prof, nil, nil)
	tests := []struct {
		name, customer, page, placement string
		at                              time.Time
		stage                           Stage
		reason                          string
	}{
		{"chosen", "adult", "cards", "hero", monday, StageChosen, ""},
		{"eligibility", "minor", "cards", "hero", monday, StageEligibility, "profile.age >= 18"},
		{"applicability", "adult", "travel", "hero", monday, StageApplicability, `context.page in ["cards", "home"]`},
		{"suitability from the group", "arrears", "cards", "hero", monday, StageSuitability, "!profile.in_arrears"},
		{"placement", "adult", "cards", "footer", monday, StagePlacement, ""},
		{"schedule", "adult", "cards", "hero", time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), StageSchedule, "after its end"},
		{"before the schedule", "adult", "cards", "hero", time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), StageSchedule, "before its start"},
		{"anonymous fails eligibility", "", "cards", "hero", monday, StageEligibility, "profile.age >= 18"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decision
			req := &Request{Customer: tt.customer, Channel: "web", Placement: tt.placement, Now: tt.at, Explain: true,
				Context: []ContextValue{{Key: "page", Str: tt.page}}}
			if err := e.Decide(req, &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Explain) != 1 || d.Explain[0].Stage != tt.stage || d.Explain[0].Reason != tt.reason {
				t.Fatalf("explain %+v, want stage %s reason %q", d.Explain, tt.stage, tt.reason)
			}
			if (tt.stage == StageChosen) != (len(d.Actions) == 1) {
				t.Errorf("actions %v", chosenIDs(&d))
			}
		})
	}
}

// countingHistory counts the Count calls it answers.
type countingHistory struct {
	memHistory
	calls int
}

func (h *countingHistory) Count(c string, s Scope, k string, o Outcome, w time.Duration, now time.Time) int {
	h.calls++
	return h.memHistory.Count(c, s, k, o, w, now)
}

func TestRulesAndCountsMemoisedPerDecision(t *testing.T) {
	const src = `
groups:
  - id: g
    caps: [{max: 9, window: 1d}]
    rules: {eligible: ["impressions(\"channel\", \"web\", \"1d\") < 5"]}
actions:
  - {id: a, group: g, channels: [web]}
  - {id: b, group: g, channels: [web], rules: {applicable: ["impressions(\"channel\", \"web\", \"1d\") < 5"]}}
  - {id: c, group: g, channels: [web], caps: [{max: 5, window: 1d, outcome: click}]}
`
	h := &countingHistory{memHistory: *newMemHistory()}
	h.add("x", contact{action: "a", channel: "web", groups: []string{"g"}, outcome: Impression, at: monday.Add(-time.Hour)})
	cat := mustCatalog(t, src, Options{Schema: testSchema})
	if n := len(cat.rules); n != 1 {
		t.Errorf("%d compiled rules for one distinct text", n)
	}
	e := mustEngine(t, cat, newMemProfiles(testSchema), h, nil)
	var d Decision
	if err := e.Decide(&Request{Customer: "x", Channel: "web", Limit: 3, Now: monday}, &d); err != nil {
		t.Fatal(err)
	}
	// Distinct counts: channel web impressions, group g impressions, action c clicks.
	if h.calls != 3 || len(d.Actions) != 3 {
		t.Errorf("%d Count calls (want 3), %d actions", h.calls, len(d.Actions))
	}
}
