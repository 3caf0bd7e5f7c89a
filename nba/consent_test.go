package nba

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

const consentCatalog = `
channels: [email, sms]
purposes:
  marketing: {default: granted, channels: {sms: denied}}
  service: {default: granted}
fallback: notice
actions:
  - id: promo
    channels: [email, sms, web]
    value: 10
  - id: notice
    purpose: service
    channels: [email, sms, web]
    value: 1
  - id: cart_1
    channels: [email]
    value: 20
journeys:
  - id: cart
    mode: lock
    entry: {event: cart_abandoned}
    steps:
      - {action: cart_1}
`

// consentCustomers is a Customers with consent and journeys per customer.
type consentCustomers struct {
	consent  map[string][]ConsentStatus
	journeys map[string][]JourneyState
}

func (c *consentCustomers) Load(_ context.Context, customer string, dst *Customer) (bool, error) {
	dst.Consent = append(dst.Consent, c.consent[customer]...)
	dst.Journeys = append(dst.Journeys, c.journeys[customer]...)
	return true, nil
}

func (c *consentCustomers) Version() string { return "test" }

// TestConsentStage: a denied channel × purpose removes the action at the
// consent stage (by the customer's change or the catalog's default), on
// the ranked path, for a journey step and for the fallback; service
// actions still go out.
func TestConsentStage(t *testing.T) {
	at := monday.Add(-time.Hour)
	inCart := []JourneyState{{Journey: "cart", Step: 0, Status: JourneyActive, EnteredAt: at, LastStepAt: at}}
	cust := &consentCustomers{
		consent: map[string][]ConsentStatus{
			"withdrew":   {{Channel: "email", Purpose: "marketing", Granted: false, At: at, Source: "preference_center"}},
			"opted_in":   {{Channel: "sms", Purpose: "marketing", Granted: true, At: at, Source: "form"}},
			"no_service": {{Channel: "email", Purpose: "service", Granted: false, At: at, Source: "api"}, {Channel: "email", Purpose: "marketing", Granted: false, At: at, Source: "api"}},
		},
		journeys: map[string][]JourneyState{"withdrew": inCart, "plain": inCart},
	}
	e, err := NewEngine(Config{Catalog: mustCatalog(t, consentCatalog, Options{}), Customers: cust})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		customer, channel string
		want              []string // chosen, best first
		reason            string
		denied            map[string]ConsentHit // explained at the consent stage, by action
	}{
		{"plain", "email", []string{"cart_1"}, "", nil}, // the locked journey holds the channel
		{"withdrew", "email", []string{"notice"}, "", map[string]ConsentHit{
			"promo":  {Channel: "email", Purpose: "marketing", Source: "preference_center", At: at},
			"cart_1": {Channel: "email", Purpose: "marketing", Source: "preference_center", At: at},
		}},
		{"withdrew", "web", []string{"promo", "notice"}, "", nil},
		{"plain", "sms", []string{"notice"}, "", map[string]ConsentHit{"promo": {Channel: "sms", Purpose: "marketing", Default: true}}},
		{"opted_in", "sms", []string{"promo", "notice"}, "", nil},
		{"no_service", "email", nil, "no_candidates", map[string]ConsentHit{
			"notice": {Channel: "email", Purpose: "service", Source: "api", At: at},
			"promo":  {Channel: "email", Purpose: "marketing", Source: "api", At: at},
			"cart_1": {Channel: "email", Purpose: "marketing", Source: "api", At: at}, // before the journey stage
		}},
	} {
		t.Run(c.customer+"/"+c.channel, func(t *testing.T) {
			var d Decision
			if err := e.Decide(&Request{Customer: c.customer, Channel: c.channel, Limit: 5, Now: monday, Explain: true}, &d); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(chosenIDs(&d), ","); got != strings.Join(c.want, ",") || d.Reason != c.reason {
				t.Errorf("chosen %q reason %q, want %q %q", got, d.Reason, strings.Join(c.want, ","), c.reason)
			}
			for _, x := range d.Explain {
				want, denied := c.denied[x.Action]
				if denied != (x.Stage == StageConsent) || x.Consent != want {
					t.Errorf("%s: stage %v consent %+v, want denied %v %+v", x.Action, x.Stage, x.Consent, denied, want)
				}
			}
			if c.denied != nil && len(c.want) == 0 && len(d.Effects) != 0 {
				t.Errorf("journey moved without a step given: %+v", d.Effects)
			}
		})
	}
	t.Run("fallback", func(t *testing.T) {
		// notice is the fallback: with marketing and service denied on
		// email, nothing goes out, fallback included.
		var d Decision
		if err := e.Decide(&Request{Customer: "no_service", Channel: "email", Now: monday}, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Actions) != 0 {
			t.Errorf("gave %v against a denied consent", chosenIDs(&d))
		}
	})
	if got := StageConsent.String(); got != "consent" {
		t.Errorf("StageConsent names %q", got)
	}
}

// TestFallbackConsent: the fallback action given when no candidate is
// left is removed when its purpose is denied.
func TestFallbackConsent(t *testing.T) {
	const cat = `
channels: [email]
fallback: promo
actions:
  - id: promo
    channels: [email]
    rules: {eligible: ["false"]}
`
	cust := &consentCustomers{consent: map[string][]ConsentStatus{
		"withdrew": {{Channel: "email", Purpose: "marketing", Granted: false, At: monday}},
	}}
	e, err := NewEngine(Config{Catalog: mustCatalog(t, cat, Options{}), Customers: cust})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		customer string
		want     string
	}{{"plain", "fallback"}, {"withdrew", "no_candidates"}} {
		var d Decision
		if err := e.Decide(&Request{Customer: c.customer, Channel: "email", Now: monday}, &d); err != nil {
			t.Fatal(err)
		}
		if d.Reason != c.want {
			t.Errorf("%s: reason %q, want %q (actions %v)", c.customer, d.Reason, c.want, chosenIDs(&d))
		}
	}
}

// TestPurposeCatalogErrors: purposes are checked like the rest of the
// catalog, each problem at its line and column.
func TestPurposeCatalogErrors(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		_, err := CompileCatalog("c.yaml", []byte(src), Options{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	f("actions:\n  - id: a\n    channels: [web]\n    purpose: marketting\n", `c.yaml:4:14: action "a": purpose: unknown purpose "marketting" (did you mean "marketing"?)`)
	f("purposes:\n  service: {default: granted}\nactions:\n  - id: a\n    channels: [web]\n", `unknown purpose "marketing"`)
	f("purposes:\n  marketing: {default: maybe}\nactions: []\n", `c.yaml:2:24: purposes.marketing.default: unknown status "maybe"`)
	f("purposes:\n  marketing: {channels: {fax: denied}}\nactions: []\n", `unknown channel "fax"`)
	f("purposes:\n  marketing: {stale: allow}\nactions: []\n", `purposes.marketing.stale: unknown stale rule "allow" (want deny or default)`)
	c := mustCatalog(t, consentCatalog, Options{})
	for _, x := range []struct {
		purpose, channel string
		granted, ok      bool
	}{{"marketing", "email", true, true}, {"marketing", "sms", false, true}, {"service", "sms", true, true}, {"nope", "sms", false, false}} {
		if g, ok := c.ConsentDefault(x.purpose, x.channel); g != x.granted || ok != x.ok {
			t.Errorf("default %s/%s = %v %v", x.purpose, x.channel, g, ok)
		}
	}
}

// unavailableCustomers is a state backend out of reach: Load fills the
// consent the snapshot carries and fails; with lastGood it also hands a
// last-good copy of the live state (History set), as a shared store does.
type unavailableCustomers struct {
	consentCustomers
	lastGood bool
}

// noContacts is a last-good copy holding no contacts.
type noContacts struct{}

func (noContacts) Count(Scope, string, Outcome, time.Duration, time.Time) int { return 0 }
func (noContacts) Contacts(_ Scope, _ string, dst []ContactAt) ([]ContactAt, bool) {
	return dst, true
}

func (c *unavailableCustomers) Load(ctx context.Context, customer string, dst *Customer) (bool, error) {
	c.consentCustomers.Load(ctx, customer, dst)
	if c.lastGood {
		dst.History = noContacts{}
	}
	return true, errors.New("state unavailable")
}

// TestConsentFailsClosedWhenStateUnavailable: a decision made without the
// customer's live state and without a last-good copy of it cannot see a
// withdrawal made through the API, so it denies every purpose whose
// stale: is deny (marketing by default) and says why; service, whose
// stale: defaults to "default", still goes out. Before, such a decision
// applied only the snapshot's consent and the catalog's defaults and gave
// marketing to a customer who had withdrawn it.
func TestConsentFailsClosedWhenStateUnavailable(t *testing.T) {
	at := monday.Add(-time.Hour)
	snapshot := map[string][]ConsentStatus{
		"no_service": {{Channel: "email", Purpose: "service", Granted: false, At: at, Source: "snapshot"}},
		"withdrew":   {{Channel: "email", Purpose: "marketing", Granted: false, At: at, Source: "api"}},
	}
	staleDefault := strings.Replace(consentCatalog, "marketing: {default: granted,", "marketing: {stale: default, default: granted,", 1)
	staleDenyService := strings.Replace(consentCatalog, "service: {default: granted}", "service: {default: granted, stale: deny}", 1)
	stale := func(purpose string) ConsentHit { return ConsentHit{Channel: "email", Purpose: purpose, Stale: true} }
	for _, c := range []struct {
		name, catalog, customer, channel string
		lastGood                         bool
		want                             []string
		denied                           map[string]ConsentHit
	}{
		{"unavailable", consentCatalog, "plain", "email", false, []string{"notice"}, map[string]ConsentHit{"promo": stale("marketing"), "cart_1": stale("marketing")}},
		{"snapshot denial stays", consentCatalog, "no_service", "email", false, nil, map[string]ConsentHit{
			"notice": {Channel: "email", Purpose: "service", Source: "snapshot", At: at},
			"promo":  stale("marketing"), "cart_1": stale("marketing")}},
		{"catalog default stays", consentCatalog, "plain", "sms", false, []string{"notice"}, map[string]ConsentHit{"promo": {Channel: "sms", Purpose: "marketing", Default: true}}},
		{"stale: default", staleDefault, "plain", "email", false, []string{"promo", "notice"}, nil},
		{"stale: deny on service", staleDenyService, "plain", "email", false, nil, map[string]ConsentHit{
			"notice": stale("service"), "promo": stale("marketing"), "cart_1": stale("marketing")}},
		{"last-good copy", consentCatalog, "plain", "email", true, []string{"promo", "notice"}, nil},
		{"last-good copy withdrawn", consentCatalog, "withdrew", "email", true, []string{"notice"}, map[string]ConsentHit{
			"promo":  {Channel: "email", Purpose: "marketing", Source: "api", At: at},
			"cart_1": {Channel: "email", Purpose: "marketing", Source: "api", At: at}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cust := &unavailableCustomers{consentCustomers{consent: snapshot}, c.lastGood}
			e, err := NewEngine(Config{Catalog: mustCatalog(t, c.catalog, Options{}), Customers: cust})
			if err != nil {
				t.Fatal(err)
			}
			var d Decision
			if err := e.Decide(&Request{Customer: c.customer, Channel: c.channel, Limit: 5, Now: monday, Explain: true}, &d); err != nil {
				t.Fatal(err)
			}
			if !d.Stale {
				t.Error("decision not marked stale")
			}
			if got := strings.Join(chosenIDs(&d), ","); got != strings.Join(c.want, ",") {
				t.Errorf("chosen %q, want %q", got, strings.Join(c.want, ","))
			}
			for _, x := range d.Explain {
				want, denied := c.denied[x.Action]
				if denied != (x.Stage == StageConsent) || x.Consent != want {
					t.Errorf("%s: stage %v consent %+v, want denied %v %+v", x.Action, x.Stage, x.Consent, denied, want)
				}
			}
		})
	}
	t.Run("state back", func(t *testing.T) {
		e, err := NewEngine(Config{Catalog: mustCatalog(t, consentCatalog, Options{}), Customers: &consentCustomers{}})
		if err != nil {
			t.Fatal(err)
		}
		var d Decision
		if err := e.Decide(&Request{Customer: "plain", Channel: "web", Limit: 5, Now: monday}, &d); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(chosenIDs(&d), ","); got != "promo,notice" {
			t.Errorf("with the state answering: chosen %q", got)
		}
	})
}
