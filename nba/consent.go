package nba

import (
	"fmt"
	"time"
)

// Consent in the catalog and in decisions.
//
// The catalog declares purposes with a default status per channel:
//
//	purposes:
//	  marketing: {default: granted, channels: {email: denied}}  # e-mail is opt-in
//	  service:   {default: granted}
//
// and each action names its purpose (purpose:, default marketing). A
// catalog without purposes: has marketing and service, granted on every
// channel. A decision on a channel reads the customer's consent for each
// purpose on that channel (Customer.Consent: the newest change wins) or,
// without one, the catalog's default, and removes the actions of a denied
// purpose at StageConsent, on every path (journey steps and the fallback
// included).
//
// Consent fails closed. When the customer's live state cannot be read and
// no last-good copy of it is at hand (Customers.Load failed, dst.History
// nil), a change the customer made through the API or an event is
// unknown: the decision denies every purpose whose stale: is deny (the
// default for every purpose but service, whose default is "default": it
// needs no consent, so its catalog default and snapshot column apply).
// The hit says so (ConsentHit.Stale).

// DefaultPurpose is the purpose of an action that names none.
const DefaultPurpose = "marketing"

// MaxPurposes bounds the purposes of a catalog.
const MaxPurposes = 64

type purposeFile struct {
	// Default is "granted" or "denied" (opt-in: denied until granted).
	Default string `yaml:"default"`
	// Channels overrides Default per channel.
	Channels map[string]string `yaml:"channels"`
	// Stale is "deny" (the customer may have withdrawn it: denied while
	// their live state cannot be read) or "default" (the catalog default
	// and the snapshot apply). Empty: "default" for service, else "deny".
	Stale string `yaml:"stale"`
}

// staleDefaultPurpose is the purpose whose stale: defaults to "default":
// service messages need no consent, so an outage does not stop them.
const staleDefaultPurpose = "service"

// ConsentStatus is one customer's consent for a purpose on a channel: the
// change in force (the newest by time), as the state holds it.
type ConsentStatus struct {
	Channel, Purpose string
	Granted          bool
	At               time.Time
	Source           string
}

// ConsentHit says why a candidate was removed at StageConsent: the
// purpose was denied on the channel, by the customer's change (Source, At)
// or by the catalog's default (Default true, At zero).
type ConsentHit struct {
	Channel, Purpose string
	Source           string
	At               time.Time
	Default          bool
	// Stale: denied because the customer's live state (where a change of
	// consent is kept) could not be read, by the purpose's stale: deny.
	Stale bool
}

// Purposes lists the catalog's purposes in index order.
func (c *Catalog) Purposes() []string { return c.purposes }

// ConsentDefault reports the catalog's default status of a purpose on a
// channel, and false for an unknown purpose or channel.
func (c *Catalog) ConsentDefault(purpose, channel string) (granted, ok bool) {
	p, ok1 := c.purposeIdx[purpose]
	ch, ok2 := c.chanIdx[channel]
	if !ok1 || !ok2 {
		return false, false
	}
	return c.consentDefault[p][ch], true
}

// Purpose returns the action's purpose.
func (a *Action) Purpose() string { return a.purposeName }

func parseConsentDefault(s string) (bool, error) {
	switch s {
	case "granted":
		return true, nil
	case "denied":
		return false, nil
	}
	return false, fmt.Errorf("unknown status %q (want granted or denied)", s)
}

// purposes compiles the purposes: section (after channels).
func (k *compiler) purposes() {
	c := k.c
	c.purposeIdx = map[string]int{}
	files := k.f.Purposes
	if len(files) == 0 {
		files = map[string]purposeFile{"marketing": {Default: "granted"}, "service": {Default: "granted"}}
	}
	if len(files) > MaxPurposes {
		k.errs.add("purposes", "%d purposes, more than the limit of %d", len(files), MaxPurposes)
		return
	}
	for _, name := range sortedKeys(files) {
		pf := files[name]
		path := "purposes." + name
		def := true
		if pf.Default != "" {
			var err error
			if def, err = parseConsentDefault(pf.Default); err != nil {
				k.errs.add(path+".default", "%v", err)
			}
		}
		row := make([]bool, len(c.channels))
		for i := range row {
			row[i] = def
		}
		for _, ch := range sortedKeys(pf.Channels) {
			ci, ok := c.chanIdx[ch]
			if !ok {
				k.errs.addKey(path+".channels", ch, "unknown channel %q%s", ch, didYouMean(ch, c.channels))
				continue
			}
			g, err := parseConsentDefault(pf.Channels[ch])
			if err != nil {
				k.errs.add(path+".channels."+ch, "%v", err)
				continue
			}
			row[ci] = g
		}
		staleDeny := name != staleDefaultPurpose
		switch pf.Stale {
		case "":
		case "deny":
			staleDeny = true
		case "default":
			staleDeny = false
		default:
			k.errs.add(path+".stale", "unknown stale rule %q (want deny or default)", pf.Stale)
		}
		c.purposeIdx[name] = len(c.purposes)
		c.purposes = append(c.purposes, name)
		c.consentDefault = append(c.consentDefault, row)
		c.consentStaleDeny = append(c.consentStaleDeny, staleDeny)
	}
}

// actionPurpose resolves the action's purpose: (after purposes).
func (k *compiler) actionPurpose(a *Action, af *actionFile, path string) {
	name := af.Purpose
	if name == "" {
		name = DefaultPurpose
	}
	p, ok := k.c.purposeIdx[name]
	if !ok {
		at := path + ".purpose"
		if af.Purpose == "" {
			at = path
		}
		k.errs.add(at, "unknown purpose %q%s", name, didYouMean(name, k.c.purposes))
		return
	}
	a.purpose, a.purposeName = int32(p), name
}

// consentPass fills s.denied for the decision's channel: per purpose,
// whether it is denied and by what.
func (s *scratch) consentPass(c *Catalog, ch int) {
	s.denied = s.denied[:0]
	chName := c.channels[ch]
	for p, name := range c.purposes {
		h := ConsentHit{Channel: chName, Purpose: name, Default: true}
		granted := c.consentDefault[p][ch]
		for i := range s.cust.Consent {
			if x := &s.cust.Consent[i]; x.Channel == chName && x.Purpose == name {
				granted, h.Default, h.Source, h.At = x.Granted, false, x.Source, x.At
				break
			}
		}
		if granted && s.consentUnknown && c.consentStaleDeny[p] {
			// Fail closed: a withdrawal cannot be read.
			granted, h = false, ConsentHit{Channel: chName, Purpose: name, Stale: true}
		}
		if granted {
			h = ConsentHit{}
		}
		s.denied = append(s.denied, h)
	}
}

// consentDenied reports whether the action's purpose is denied on the
// decision's channel (consentPass ran).
func (s *scratch) consentDenied(a *Action) bool {
	return int(a.purpose) < len(s.denied) && s.denied[a.purpose].Purpose != ""
}

// fallbackAllowed reports whether the catalog's fallback action may be
// given on the channel: its purpose is not denied.
func (s *scratch) fallbackAllowed(a *Action) bool { return !s.consentDenied(a) }
