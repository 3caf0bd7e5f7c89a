package sidecar

import (
	"cmp"
	"context"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	json "github.com/goccy/go-json"
	"github.com/goccy/go-yaml"

	"nba/nba"
	"nba/nba/server"
	"nba/state"
	redisstate "nba/state/redis"
)

// catalogJSON converts the catalog source to the JSON served by GET
// /v1/actions: the catalog exactly as loaded, plus its compiled version.
func catalogJSON(cat *nba.Catalog, src []byte) ([]byte, error) {
	var tree any
	if err := yaml.Unmarshal(src, &tree); err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"version": cat.Version(), "catalog": tree})
}

// AppendActions implements server.Backend.
func (s *Sidecar) AppendActions(dst []byte) ([]byte, error) {
	p := s.parts.Load()
	return append(dst, p.actionsJSON...), nil
}

// maxHistoryShown bounds the contacts GET /v1/customers/{id} lists.
const maxHistoryShown = 50

// AppendCustomer implements server.Backend: profile (snapshot and live
// overlay), recent contacts, journeys and holdout membership.
func (s *Sidecar) AppendCustomer(dst []byte, id string) ([]byte, error) {
	asked := id
	id = s.canonical(id)
	p := s.parts.Load()
	prof := nba.Profile{Num: make([]float64, len(p.schema.Fields)), Str: make([]string, len(p.schema.Fields))}
	for i := range prof.Num {
		prof.Num[i] = math.NaN()
	}
	// The state is read once, for the profile, the live fields, the
	// history, the journeys and the caps alike.
	var v state.View
	if s.erasedCached(id) {
		return dst, server.NotFoundf("customer %q is unknown (erased)", id)
	}
	hasState, serr := s.state.Load(context.Background(), bytesOf(id), &v)
	if serr != nil && !hasState {
		// Not read, and no copy held: whether the customer exists is not
		// known, so not 404 but 503 (or 500 state_mismatch), as a read.
		return dst, s.stateErrorOn(serr, opRead)
	}
	s.cust.profileOf(id, &v, hasState, &prof)
	inSnap := s.cust.inSnapshot(id)
	if !inSnap && !hasState {
		return dst, server.NotFoundf("customer %q is unknown", id)
	}
	out := map[string]any{"customer_id": id}
	out["profile"] = profileJSON(p.schema.Fields, &prof, nil)
	// The two sources apart: the snapshot's row with its as-of time, and
	// each live overlay field with when the event that set it happened and
	// whether it is the value decisions see.
	snapProf, liveProf := newProfile(len(p.schema.Fields)), newProfile(len(p.schema.Fields))
	lives, asOf := s.cust.profileParts(id, &v, hasState, &snapProf, &liveProf)
	if inSnap {
		out["snapshot"] = map[string]any{"as_of": asOf.UTC().Format(time.RFC3339), "values": profileJSON(p.schema.Fields, &snapProf, nil)}
	}
	live := map[string]any{}
	for _, lf := range lives {
		f := p.schema.Fields[lf.field]
		one := profileJSON(p.schema.Fields, &liveProf, []int{lf.field})
		live[f.Name] = map[string]any{"value": one[f.Name], "changed_at": lf.at.UTC().Format(time.RFC3339Nano), "applied": lf.applied}
	}
	out["live"] = live
	// Two separate facts: a row in the served snapshot, and live state
	// (overlay fields, contacts, journeys) from feedback and events.
	out["in_snapshot"] = inSnap
	out["has_live_state"] = hasState
	if serr != nil {
		// As a decision says it: the live state could not be read; what is
		// shown is the last copy this process held, if any.
		out["state"] = "stale"
	}
	history := []map[string]any{}
	for _, c := range v.History(nil, maxHistoryShown) {
		h := map[string]any{"action_id": c.Action, "channel": c.Channel, "outcome": c.Outcome.String(), "ts": c.At.UTC().Format(time.RFC3339Nano)}
		if c.Value != 0 {
			h["value"] = c.Value
		}
		history = append(history, h)
	}
	out["history"] = history
	journeys := []map[string]any{}
	for i := 0; i < v.Journeys(); i++ {
		j := v.JourneyAt(i)
		jm := map[string]any{"journey": j.Journey, "step": j.Step, "status": j.Status.String(),
			"entered_at": j.EnteredAt.UTC().Format(time.RFC3339), "step_at": j.StepAt.UTC().Format(time.RFC3339)}
		// Its mode and the next step with when it falls due, read as the
		// decisions' adapter reads the state (liveView.Load).
		st := journeyOf(j)
		if mode, next, due, ok := p.catalog.JourneyPlan(st); ok {
			jm["mode"] = mode
			if next != "" {
				jm["next_action"], jm["due_at"] = next, due.UTC().Format(time.RFC3339)
			}
		}
		journeys = append(journeys, jm)
	}
	out["journeys"] = journeys
	out["caps"] = capsJSON(p.catalog.Caps(), &v, hasState, s.now())
	out["suppressions"] = suppressionsJSON(p.catalog, &v, hasState, s.now())
	var snapConsent []nba.ConsentStatus
	if b := s.cust.binding.Load(); b != nil && len(b.consent) > 0 {
		snapConsent = b.snapshotConsent(id, nil)
	}
	out["consent"] = consentJSON(p.catalog, &v, snapConsent)
	global, held := p.catalog.Holdouts(id)
	if held == nil {
		held = []string{}
	}
	out["holdout"] = map[string]any{"global": global, "actions": held}
	if s.ident != nil {
		addIdentity(out, &v, asked)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// capsJSON lists each cap and channel limit with the customer's count now,
// the headroom left and, when the cap is reached, when the count falls
// below it again ("frees_at": the contact that must leave the window, plus
// the window; omitted when the contacts kept do not reach back to it).
func capsJSON(caps []nba.CapInfo, v *state.View, found bool, now time.Time) []map[string]any {
	out := make([]map[string]any, 0, len(caps))
	var times []int64
	for _, c := range caps {
		n := 0
		if found {
			n = v.Count(kindOf(c.Scope), c.Key, outcomeOf(c.Outcome), c.Window, now)
		}
		m := map[string]any{"policy": c.Desc, "scope": c.Scope.String(), "key": c.Key, "outcome": c.Outcome.String(),
			"window": fmtWindow(c.Window), "max": c.Max, "count": n, "headroom": max(c.Max-n, 0), "channel_limit": c.Channel}
		if c.Exact {
			// Reservations of decisions awaiting their impression hold
			// slots of an exact cap too.
			r := 0
			if found {
				r = v.Reserved(kindOf(c.Scope), c.Key, now)
			}
			m["exact"], m["reserved"], m["headroom"] = true, r, max(c.Max-n-r, 0)
		}
		if found && n >= c.Max {
			times = times[:0]
			from, o := now.Add(-c.Window).UnixNano(), outcomeOf(c.Outcome)
			v.EachContact(kindOf(c.Scope), c.Key, func(at int64, co state.Outcome) {
				if co == o && at > from && at <= now.UnixNano() {
					times = append(times, at)
				}
			})
			slices.Sort(times)
			if i := n - c.Max; len(times) == n && i < len(times) {
				m["frees_at"] = time.Unix(0, times[i]).Add(c.Window).UTC().Format(time.RFC3339Nano)
			}
		}
		out = append(out, m)
	}
	return out
}

// suppressionsJSON lists the suppressions that pause an action for the
// customer now, as a decision would find them (nba.Catalog.Suppressions
// over the same contacts the engine reads): the policy, the action and the
// group it comes from, the outcomes that started the pause ("counted"),
// and when it started and ends.
func suppressionsJSON(cat *nba.Catalog, v *state.View, found bool, now time.Time) []map[string]any {
	out := []map[string]any{}
	if !found {
		return out
	}
	for _, sp := range cat.Suppressions(nil, &liveView{v: *v, found: true}, now) {
		m := map[string]any{"policy": sp.Desc, "action_id": sp.Action, "after": sp.After.String(), "count": sp.Count,
			"pause": fmtWindow(sp.Pause)}
		if sp.Group != "" {
			m["group"] = sp.Group
		}
		if sp.Within > 0 {
			m["within"] = fmtWindow(sp.Within)
		}
		if sp.Without != 0 {
			m["without"] = sp.Without.String()
		}
		if !sp.Since.IsZero() {
			counted := make([]string, len(sp.Counted))
			for i, at := range sp.Counted {
				counted[i] = at.UTC().Format(time.RFC3339Nano)
			}
			m["counted"] = counted
			m["since"] = sp.Since.UTC().Format(time.RFC3339Nano)
			m["until"] = sp.Until.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, m)
	}
	return out
}

// namespacesJSON lists the bundle's identity namespaces, the primary one
// first, then by name: what the studio's customer search offers.
func namespacesJSON(c *state.IdentityConfig) []map[string]any {
	names := slices.Sorted(maps.Keys(c.Namespaces))
	primary := func(n string) int {
		if c.Namespaces[n].Primary {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(primary(a), primary(b)) })
	out := make([]map[string]any, 0, len(names))
	for _, n := range names {
		ns := c.Namespaces[n]
		out = append(out, map[string]any{"ns": n, "primary": ns.Primary, "unique": ns.Unique, "hash": ns.Hash})
	}
	return out
}

// fmtWindow writes a window as the catalog does: whole days as "7d", else
// Go's duration.
func fmtWindow(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

func newProfile(n int) nba.Profile {
	p := nba.Profile{Num: make([]float64, n), Str: make([]string, n)}
	for i := range p.Num {
		p.Num[i] = math.NaN()
	}
	return p
}

// profileJSON returns the fields of prof that have a value (only those
// listed in only, when it is not nil) by name, as JSON values.
func profileJSON(fields []nba.Field, prof *nba.Profile, only []int) map[string]any {
	profile := map[string]any{}
	for i, f := range fields {
		if only != nil && !slices.Contains(only, i) {
			continue
		}
		switch {
		case f.Kind == nba.KindCategory && prof.Str[i] != "":
			profile[f.Name] = prof.Str[i]
		case math.IsNaN(prof.Num[i]):
		case f.Kind == nba.KindBool:
			profile[f.Name] = prof.Num[i] != 0
		case f.Kind == nba.KindTime:
			profile[f.Name] = time.Unix(int64(prof.Num[i]), 0).UTC().Format(time.RFC3339)
		case f.Kind == nba.KindNumber:
			if x := prof.Num[i]; float64(float32(x)) == x {
				profile[f.Name] = float32(x) // snapshot values are float32: print them so
			} else {
				profile[f.Name] = x
			}
		}
	}
	return profile
}

// AppendStatus implements server.Backend.
func (s *Sidecar) AppendStatus(dst []byte) ([]byte, error) {
	p := s.parts.Load()
	models := map[string]any{}
	for name, m := range p.models {
		models[name] = m.Info()
	}
	st := map[string]any{
		"bundle":   map[string]any{"name": s.cfg.BundleName, "version": p.version, "loaded_at": p.loadedAt.UTC().Format(time.RFC3339)},
		"catalog":  map[string]any{"version": p.catalog.Version(), "actions": len(p.catalog.Actions())},
		"models":   models,
		"snapshot": s.snaps.Status(),
		"state":    s.state.Stats(),
		"engine":   s.engine.Stats(),
		"reloads":  map[string]any{"ok": s.reloads.Load(), "failed": s.reloadFailures.Load()},
		"effects":  map[string]any{"dropped": s.effectsDropped.Load(), "failed": s.effectsFailed.Load()},
		"uptime_s": strconv.FormatFloat(time.Since(s.started).Seconds(), 'f', 0, 64),
	}
	if s.ident != nil {
		st["identity"] = s.ident.Stats()
		if c := p.manifest.Identity; c != nil {
			st["identity_namespaces"] = namespacesJSON(c)
		}
	}
	if r, ok := unwrapState(s.state).(*redisstate.Backend); ok {
		st["state_redis"] = map[string]any{"counters": r.Counters(), "acknowledgement": r.Durability()}
	}
	// What a decision answers under "versions", and the models behind its
	// "model" digest one by one.
	mv := p.catalog.ModelVersions()
	st["versions"] = map[string]any{"bundle": p.version, "catalog": p.catalog.Version(),
		"model": nba.ModelSetDigest(mv), "snapshot": s.cust.Version(), "models": mv}
	if s.engine.Catalog().Learning() {
		n, evicted, expired := s.pending.stats()
		st["learning"] = map[string]any{"models": s.engine.LearnerStats(), "pending_impressions": n,
			"pending_evicted": evicted, "expired_as_ignored": expired, "observe_errors": s.observeErrors.Load()}
		if s.share != nil {
			st["learning_redis"] = s.share.stats()
		}
	}
	if es, ok := s.EventStreamStats(); ok {
		st["event_stream"] = es
	}
	if err := s.state.Err(); err != nil {
		st["state_error"] = err.Error()
	}
	if ok := s.lastReloadOK.Load(); ok != 0 {
		st["last_reload_ok"] = time.Unix(0, ok).UTC().Format(time.RFC3339)
	}
	if e := s.lastReloadErr.Load(); e != nil {
		st["last_reload_error"] = map[string]any{"at": e.at.UTC().Format(time.RFC3339), "error": e.err}
	}
	if s.declog != nil {
		st["decision_log"] = s.declog.Stats()
	}
	if s.scores != nil {
		st["score_cache"] = s.scores.Stats()
	}
	b, err := json.Marshal(st)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}
