package sidecar

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"nba/cache/snapshot"
	"nba/nba"
	"nba/nba/server"
	"nba/state"
)

// Consent implements server.ConsentBackend: the change is durable on
// return. The channel and the purpose must be the catalog's; a change of
// an erased customer is refused (410 erased). Without customer_id, ids
// name the customer (resolveVia).
func (s *Sidecar) Consent(c *server.ConsentChange) error {
	var via string
	if c.CustomerID == "" {
		id, v, err := s.resolveVia(c.CustomerID, c.IDs, true)
		if err != nil {
			return err
		}
		c.CustomerID, via = id, v
	}
	cat := s.parts.Load().catalog
	if cat.ChannelIndex(c.Channel) < 0 {
		return server.Invalidf("channel %q is not configured", c.Channel)
	}
	if _, ok := cat.ConsentDefault(c.Purpose, c.Channel); !ok {
		return server.Invalidf("purpose %q is not declared in the catalog (purposes: %v)", c.Purpose, cat.Purposes())
	}
	if err := s.checkErased(c.CustomerID); err != nil {
		return err
	}
	_, err := s.state.SetConsent(state.Consent{Customer: c.CustomerID, Channel: c.Channel, Purpose: c.Purpose,
		Granted: c.Granted, At: c.TS, Source: c.Source, ID: c.EventID, Via: via})
	if err != nil {
		return s.stateError(err)
	}
	return nil
}

// loadConsent appends the customer's consent changes in force to dst.
func loadConsent(v *state.View, dst []nba.ConsentStatus) []nba.ConsentStatus {
	for i := 0; i < v.Consents(); i++ {
		p := v.ConsentAt(i)
		cur := p.Current()
		dst = append(dst, nba.ConsentStatus{Channel: p.Channel, Purpose: p.Purpose, Granted: cur.Granted, At: cur.At, Source: cur.Source})
	}
	return dst
}

// consentJSON lists the customer's consent for every channel and purpose
// of the catalog (and any other pair the state holds): the status in
// force, whether it is the catalog's default, and the audit trail.
func consentJSON(cat *nba.Catalog, v *state.View, snap []nba.ConsentStatus) []map[string]any {
	out := []map[string]any{}
	seen := map[[2]string]bool{}
	trailJSON := func(p state.ConsentStatus) []map[string]any {
		t := make([]map[string]any, 0, len(p.Trail))
		for _, c := range p.Trail {
			t = append(t, map[string]any{"status": state.ConsentStatusName(c.Granted), "ts": c.At.UTC().Format(time.RFC3339Nano), "source": c.Source})
		}
		return t
	}
	byPair := map[[2]string]state.ConsentStatus{}
	for i := 0; i < v.Consents(); i++ {
		p := v.ConsentAt(i)
		byPair[[2]string{p.Channel, p.Purpose}] = p
	}
	add := func(ch, purpose string) {
		k := [2]string{ch, purpose}
		if seen[k] {
			return
		}
		seen[k] = true
		e := map[string]any{"channel": ch, "purpose": purpose}
		p, live := byPair[k]
		var sn *nba.ConsentStatus
		for i := range snap {
			if snap[i].Channel == ch && snap[i].Purpose == purpose {
				sn = &snap[i]
			}
		}
		switch {
		case sn != nil && (!live || !p.Current().At.After(sn.At)):
			e["status"], e["default"] = state.ConsentStatusName(sn.Granted), false
			e["changed_at"], e["source"] = sn.At.UTC().Format(time.RFC3339Nano), sn.Source
			e["trail"] = []map[string]any{}
			if live {
				e["trail"] = trailJSON(p)
			}
		case live:
			cur := p.Current()
			e["status"], e["default"] = state.ConsentStatusName(cur.Granted), false
			e["changed_at"], e["source"] = cur.At.UTC().Format(time.RFC3339Nano), cur.Source
			e["trail"] = trailJSON(p)
		default:
			g, _ := cat.ConsentDefault(purpose, ch)
			e["status"], e["default"], e["trail"] = state.ConsentStatusName(g), true, []map[string]any{}
		}
		out = append(out, e)
	}
	for _, ch := range cat.Channels() {
		for _, p := range cat.Purposes() {
			add(ch, p)
		}
	}
	for i := 0; i < v.Consents(); i++ {
		p := v.ConsentAt(i)
		add(p.Channel, p.Purpose)
	}
	return out
}

var _ server.ConsentBackend = (*Sidecar)(nil)

// checkConsentMappings refuses a bundle whose profile mappings set the
// consent of a channel or purpose the catalog does not declare.
func checkConsentMappings(m state.Mappings, cat *nba.Catalog) error {
	var errs []error
	for _, ev := range sortedKeys(m.Events) {
		for i, op := range m.Events[ev] {
			ch, purpose, ok := strings.Cut(op.Consent, ".")
			if !ok {
				continue // not a consent op, or refused by the state's own check
			}
			if _, known := cat.ConsentDefault(purpose, ch); !known {
				errs = append(errs, fmt.Errorf("profile.events.%s[%d]: consent %q: the catalog has no channel %q or no purpose %q (purposes: %v)",
					ev, i, op.Consent, ch, purpose, cat.Purposes()))
			}
		}
	}
	return errors.Join(errs...)
}

// eventConsents applies the consent changes an event's mappings make,
// before the event itself: each has an id derived from the event's, so
// a retried event sets them once.
func (s *Sidecar) eventConsents(e state.Event) error {
	cs, err := s.state.EventConsents(e)
	if err == nil && len(cs) > 0 {
		_, err = s.state.SetConsent(cs...)
	}
	if err != nil {
		return s.stateError(err)
	}
	return nil
}

// Snapshot columns: a bool column named consent.<channel>.<purpose> (true
// granted, false denied, missing: no statement) states the customer's
// consent as of the snapshot's as-of time, with source "snapshot". A live
// change later than the as-of time wins over it; an earlier one loses
// (later time wins, as between live changes). Such columns are not
// profile fields.

// ConsentColumnPrefix starts the name of a snapshot consent column.
const ConsentColumnPrefix = "consent."

type consentCol struct {
	name, channel, purpose string
	col                    int // in the bound snapshot; -1 when absent
}

// parseConsentColumn recognises a consent column: ok with its channel and
// purpose, or an error for a malformed one.
func parseConsentColumn(name string, k snapshot.Kind) (consentCol, bool, error) {
	rest, ok := strings.CutPrefix(name, ConsentColumnPrefix)
	if !ok {
		return consentCol{}, false, nil
	}
	ch, purpose, ok := strings.Cut(rest, ".")
	if !ok || ch == "" || purpose == "" || strings.Contains(purpose, ".") {
		return consentCol{}, false, fmt.Errorf("snapshot.columns.%s: a consent column is named consent.<channel>.<purpose>", name)
	}
	if k != snapshot.KindBool {
		return consentCol{}, false, fmt.Errorf("snapshot.columns.%s: a consent column is bool (true granted, false denied)", name)
	}
	return consentCol{name: name, channel: ch, purpose: purpose, col: -1}, true, nil
}

func checkConsentColumns(cols []consentCol, cat *nba.Catalog) error {
	var errs []error
	for _, c := range cols {
		if _, ok := cat.ConsentDefault(c.purpose, c.channel); !ok && c.channel != "" {
			errs = append(errs, fmt.Errorf("snapshot.columns.%s: the catalog has no channel %q or no purpose %q", c.name, c.channel, c.purpose))
		}
	}
	return errors.Join(errs...)
}

// bindConsent resolves the consent columns in the bound snapshot.
func (b *binding) bindConsent(cols []consentCol) {
	for _, c := range cols {
		if c.channel == "" || b.snap == nil {
			continue
		}
		if i, ok := b.snap.ColumnIndex(c.name); ok {
			c.col = i
			b.consent = append(b.consent, c)
		}
	}
}

// snapshotConsent merges the snapshot's consent statements for customer
// into dst (the live changes in force): a live change later than the
// snapshot's as-of time wins. It allocates only to grow dst.
func (b *binding) snapshotConsent(customer string, dst []nba.ConsentStatus) []nba.ConsentStatus {
	row, ok := b.snap.LookupString(customer)
	if !ok {
		return dst
	}
	asOf := b.snap.AsOf()
	for _, c := range b.consent {
		g, ok := b.snap.Bool(c.col, row)
		if !ok {
			continue
		}
		x := nba.ConsentStatus{Channel: c.channel, Purpose: c.purpose, Granted: g, At: asOf, Source: "snapshot"}
		i := 0
		for i < len(dst) && (dst[i].Channel != c.channel || dst[i].Purpose != c.purpose) {
			i++
		}
		switch {
		case i == len(dst):
			dst = append(dst, x)
		case !dst[i].At.After(asOf):
			dst[i] = x
		}
	}
	return dst
}
