package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"nba/nba"
)

// The generative model.
//
// Every customer has twelve visible features x in [0, 1] (the profile
// fields the models and the online learner read):
//
//	age, spend, tenure (days/1000, capped), recency (days since purchase/180,
//	capped), loyalty (0/1), ticket (0/1: a service ticket is open),
//	aff_fashion, aff_home, aff_sport, aff_beauty, aff_tech (category
//	affinities: one main category near 0.8, the others near 0.1), digital.
//
// The hidden truth: a customer shown campaign a responds with probability
// σ(b_a + w_a·x). Each family of campaigns has a template (cross-sells load
// on their category's affinity, up-sells on spend and tenure, win-backs on
// recency, loyalty offers on tenure, service actions on age and against
// digital, ...) and every campaign adds its own N(0, 0.5²) perturbation to
// each weight and N(0, 0.3²) to its intercept, so campaigns of one family
// differ in who they suit. (The intercepts below are the templates' before
// a common shift of -1, which puts response rates at a few percent.) Without an action a customer "responds"
// organically (buys anyway) with probability σ(-4 + spend + 0.5·digital);
// the control group measures that. A logistic model per campaign over x can
// represent the truth exactly; the offline model (per-campaign intercepts,
// per-family weights, see trainOffline) cannot.
//
// Dynamics: tenure grows by a day per day (customers with negative start
// tenure join during the run and enter the welcome series); a response to
// a commercial campaign is a purchase (recency drops to 0); a response to a
// service action closes the ticket; tickets open with probability 1% a day
// and close by themselves with 10%. Each day a customer visits with
// probability 0.1 + 0.4·digital and gets one decision on the web channel.
// All randomness of customers (visits, responses, tickets) comes from
// hashes of (seed, customer, day), so every policy sees the same coin flips
// (common random numbers) and runs are deterministic for a seed.

const nFeat = 12

var featNames = [nFeat]string{"age", "spend", "tenure", "recency", "loyalty", "ticket",
	"aff_fashion", "aff_home", "aff_sport", "aff_beauty", "aff_tech", "digital"}

var categories = []string{"fashion", "home", "sport", "beauty", "tech"}

const (
	fAge = iota
	fSpend
	fTenure
	fRecency
	fLoyalty
	fTicket
	fAff0
	fDigital = fAff0 + 5
)

// Profile fields: the features, then rule-only fields.
const (
	pTenureDays = nFeat + iota
	pDaysSincePurchase
	pBirthdaySoon
	nProfile
)

var schema = func() nba.Schema {
	var s nba.Schema
	for i, n := range featNames {
		k := nba.KindNumber
		if i == fLoyalty || i == fTicket {
			k = nba.KindBool
		}
		s.Fields = append(s.Fields, nba.Field{Name: n, Kind: k})
	}
	s.Fields = append(s.Fields, nba.Field{Name: "tenure_days", Kind: nba.KindNumber},
		nba.Field{Name: "days_since_purchase", Kind: nba.KindNumber}, nba.Field{Name: "birthday_soon", Kind: nba.KindBool})
	return s
}()

// campaign is one action with its hidden truth.
type campaign struct {
	id, family, rule string
	b                float64
	w                [nFeat]float64
	purchase         bool // a response is a purchase
}

func (c *campaign) prob(x *[nFeat]float64) float64 {
	z := c.b
	for i, v := range x {
		z += c.w[i] * v
	}
	return sigmoid(z)
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// families in the marketers' priority order (after birthday and welcome).
func newCampaigns(seed uint64) []campaign {
	rng := rand.New(rand.NewPCG(seed, 0xca3))
	var out []campaign
	add := func(id, family, rule string, b float64, tmpl map[int]float64, purchase bool) {
		c := campaign{id: id, family: family, rule: rule, b: b - 1 + 0.3*rng.NormFloat64(), purchase: purchase}
		for i := range c.w {
			c.w[i] = tmpl[i] + 0.5*rng.NormFloat64()
		}
		out = append(out, c)
	}
	add("birthday", "birthday", "profile.birthday_soon", -2.4, map[int]float64{fDigital: 0.8, fAge: -0.5}, true)
	add("welcome_1", "welcome", "profile.tenure_days >= 0 and profile.tenure_days < 7", -2.6, map[int]float64{fDigital: 1}, false)
	add("welcome_2", "welcome", "profile.tenure_days >= 7 and profile.tenure_days < 14", -2.9, map[int]float64{fDigital: 1}, false)
	add("welcome_3", "welcome", "profile.tenure_days >= 14 and profile.tenure_days < 30", -3.2, map[int]float64{fDigital: 1}, true)
	for n := range 5 {
		add(fmt.Sprintf("service_%d", n+1), "service", "profile.ticket", -2.6, map[int]float64{fAge: 0.8, fDigital: -1}, false)
	}
	for n := range 5 {
		add(fmt.Sprintf("winback_%d", n+1), "winback", "profile.days_since_purchase > 60", -3.6, map[int]float64{fRecency: 1.5, fSpend: 1}, true)
	}
	for n := range 6 {
		add(fmt.Sprintf("loyalty_%d", n+1), "loyalty", "profile.loyalty", -3.4, map[int]float64{fTenure: 1.5, fSpend: 0.8}, true)
	}
	for n := range 8 {
		add(fmt.Sprintf("upsell_%d", n+1), "upsell", "profile.spend >= 0.3", -4.2, map[int]float64{fSpend: 2.5, fTenure: 1}, true)
	}
	for ci, cat := range categories {
		for n := range 4 {
			add(fmt.Sprintf("xsell_%s_%d", cat, n+1), "xsell", "profile.tenure_days >= 7", -4.4, map[int]float64{fAff0 + ci: 4, fSpend: 0.8}, true)
		}
	}
	for n := range 4 {
		add(fmt.Sprintf("info_%d", n+1), "info", "", -4.5, map[int]float64{fDigital: 1.5}, false)
	}
	return out
}

// customer is the static part of a customer.
type customer struct {
	id                          string
	age, spend, digital, visitP float64
	aff                         [5]float64
	loyalty                     bool
	join                        int // day of joining (tenure 0); negative = before the run
	birthday                    int // day of year
	lastPurchase0               int // day of the last purchase before the run
	control                     bool
}

// population is the customers shared by every policy's run.
type population struct {
	seed      uint64
	customers []customer
	campaigns []campaign
	byID      map[string]int
	start     time.Time
}

const holdoutSalt, holdoutShare = "sim", 0.1

func newPopulation(n int, seed uint64) *population {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	p := &population{seed: seed, customers: make([]customer, n), campaigns: newCampaigns(seed),
		byID: map[string]int{}, start: time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)}
	for i := range p.customers {
		c := &p.customers[i]
		c.id = fmt.Sprintf("c%06d", i)
		c.age = rng.Float64()
		c.spend = clamp01(0.4 + 0.2*rng.NormFloat64())
		c.digital = rng.Float64()
		c.visitP = 0.1 + 0.4*c.digital
		main := rng.IntN(5)
		for k := range c.aff {
			c.aff[k] = clamp01(0.1 + 0.08*rng.NormFloat64())
		}
		c.aff[main] = clamp01(0.8 + 0.1*rng.NormFloat64())
		c.loyalty = rng.Float64() < 0.3+0.4*c.spend
		c.join = -int(rng.Float64()*1500) + 60 // 4% join during a 90-day run
		c.birthday = rng.IntN(365)
		c.lastPurchase0 = -int(rng.ExpFloat64() * 40)
		c.control = nba.InHoldout(holdoutSalt, "", c.id, holdoutShare)
		p.byID[c.id] = i
	}
	for ci := range p.campaigns {
		p.byID[p.campaigns[ci].id] = -1 - ci
	}
	return p
}

func clamp01(x float64) float64 { return min(max(x, 0), 1) }

// u returns a uniform [0,1) number for (customer, day, stream): the common
// random numbers of every policy.
func (p *population) u(i, day int, stream uint64) float64 {
	return float64(p.hash(i, day, stream)>>11) / (1 << 53)
}

// hash mixes (seed, customer, day, stream) with splitmix64's finaliser.
func (p *population) hash(i, day int, stream uint64) uint64 {
	h := p.seed ^ stream*0x9e3779b97f4a7c15
	h ^= uint64(i)*0xbf58476d1ce4e5b9 + uint64(day+1000)*0x94d049bb133111eb
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

func newRand(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

const (
	streamVisit = iota + 1
	streamResponse
	streamTicketOpen
	streamTicketClose
	streamSeed
)

// state is one policy's world: the customers' changing part, their contact
// history and the current day. It implements nba.Profiles and nba.History
// for that policy's engine; it is used by one goroutine.
type state struct {
	pop          *population
	day          int
	lastPurchase []int
	ticket       []bool
	hist         [][]contact
}

type contact struct {
	action  int32 // campaign index
	day     int32
	outcome nba.Outcome
}

func newState(pop *population) *state {
	s := &state{pop: pop, lastPurchase: make([]int, len(pop.customers)), ticket: make([]bool, len(pop.customers)),
		hist: make([][]contact, len(pop.customers))}
	for i := range pop.customers {
		s.lastPurchase[i] = pop.customers[i].lastPurchase0
		s.ticket[i] = pop.u(i, -1, streamTicketOpen) < 0.05
	}
	return s
}

// advance moves to day d: tickets open and close.
func (s *state) advance(d int) {
	s.day = d
	for i := range s.ticket {
		if s.ticket[i] {
			s.ticket[i] = s.pop.u(i, d, streamTicketClose) >= 0.1
		} else {
			s.ticket[i] = s.pop.u(i, d, streamTicketOpen) < 0.01
		}
	}
}

func (s *state) now() time.Time { return s.pop.start.Add(time.Duration(s.day) * 24 * time.Hour) }

// features fills x for customer i today.
func (s *state) features(i int, x *[nFeat]float64) {
	c := &s.pop.customers[i]
	x[fAge], x[fSpend], x[fDigital] = c.age, c.spend, c.digital
	x[fTenure] = clamp01(float64(s.day-c.join) / 1000)
	x[fRecency] = clamp01(float64(s.day-s.lastPurchase[i]) / 180)
	x[fLoyalty], x[fTicket] = b2f(c.loyalty), b2f(s.ticket[i])
	copy(x[fAff0:fAff0+5], c.aff[:])
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (s *state) index(id string) int {
	if i, ok := s.pop.byID[id]; ok && i >= 0 {
		return i
	}
	return -1
}

// Profile implements nba.Profiles.
func (s *state) Profile(id string, p *nba.Profile) bool {
	i := s.index(id)
	if i < 0 {
		return false
	}
	var x [nFeat]float64
	s.features(i, &x)
	copy(p.Num, x[:])
	c := &s.pop.customers[i]
	p.Num[pTenureDays] = float64(s.day - c.join)
	p.Num[pDaysSincePurchase] = float64(s.day - s.lastPurchase[i])
	doy := (s.day + 4) % 365 // the run starts on 5 January
	p.Num[pBirthdaySoon] = b2f((c.birthday-doy+365)%365 <= 7)
	return true
}

// Version implements nba.Profiles.
func (s *state) Version() string { return "sim" }

// Any implements nba.History.
func (s *state) Any(id string) bool {
	i := s.index(id)
	return i >= 0 && len(s.hist[i]) > 0
}

// Count implements nba.History for action and group scopes (the catalogs
// use no channel policies; every decision is on the web).
func (s *state) Count(id string, scope nba.Scope, key string, o nba.Outcome, window time.Duration, now time.Time) int {
	i := s.index(id)
	if i < 0 {
		return 0
	}
	days := int32(window / (24 * time.Hour))
	n := 0
	for _, c := range s.hist[i] {
		if c.outcome != o || int32(s.day)-c.day >= days {
			continue
		}
		cp := &s.pop.campaigns[c.action]
		switch scope {
		case nba.ScopeAction:
			if cp.id == key {
				n++
			}
		case nba.ScopeGroup:
			if cp.family == key {
				n++
			}
		case nba.ScopeChannel:
			n++
		}
	}
	return n
}

// record stores a contact.
func (s *state) record(i, a int, o nba.Outcome) {
	s.hist[i] = append(s.hist[i], contact{action: int32(a), day: int32(s.day), outcome: o})
}

// joined reports whether customer i is a customer on day d.
func (s *state) joined(i int) bool { return s.pop.customers[i].join <= s.day }

// respond applies the effect of a response to campaign a.
func (s *state) respond(i, a int) {
	cp := &s.pop.campaigns[a]
	if cp.purchase {
		s.lastPurchase[i] = s.day
	}
	if cp.family == "service" {
		s.ticket[i] = false
	}
}

// organic is the response probability without an action.
func organic(x *[nFeat]float64) float64 { return sigmoid(-4 + x[fSpend] + 0.5*x[fDigital]) }
