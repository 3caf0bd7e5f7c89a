package nba

import (
	"math"
	"slices"
	"testing"
	"time"
)

// memProfiles is an in-memory Profiles keyed by customer id.
type memProfiles struct {
	schema Schema
	idx    map[string]int
	rows   map[string]Profile
}

func newMemProfiles(schema Schema) *memProfiles {
	m := &memProfiles{schema: schema, idx: map[string]int{}, rows: map[string]Profile{}}
	for i, f := range schema.Fields {
		m.idx[f.Name] = i
	}
	return m
}

// set stores a customer from field values: float64 for numbers, bool,
// time.Time, string for categories.
func (m *memProfiles) set(id string, vals map[string]any) {
	p := Profile{}
	p.reset(len(m.schema.Fields))
	p.Num, p.Str = append([]float64(nil), p.Num...), append([]string(nil), p.Str...)
	for k, v := range vals {
		i, ok := m.idx[k]
		if !ok {
			panic("unknown field " + k)
		}
		switch v := v.(type) {
		case float64:
			p.Num[i] = v
		case int:
			p.Num[i] = float64(v)
		case bool:
			p.Num[i] = 0
			if v {
				p.Num[i] = 1
			}
		case time.Time:
			p.Num[i] = float64(v.Unix())
		case string:
			p.Str[i] = v
			p.Num[i] = float64(len(v)) // a stand-in category code
		}
	}
	m.rows[id] = p
}

func (m *memProfiles) Profile(id string, p *Profile) bool {
	r, ok := m.rows[id]
	if !ok {
		return false
	}
	copy(p.Num, r.Num)
	copy(p.Str, r.Str)
	return true
}

func (m *memProfiles) Version() string { return "mem" }

// contact is one recorded contact in memHistory.
type contact struct {
	action, channel string
	groups          []string
	outcome         Outcome
	at              time.Time
}

// memHistory is an in-memory History.
type memHistory struct {
	by map[string][]contact
}

func newMemHistory() *memHistory { return &memHistory{by: map[string][]contact{}} }

func (h *memHistory) add(customer string, c contact) { h.by[customer] = append(h.by[customer], c) }

func (h *memHistory) Any(customer string) bool { return len(h.by[customer]) > 0 }

func (h *memHistory) Count(customer string, scope Scope, key string, o Outcome, window time.Duration, now time.Time) int {
	n := 0
	for _, c := range h.by[customer] {
		if c.outcome != o || !c.at.After(now.Add(-window)) || c.at.After(now) {
			continue
		}
		switch scope {
		case ScopeAction:
			if c.action == key {
				n++
			}
		case ScopeChannel:
			if c.channel == key {
				n++
			}
		case ScopeGroup:
			for _, g := range c.groups {
				if g == key {
					n++
					break
				}
			}
		}
	}
	return n
}

// Contacts implements ContactLister.
func (h *memHistory) Contacts(customer string, scope Scope, key string, dst []ContactAt) []ContactAt {
	for _, c := range h.by[customer] {
		if (scope == ScopeAction && c.action == key) || (scope == ScopeChannel && c.channel == key) ||
			(scope == ScopeGroup && slices.Contains(c.groups, key)) {
			dst = append(dst, ContactAt{At: c.at.UnixNano(), Outcome: c.outcome})
		}
	}
	return dst
}

// countsOnly hides a History's contact lists: suppressions fall back to
// counts.
type countsOnly struct{ History }

// memJourneys is an in-memory Journeys.
type memJourneys struct {
	by map[string][]JourneyState
}

func (j *memJourneys) Journeys(customer string, dst []JourneyState) []JourneyState {
	return append(dst, j.by[customer]...)
}

// apply persists updates as the server would.
func (j *memJourneys) apply(customer string, us []JourneyUpdate) {
	for _, u := range us {
		found := false
		for i := range j.by[customer] {
			if j.by[customer][i].Journey == u.Journey {
				j.by[customer][i] = u.JourneyState
				found = true
			}
		}
		if !found {
			j.by[customer] = append(j.by[customer], u.JourneyState)
		}
	}
}

// pickModel is a fake propensity model: its prediction is the input named
// by the "pick" feature's value (an index into its features), so tests can
// set each customer's propensity for each action through profile fields.
type pickModel struct{ feats []string }

func (m pickModel) Features() []string { return m.feats }
func (m pickModel) NumOutputs() int    { return 1 }
func (m pickModel) Predict(row, out []float64) {
	// A catalog may leave "pick" unset (NaN) or out of range: score 0.
	p := row[len(row)-1]
	if !(p >= 0 && p < float64(len(row))) {
		out[0] = 0
		return
	}
	i := int(p)
	out[0] = row[i]
	if math.IsNaN(out[0]) {
		out[0] = 0
	}
}

// linModel is a fake logistic model: sigmoid(sum of w_i * x_i), NaN as 0.
type linModel struct {
	feats []string
	w     []float64
}

func (m linModel) Features() []string { return m.feats }
func (m linModel) NumOutputs() int    { return 1 }
func (m linModel) Predict(row, out []float64) {
	s := 0.0
	for i, x := range row {
		if !math.IsNaN(x) {
			s += m.w[i] * x
		}
	}
	out[0] = 1 / (1 + math.Exp(-s))
}

func mustCatalog(t testing.TB, src string, opts Options) *Catalog {
	t.Helper()
	c, err := CompileCatalog("test.yaml", []byte(src), opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustEngine(t testing.TB, c *Catalog, p Profiles, h History, j Journeys) *Engine {
	t.Helper()
	cfg := Config{Catalog: c, Profiles: p}
	if h != nil {
		cfg.History = h
	}
	if j != nil {
		cfg.Journeys = j
	}
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func chosenIDs(d *Decision) []string {
	var out []string
	for _, a := range d.Actions {
		out = append(out, a.Action.ID)
	}
	return out
}
