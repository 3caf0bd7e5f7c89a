// Package evaluate analyses decision logs offline. It reads what
// nba/declog wrote and never touches a serving process:
//
//   - Uplift: treatment against the control group per action and channel;
//   - Replay: decide every logged decision again with a bundle, from the
//     inputs the decision logged, and report any difference (a regression
//     test of a bundle against production traffic);
//   - Evaluate: estimate a candidate bundle's value from the logs (IPS,
//     SNIPS, DR over the first slot; see nba/offpolicy).
//
// Limits: a decision replays exactly only under the online models' state
// it was made with (the catalog's priors, or a learner checkpoint); control
// decisions are skipped (holdouts hash the raw customer id, the log holds a
// pseudonym); the candidate's probabilities of logged actions it would not
// choose with the logged seed are searched with a bounded number of other
// seeds. Everything is single-threaded and holds one log's decisions in
// memory (Evaluate) or one at a time (Replay).
package evaluate

import (
	"fmt"
	"slices"

	"nba/nba/declog"
	"nba/nba/offpolicy"
)

// UpliftConfig says what counts as a response.
type UpliftConfig struct {
	// Responses are the feedback events that count as a response; default
	// accept and convert.
	Responses []string
}

// UpliftRow is treatment against control for one action on one channel.
// Action "*" is every decision of the channel together.
type UpliftRow struct {
	Action, Channel    string
	Treatment, Control offpolicy.Group
	offpolicy.Uplift
}

// decision is what a logged decision contributes to the uplift.
type decision struct {
	channel   string
	control   bool
	actions   []string
	responded bool
	value     float64
}

// Uplift reads the decision log files of prefix in dir and compares, per
// action and channel, the decisions that showed the action (treatment) with
// the control-group decisions that withheld it (control). A decision
// responded when any feedback of a response event names its id; its value is
// the sum of those feedbacks' rewards. Feedback for decisions not in the
// logs is ignored and counted in the returned orphans.
func Uplift(dir, prefix string, cfg UpliftConfig) (rows []UpliftRow, stats declog.ReadStats, orphans int, err error) {
	if len(cfg.Responses) == 0 {
		cfg.Responses = []string{"accept", "convert"}
	}
	decisions := map[string]*decision{}
	type fb struct {
		decision string
		reward   float64
	}
	var feedback []fb
	stats, err = declog.ReadDir(dir, prefix, func(line []byte) error {
		r, err := declog.ParseRecord(line)
		if err != nil {
			return err
		}
		switch r.Type {
		case "decision":
			d := &decision{channel: r.Channel, control: r.Control}
			for _, c := range r.Chosen {
				d.actions = append(d.actions, c.Action)
			}
			decisions[r.ID] = d
		case "feedback":
			if r.Decision != "" && slices.Contains(cfg.Responses, r.Event) {
				f := fb{decision: r.Decision}
				if r.Reward != nil {
					f.reward = *r.Reward
				}
				feedback = append(feedback, f)
			}
		}
		return nil
	})
	if err != nil {
		return nil, stats, 0, fmt.Errorf("cannot read decision log: %w", err)
	}
	for _, f := range feedback {
		d, ok := decisions[f.decision]
		if !ok {
			orphans++
			continue
		}
		d.responded = true
		d.value += f.reward
	}
	type key struct{ action, channel string }
	groups := map[key]*UpliftRow{}
	add := func(k key, d *decision) {
		g := groups[k]
		if g == nil {
			g = &UpliftRow{Action: k.action, Channel: k.channel}
			groups[k] = g
		}
		if d.control {
			g.Control.Add(d.responded, d.value)
		} else {
			g.Treatment.Add(d.responded, d.value)
		}
	}
	for _, d := range decisions {
		add(key{"*", d.channel}, d)
		for _, a := range d.actions {
			add(key{a, d.channel}, d)
		}
	}
	for _, g := range groups {
		g.Uplift = offpolicy.CompareGroups(g.Treatment, g.Control)
		rows = append(rows, *g)
	}
	slices.SortFunc(rows, func(a, b UpliftRow) int {
		if a.Channel != b.Channel {
			if a.Channel < b.Channel {
				return -1
			}
			return 1
		}
		switch {
		case a.Action == b.Action:
			return 0
		case a.Action == "*":
			return -1
		case b.Action == "*":
			return 1
		case a.Action < b.Action:
			return -1
		}
		return 1
	})
	return rows, stats, orphans, nil
}
