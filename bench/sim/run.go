package main

import (
	"fmt"
	"sync"

	"nba/nba"
)

// Config sizes a simulation.
type Config struct {
	Customers int    // population size
	Days      int    // simulated days
	Seed      uint64 // seeds the population, the truth and every coin flip
	Draws     int    // Monte-Carlo draws of the learner's thompson exploration
	TrainRows int    // day-0 observations the offline model is fitted on
	Parallel  int    // policies simulated at once
}

// Result is one policy's run.
type Result struct {
	Policy string
	// Decisions counts visits decided (treated and control); Shown the
	// treated visits that got an action.
	Decisions, Shown int
	// TreatedCustomers and ControlCustomers count the customers who had
	// joined by the last day, outside and inside the 10% global holdout.
	TreatedCustomers, ControlCustomers int
	// TreatedResp counts responses of treated customers (to an action, or
	// organic when none was shown); ControlResp organic responses in control.
	TreatedResp, ControlResp int
	// Cum[d] is TreatedResp by the end of day d; CumExpected[d] the sum of
	// the true response probabilities of the same visits (its expectation).
	Cum, CumExpected []float64
}

// Uplift is the responses per treated customer minus those per control
// customer over the run.
func (r *Result) Uplift() float64 {
	return float64(r.TreatedResp)/float64(max(r.TreatedCustomers, 1)) - float64(r.ControlResp)/float64(max(r.ControlCustomers, 1))
}

// simulate runs every policy on the same population.
func simulate(cfg Config, pols []string) ([]Result, error) {
	pop := newPopulation(cfg.Customers, cfg.Seed)
	off, err := trainOffline(pop, cfg.TrainRows)
	if err != nil {
		return nil, err
	}
	opts := nba.Options{Schema: schema, Models: map[string]nba.Scorer{"offline": off, "oracle": oracleScorer(pop)}}
	out := make([]Result, len(pols))
	errs := make([]error, len(pols))
	sem := make(chan struct{}, max(cfg.Parallel, 1))
	var wg sync.WaitGroup
	for k, pol := range pols {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[k], errs[k] = runPolicy(cfg, pop, pol, opts)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func runPolicy(cfg Config, pop *population, pol string, opts nba.Options) (Result, error) {
	res := Result{Policy: pol, Cum: make([]float64, cfg.Days), CumExpected: make([]float64, cfg.Days)}
	cat, err := nba.CompileCatalog(pol+".yaml", []byte(catalog(pop, pol, cfg.Draws)), opts)
	if err != nil {
		return res, err
	}
	st := newState(pop)
	eng, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: st, History: st})
	if err != nil {
		return res, err
	}
	learn := pol == polLearner || pol == polGreedy
	var d nba.Decision
	var x [nFeat]float64
	expected := 0.0
	for day := range cfg.Days {
		st.advance(day)
		now := st.now()
		for i := range pop.customers {
			c := &pop.customers[i]
			if !st.joined(i) || pop.u(i, day, streamVisit) >= c.visitP {
				continue
			}
			st.features(i, &x)
			u := pop.u(i, day, streamResponse)
			req := nba.Request{Customer: c.id, Channel: "web", Now: now, Seed: pop.hash(i, day, streamSeed) | 1}
			if err := eng.Decide(&req, &d); err != nil {
				return res, fmt.Errorf("cannot decide for %s on day %d: %w", c.id, day, err)
			}
			res.Decisions++
			if d.Control || len(d.Actions) == 0 {
				p := organic(&x)
				if u < p {
					st.lastPurchase[i] = day
					if d.Control {
						res.ControlResp++
					} else {
						res.TreatedResp++
					}
				}
				if !d.Control {
					expected += p
				}
				continue
			}
			res.Shown++
			id := d.Actions[0].Action.ID
			a := -1 - pop.byID[id]
			p := pop.campaigns[a].prob(&x)
			expected += p
			st.record(i, a, nba.Impression)
			y := u < p
			if learn {
				// Observe before the response changes the profile: the
				// features are those the decision saw.
				if err := eng.Observe(c.id, id, b2f(y), now); err != nil {
					return res, err
				}
			}
			if y {
				res.TreatedResp++
				st.record(i, a, nba.Accept)
				st.respond(i, a)
			}
		}
		res.Cum[day], res.CumExpected[day] = float64(res.TreatedResp), expected
	}
	for i := range pop.customers {
		if pop.customers[i].join < cfg.Days {
			if pop.customers[i].control {
				res.ControlCustomers++
			} else {
				res.TreatedCustomers++
			}
		}
	}
	return res, nil
}
