package evaluate

import (
	"errors"
	"fmt"
	"slices"

	"nba/nba"
	"nba/nba/declog"
	"nba/nba/offpolicy"
)

// PolicyConfig configures Evaluate.
type PolicyConfig struct {
	// Prefix is the log file name prefix; default "decisions".
	Prefix string
	// Responses are the feedback events that count as a response; default
	// accept and convert.
	Responses []string
	// Reward is "response" (default: 1 when a response names the decision
	// and its first action, else 0) or "value" (the sum of those responses'
	// values).
	Reward string
	// Learner is a checkpoint of the candidate's online models; nil starts
	// from its priors.
	Learner []byte
	// Retries bounds the extra seeds tried to find an exploring candidate's
	// probability of a logged first action it did not choose with the
	// logged seed; default 64. When none puts it first, the probability is
	// taken as 0 and counted in PolicyReport.Unresolved.
	Retries int
}

// PolicyReport is a candidate policy's estimated value beside the logging
// policy's own.
type PolicyReport struct {
	// IPS, SNIPS and DR estimate the candidate's mean reward per decision,
	// each with a normal 95% interval; DR's reward model is the mean reward
	// of each logged first action.
	IPS, SNIPS, DR offpolicy.Estimate
	// Logged is the logging policy's mean reward over the same decisions
	// (on-policy).
	Logged offpolicy.Estimate
	// Decisions is the number of decision records read; Used those in the
	// estimates.
	Decisions, Used int
	// Agree counts the used decisions whose first action, with the logged
	// seed, is the logged one.
	Agree int
	// SkippedControl counts decisions of customers in a holdout (nothing
	// shown by the policy), SkippedNoAction those without a chosen action,
	// SkippedNoProb those whose first action has no logged probability or
	// 0, SkippedNoInputs those logged without inputs, SkippedChannel those
	// of a channel the candidate lacks.
	SkippedControl, SkippedNoAction, SkippedNoProb, SkippedNoInputs, SkippedChannel int
	// MissingCounts counts history counts the candidate asked for that the
	// log did not hold (served as 0); UnknownFields logged profile values
	// the candidate's schema lacks.
	MissingCounts, UnknownFields int
	// Unresolved counts decisions where an exploring candidate's
	// probability of the logged first action was not found (taken as 0).
	Unresolved int
	// Orphans counts response feedback naming a decision not in the logs.
	Orphans int
	Stats   declog.ReadStats
}

// Evaluate estimates, from the decision log in dir, the value the candidate
// catalog c would have had: each logged decision is decided again by the
// candidate from its logged inputs, and the candidate's probability of
// showing the logged first action first is weighed against the logged
// probability (off-policy evaluation of the first slot; see package
// offpolicy for the estimators and their assumptions).
//
// The candidate's probability is that of its first action when it equals
// the logged one with the logged seed (1 for a candidate that does not
// explore); else, when the candidate explores, the probability it logs
// when another seed puts the logged action first; else 0. With the logging
// catalog itself every weight is 1 and every estimate equals the logged
// policy's value.
func Evaluate(dir string, c *nba.Catalog, cfg PolicyConfig) (PolicyReport, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "decisions"
	}
	if len(cfg.Responses) == 0 {
		cfg.Responses = []string{"accept", "convert"}
	}
	switch cfg.Reward {
	case "":
		cfg.Reward = "response"
	case "response", "value":
	default:
		return PolicyReport{}, fmt.Errorf("cannot evaluate: unknown reward %q (want response or value)", cfg.Reward)
	}
	if cfg.Retries == 0 {
		cfg.Retries = 64
	}
	var rep PolicyReport
	var recs []declog.Record
	type key struct{ decision, action string }
	rewards := map[key]float64{}
	var err error
	rep.Stats, err = declog.ReadDir(dir, cfg.Prefix, func(line []byte) error {
		r, err := declog.ParseRecord(line)
		if err != nil {
			return err
		}
		switch {
		case r.Type == "decision":
			rep.Decisions++
			recs = append(recs, r)
		case r.Decision != "" && slices.Contains(cfg.Responses, r.Event):
			k := key{r.Decision, r.Action}
			if cfg.Reward == "response" {
				rewards[k] = 1
			} else if r.Reward != nil {
				rewards[k] += *r.Reward
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("cannot evaluate: cannot read decision log: %w", err)
	}
	seen := make(map[string]bool, len(recs))
	for i := range recs {
		seen[recs[i].ID] = true
	}
	for k := range rewards {
		if !seen[k.decision] {
			rep.Orphans++
		}
	}

	r, err := NewReplayer(c, cfg.Learner)
	if err != nil {
		return rep, err
	}
	actions := map[string]int{}
	index := func(id string) int {
		i, ok := actions[id]
		if !ok {
			i = len(actions)
			actions[id] = i
		}
		return i
	}
	var logs []offpolicy.Logged
	var target []float64 // the candidate's probability of the logged first action
	var drawn []int      // the candidate's first action with the logged seed (-1: none)
	for i := range recs {
		rec := &recs[i]
		switch {
		case rec.Control:
			rep.SkippedControl++
			continue
		case len(rec.Chosen) == 0:
			rep.SkippedNoAction++
			continue
		case rec.Chosen[0].Prob == nil || !(*rec.Chosen[0].Prob > 0 && *rec.Chosen[0].Prob <= 1):
			rep.SkippedNoProb++
			continue
		case rec.Inputs == nil:
			rep.SkippedNoInputs++
			continue
		}
		first := rec.Chosen[0].Action
		d, err := r.Decide(rec, 0)
		if errors.Is(err, nba.ErrUnknownChannel) {
			rep.SkippedChannel++
			continue
		}
		if err != nil {
			return rep, fmt.Errorf("cannot evaluate: decision %q: %w", rec.ID, err)
		}
		pi, c1 := 0.0, -1
		if len(d.Actions) > 0 {
			c1 = index(d.Actions[0].Action.ID)
			if d.Actions[0].Action.ID == first {
				pi = d.Actions[0].Prob
				rep.Agree++
			}
		}
		if pi == 0 && d.Trace.Seed != 0 {
			pi = r.probFirst(rec, first, cfg.Retries)
			if pi == 0 {
				rep.Unresolved++
			}
		}
		logs = append(logs, offpolicy.Logged{Action: index(first), Propensity: *rec.Chosen[0].Prob, Reward: rewards[key{rec.ID, first}]})
		target = append(target, pi)
		drawn = append(drawn, c1)
	}
	rep.MissingCounts, rep.UnknownFields = r.MissingCounts(), r.UnknownFields()
	rep.Used = len(logs)
	policy := func(i, a int) float64 {
		if a == logs[i].Action {
			return target[i]
		}
		return 0
	}
	rep.IPS = offpolicy.IPS(logs, policy)
	rep.SNIPS = offpolicy.SNIPS(logs, policy)

	// DR with the mean reward per logged action as reward model; the
	// direct term Σ_a π(a)·r̂(a) is estimated by r̂ of the candidate's own
	// draw (an action the candidate shows that was never logged first gets
	// the overall mean).
	sum, n := make([]float64, len(actions)), make([]float64, len(actions))
	var all float64
	for _, l := range logs {
		sum[l.Action] += l.Reward
		n[l.Action]++
		all += l.Reward
	}
	if len(logs) > 0 {
		all /= float64(len(logs))
	}
	rhat := func(a int) float64 {
		if a < 0 {
			return 0 // the candidate shows nothing
		}
		if n[a] == 0 {
			return all
		}
		return sum[a] / n[a]
	}
	terms, est := offpolicy.IPSTerms(logs, policy)
	for k := range terms.Num {
		l := logs[k]
		w := target[k] / l.Propensity
		terms.Num[k] = rhat(drawn[k]) + w*(l.Reward-rhat(l.Action))
	}
	rep.DR = offpolicy.Summarize(terms, est)

	on := make([]float64, len(logs))
	for k, l := range logs {
		on[k] = l.Reward
	}
	rep.Logged = offpolicy.Summarize(offpolicy.Terms{Num: on}, offpolicy.Estimate{N: len(logs), EffectiveN: float64(len(logs)), MaxWeight: 1})
	return rep, nil
}

// probFirst returns the probability with which the replaying catalog puts
// action first for rec, found by deciding with up to retries other seeds
// (derived from the logged one); 0 when none puts it first.
func (r *Replayer) probFirst(rec *declog.Record, action string, retries int) float64 {
	seed := seedOf(rec)
	for range retries {
		seed = splitmix(seed)
		d, err := r.Decide(rec, seed|1)
		if err != nil || len(d.Actions) == 0 {
			return 0
		}
		if d.Actions[0].Action.ID == action {
			return d.Actions[0].Prob
		}
	}
	return 0
}

// splitmix is one step of SplitMix64 (Steele, Lea & Flood 2014).
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
