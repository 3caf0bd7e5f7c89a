package evaluate

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"time"

	"nba/nba"
	"nba/nba/declog"
)

// inputs serves one logged decision's inputs to the engine as its Profiles,
// History and Journeys: the replayer points rec at the record before each
// Decide. Not safe for concurrent use (one replayer, one goroutine).
type inputs struct {
	slot    map[string]int // profile field name -> slot
	rec     *declog.Record
	missing int // history counts asked for but not logged (served as 0)
	unknown int // logged profile fields the catalog's schema lacks
}

func (in *inputs) Profile(_ string, p *nba.Profile) bool {
	li := in.rec.Inputs
	if li == nil {
		return false
	}
	for _, v := range li.Profile {
		i, ok := in.slot[v.Key]
		if !ok {
			in.unknown++
			continue
		}
		p.Num[i] = v.Num
		if v.Kind == declog.KindCategory || v.Kind == declog.KindString {
			p.Str[i] = v.Str
		}
	}
	return li.Known
}

func (in *inputs) Version() string { return in.rec.Versions["snapshot"] }

func (in *inputs) Any(string) bool { return in.rec.Inputs != nil && len(in.rec.Inputs.History) > 0 }

func (in *inputs) Count(_ string, scope nba.Scope, key string, outcome nba.Outcome, window time.Duration, _ time.Time) int {
	for _, h := range in.rec.Inputs.History {
		if h.Key == key && time.Duration(h.WindowNS) == window && h.Scope == scope.String() && h.Outcome == outcome.String() {
			return h.Count
		}
	}
	if !in.rec.Inputs.NonZeroHistory {
		in.missing++ // not logged at all, rather than logged as zero
	}
	return 0
}

// Contacts implements nba.ContactLister from the contact lists logged (a
// record written before they were logged has none: its suppressions then
// see no contacts).
func (in *inputs) Contacts(_ string, scope nba.Scope, key string, dst []nba.ContactAt) []nba.ContactAt {
	if in.rec.Inputs == nil {
		return dst
	}
	for _, l := range in.rec.Inputs.Contacts {
		if l.Scope != scope.String() || l.Key != key {
			continue
		}
		for i, at := range l.AtNS {
			c := nba.ContactAt{At: at}
			for o := nba.Impression; o <= nba.Reject; o++ {
				if i < len(l.Outcomes) && o.String() == l.Outcomes[i] {
					c.Outcome = o
				}
			}
			dst = append(dst, c)
		}
		return dst
	}
	return dst
}

func (in *inputs) Journeys(_ string, dst []nba.JourneyState) []nba.JourneyState {
	if in.rec.Inputs == nil {
		return dst
	}
	for _, j := range in.rec.Inputs.Journeys {
		st := nba.JourneyState{Journey: j.Journey, Step: j.Step, EnteredAt: j.EnteredAt, LastStepAt: j.LastStepAt}
		for s := nba.JourneyActive; s <= nba.JourneyExited; s++ {
			if s.String() == j.Status {
				st.Status = s
			}
		}
		dst = append(dst, st)
	}
	return dst
}

// Replayer decides logged decisions again with one catalog, serving each
// decision the inputs it logged instead of a snapshot and customer state.
// The request is rebuilt from the record: time, channel, placement, limit,
// context and exploration seed; the customer is its pseudonym, so holdouts
// are left out (Request.NoHoldout) and journey effects are not produced.
//
// The online models start from their priors, or from a learner checkpoint:
// a decision replays exactly only under the learning state it was made
// with. A Replayer is not safe for concurrent use.
type Replayer struct {
	eng *nba.Engine
	in  *inputs
	req nba.Request
	ctx []nba.ContextValue
	d   nba.Decision
}

// NewReplayer returns a replayer for catalog c; learner, when not nil, is
// a checkpoint of the online models (Engine.MarshalLearner, the sidecar's
// learner.bin) to start from.
func NewReplayer(c *nba.Catalog, learner []byte) (*Replayer, error) {
	in := &inputs{slot: map[string]int{}}
	for i, f := range c.ProfileFields() {
		in.slot[f.Name] = i
	}
	eng, err := nba.NewEngine(nba.Config{Catalog: c, Profiles: in, History: in, Journeys: in})
	if err != nil {
		return nil, fmt.Errorf("cannot create replayer: %w", err)
	}
	if learner != nil {
		if err := eng.UnmarshalLearner(learner); err != nil {
			return nil, fmt.Errorf("cannot create replayer: %w", err)
		}
	}
	return &Replayer{eng: eng, in: in}, nil
}

// Decide decides rec (a "decision" record) again with seed (0: the logged
// one, or for a decision that did not explore one derived from its id, so
// that a replay is deterministic). The Decision is valid until the next
// call. It returns nba.ErrUnknownChannel for a channel the catalog lacks.
func (r *Replayer) Decide(rec *declog.Record, seed uint64) (*nba.Decision, error) {
	if seed == 0 {
		seed = seedOf(rec)
	}
	r.in.rec = rec
	r.ctx = r.ctx[:0]
	for _, v := range rec.ContextValues {
		cv := nba.ContextValue{Key: v.Key, Num: v.Num}
		if v.Kind == declog.KindString {
			cv.Num, cv.Str = 0, v.Str
		}
		r.ctx = append(r.ctx, cv)
	}
	customer := rec.Customer
	if rec.Inputs != nil && rec.Inputs.Anonymous {
		customer = ""
	}
	r.req = nba.Request{Customer: customer, Channel: rec.Channel, Placement: rec.Placement, Limit: rec.Limit,
		Context: r.ctx, Now: rec.Time, DryRun: true, NoHoldout: true, Trace: true, Seed: seed}
	if err := r.eng.Decide(&r.req, &r.d); err != nil {
		return nil, err
	}
	return &r.d, nil
}

// seedOf is the logged seed of rec, or one derived from its id when it did
// not explore.
func seedOf(rec *declog.Record) uint64 {
	if rec.Seed != 0 {
		return rec.Seed
	}
	h := fnv.New64a()
	h.Write([]byte(rec.ID))
	return h.Sum64() | 1
}

// MissingCounts returns how many history counts the decisions asked for
// that their records did not hold (served as 0).
func (r *Replayer) MissingCounts() int { return r.in.missing }

// UnknownFields returns how many logged profile values named a field the
// catalog's schema lacks (ignored).
func (r *Replayer) UnknownFields() int { return r.in.unknown }

// ReplayConfig configures Replay.
type ReplayConfig struct {
	// Prefix is the log file name prefix; default "decisions".
	Prefix string
	// Learner is a checkpoint of the online models to start from; nil
	// starts from the catalog's priors.
	Learner []byte
	// Tolerance is the largest difference of logged probabilities taken as
	// equal; default 1e-9.
	Tolerance float64
	// MaxDifferences bounds the differences kept in the report (all are
	// counted); default 1000.
	MaxDifferences int
}

// Difference is one replayed decision that came out differently.
type Difference struct {
	Decision string // decision id
	Logged   string // the logged chosen actions with their probabilities
	Replayed string // the replayed ones
}

// ReplayReport is what a replay found.
type ReplayReport struct {
	// Decisions is the number of decision records read; Replayed those
	// decided again; Same those that came out the same.
	Decisions, Replayed, Same int
	// Different counts the replayed decisions that came out differently;
	// Differences holds the first ReplayConfig.MaxDifferences of them.
	Different   int
	Differences []Difference
	// SkippedVersion counts decisions whose logged catalog or model version
	// is not the replaying catalog's; SkippedControl those of customers in
	// a holdout (their customer is only known by a pseudonym, so their
	// holdouts cannot be recomputed); SkippedNoInputs those logged without
	// inputs; SkippedChannel those of a channel the catalog lacks.
	SkippedVersion, SkippedControl, SkippedNoInputs, SkippedChannel int
	// Stale counts the replayed decisions logged as stale: made while the
	// customer's live state could not be read, from the snapshot and the
	// last copy of the state held (journeys not stepped), which their
	// inputs record.
	Stale int
	// MissingCounts and UnknownFields are as Replayer's.
	MissingCounts, UnknownFields int
	Stats                        declog.ReadStats
}

// Replay decides every logged decision in dir again with catalog c and
// reports those whose chosen actions, their order, or their logged
// probabilities (beyond cfg.Tolerance) differ.
func Replay(dir string, c *nba.Catalog, cfg ReplayConfig) (ReplayReport, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "decisions"
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 1e-9
	}
	if cfg.MaxDifferences == 0 {
		cfg.MaxDifferences = 1000
	}
	var rep ReplayReport
	r, err := NewReplayer(c, cfg.Learner)
	if err != nil {
		return rep, err
	}
	rep.Stats, err = declog.ReadDir(dir, cfg.Prefix, func(line []byte) error {
		rec, err := declog.ParseRecord(line)
		if err != nil {
			return err
		}
		if rec.Type != "decision" {
			return nil
		}
		rep.Decisions++
		switch {
		case rec.Control:
			rep.SkippedControl++
			return nil
		case rec.Inputs == nil:
			rep.SkippedNoInputs++
			return nil
		}
		d, err := r.Decide(&rec, 0)
		if errors.Is(err, nba.ErrUnknownChannel) {
			rep.SkippedChannel++
			return nil
		}
		if err != nil {
			return fmt.Errorf("decision %q: %w", rec.ID, err)
		}
		if rec.Versions["catalog"] != d.CatalogVersion || rec.Versions["model"] != d.ModelVersion {
			rep.SkippedVersion++
			return nil
		}
		rep.Replayed++
		if rec.State == "stale" {
			rep.Stale++
		}
		if sameChosen(&rec, d, cfg.Tolerance) {
			rep.Same++
			return nil
		}
		rep.Different++
		if len(rep.Differences) < cfg.MaxDifferences {
			rep.Differences = append(rep.Differences, Difference{Decision: rec.ID, Logged: loggedString(&rec), Replayed: replayedString(d)})
		}
		return nil
	})
	rep.MissingCounts, rep.UnknownFields = r.MissingCounts(), r.UnknownFields()
	if err != nil {
		return rep, fmt.Errorf("cannot replay decision log: %w", err)
	}
	return rep, nil
}

// sameChosen reports whether the replayed decision chose the logged actions
// in the logged order with the logged probabilities.
func sameChosen(rec *declog.Record, d *nba.Decision, tol float64) bool {
	if len(rec.Chosen) != len(d.Actions) {
		return false
	}
	for i, c := range rec.Chosen {
		a := &d.Actions[i]
		if c.Action != a.Action.ID {
			return false
		}
		logged := math.NaN()
		if c.Prob != nil {
			logged = *c.Prob
		}
		if !(math.Abs(logged-a.Prob) <= tol) && !(math.IsNaN(logged) && math.IsNaN(a.Prob)) {
			return false
		}
	}
	return true
}

func loggedString(rec *declog.Record) string {
	var b strings.Builder
	for i, c := range rec.Chosen {
		if i > 0 {
			b.WriteByte(' ')
		}
		p := math.NaN()
		if c.Prob != nil {
			p = *c.Prob
		}
		fmt.Fprintf(&b, "%s(%.6g)", c.Action, p)
	}
	return "[" + b.String() + "]"
}

func replayedString(d *nba.Decision) string {
	var b strings.Builder
	for i := range d.Actions {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s(%.6g)", d.Actions[i].Action.ID, d.Actions[i].Prob)
	}
	return "[" + b.String() + "]"
}
