package declog

import (
	"nba/nba/jsonw"
	"strconv"
	"time"
)

// Decision is one decision as the engine logs it. LogDecision copies what it
// needs; the caller may reuse the Decision and its slices right after.
type Decision struct {
	ID        string
	Time      time.Time
	Customer  string // raw id; only its pseudonym is written
	Channel   string
	Placement string
	Limit     int    // as requested (0: the engine's default of 1)
	Context   string // digest of the request context; written when not ""
	// ContextValues is the request context, written as the "context"
	// object when not empty.
	ContextValues []Value
	Control       bool
	Versions      []Version
	Candidates    []Candidate
	Chosen        []Chosen
	// Seed is the exploration seed the decision used (0: none).
	Seed uint64
	// Inputs is what the decision read besides the request; written when
	// Inputs.Logged.
	Inputs Inputs

	// Stale: the decision was made while the customer's live state could
	// not be read (the answer's "state":"stale"), written as "state".
	Stale bool
}

// Value is one named value of a request context or a profile. Kind says
// how it is written: KindNumber (Num), KindString (Str), KindBool (Num != 0)
// or KindCategory (both: the category and the code models see).
type Value struct {
	Key  string
	Kind byte
	Num  float64
	Str  string
}

// Value kinds.
const (
	KindNumber   byte = 'n'
	KindString   byte = 's'
	KindBool     byte = 'b'
	KindCategory byte = 'c'
)

// Inputs is what a decision read from the customer's state, enough with the
// request to decide it again.
type Inputs struct {
	// Logged says the inputs were traced and are to be written.
	Logged bool
	// Anonymous: the request had no customer id (the pseudonym written is
	// then that of "").
	Anonymous bool
	// Known: the customer's profile was found.
	Known bool
	// Profile holds the non-missing profile fields by name.
	Profile []Value
	// History holds the contact-history counts read.
	History []Count
	// NonZeroHistory says History lists only the counts that were not 0:
	// every other count the decision read was 0. Most customers have no
	// contacts in most windows, so this keeps records small.
	NonZeroHistory bool
	// Journeys holds the journey states read.
	Journeys []Journey
	// Contacts holds the contact lists read (suppressions decided from the
	// order of a customer's contacts); written only when there are any.
	Contacts []ContactList
}

// ContactList is one list of a customer's contacts a decision read.
type ContactList struct {
	Scope, Key string
	AtNS       []int64  // unix nanoseconds, as listed
	Outcomes   []string // of each contact
}

// Count is one contact-history count a decision read.
type Count struct {
	Scope, Key, Outcome string
	Window              time.Duration
	N                   int
}

// Journey is one journey state a decision read.
type Journey struct {
	Journey    string
	Step       int
	Status     string
	EnteredAt  time.Time
	LastStepAt time.Time // zero before the first step
}

// Version names the version of one input of a decision.
type Version struct {
	Name, Value string
}

// Candidate is one candidate action of a decision.
type Candidate struct {
	Action string
	// Stage is the stage that removed the candidate; empty when it was
	// scored, and then P, Value and Score are written.
	Stage           string
	P, Value, Score float64
}

// Chosen is one shown action, in slot order.
type Chosen struct {
	Action  string
	Prob    float64
	Samples int
}

// Feedback is one response event.
type Feedback struct {
	Decision string
	Time     time.Time
	Customer string // raw id; only its pseudonym is written
	Action   string
	Event    string
	Reward   float64
}

// appendDecision appends the decision's fields after "customer" (and the
// closing brace and newline).
func appendDecision(b []byte, d *Decision) []byte {
	b = appendField(b, "id", d.ID)
	b = append(b, `,"time":"`...)
	b = d.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"', ',')
	b = appendField(b, "channel", d.Channel)
	if d.Placement != "" {
		b = append(b, ',')
		b = appendField(b, "placement", d.Placement)
	}
	if d.Limit != 0 {
		b = append(b, `,"limit":`...)
		b = strconv.AppendInt(b, int64(d.Limit), 10)
	}
	if d.Context != "" {
		b = append(b, ',')
		b = appendField(b, "context_digest", d.Context)
	}
	if len(d.ContextValues) > 0 {
		b = append(b, `,"context":`...)
		b = appendValues(b, d.ContextValues)
	}
	if d.Seed != 0 {
		b = append(b, `,"seed":`...)
		b = strconv.AppendUint(b, d.Seed, 10)
	}
	if d.Inputs.Logged {
		b = appendInputs(b, &d.Inputs)
	}
	b = append(b, `,"control":`...)
	b = strconv.AppendBool(b, d.Control)
	if d.Stale {
		b = append(b, `,"state":"stale"`...)
	}
	b = append(b, `,"versions":{`...)
	for i, v := range d.Versions {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendField(b, v.Name, v.Value)
	}
	// Scored candidates are listed with their scores; removed ones are
	// grouped by the stage that removed them, which keeps records small (a
	// channel's removed candidates outnumber its scored ones).
	b = append(b, `},"candidates":[`...)
	first := true
	for i := range d.Candidates {
		c := &d.Candidates[i]
		if c.Stage != "" {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '{')
		b = appendField(b, "action", c.Action)
		b = appendNumber(b, "p", c.P)
		b = appendNumber(b, "value", c.Value)
		b = appendNumber(b, "score", c.Score)
		b = append(b, '}')
	}
	b = append(b, `],"removed":{`...)
	firstStage := true
	for i := range d.Candidates {
		st := d.Candidates[i].Stage
		if st == "" || stageSeen(d.Candidates[:i], st) {
			continue
		}
		if !firstStage {
			b = append(b, ',')
		}
		firstStage = false
		b = appendString(b, st)
		b = append(b, ':', '[')
		for j := i; j < len(d.Candidates); j++ {
			if c := &d.Candidates[j]; c.Stage == st {
				if j > i {
					b = append(b, ',')
				}
				b = appendString(b, c.Action)
			}
		}
		b = append(b, ']')
	}
	b = append(b, `},"chosen":[`...)
	for i := range d.Chosen {
		c := &d.Chosen[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendField(b, "action", c.Action)
		b = append(b, `,"slot":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = appendNumber(b, "prob", c.Prob)
		b = append(b, `,"samples":`...)
		b = strconv.AppendInt(b, int64(c.Samples), 10)
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

// appendValues appends values as a JSON object.
func appendValues(b []byte, vs []Value) []byte {
	b = append(b, '{')
	for i := range vs {
		v := &vs[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v.Key)
		b = append(b, ':')
		switch v.Kind {
		case KindString:
			b = appendString(b, v.Str)
		case KindBool:
			b = strconv.AppendBool(b, v.Num != 0)
		case KindCategory:
			b = append(b, '{')
			b = appendField(b, "s", v.Str)
			b = appendNumber(b, "n", v.Num)
			b = append(b, '}')
		default:
			b = appendFloat(b, v.Num)
		}
	}
	return append(b, '}')
}

// appendInputs appends ,"inputs":{...}.
func appendInputs(b []byte, in *Inputs) []byte {
	b = append(b, `,"inputs":{"known":`...)
	b = strconv.AppendBool(b, in.Known)
	if in.Anonymous {
		b = append(b, `,"anonymous":true`...)
	}
	b = append(b, `,"profile":`...)
	b = appendValues(b, in.Profile)
	if in.NonZeroHistory {
		b = append(b, `,"history_nonzero":true`...)
	}
	b = append(b, `,"history":[`...)
	for i := range in.History {
		h := &in.History[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendField(b, "scope", h.Scope)
		b = append(b, ',')
		b = appendField(b, "key", h.Key)
		b = append(b, ',')
		b = appendField(b, "outcome", h.Outcome)
		b = append(b, `,"window_ns":`...)
		b = strconv.AppendInt(b, int64(h.Window), 10)
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(h.N), 10)
		b = append(b, '}')
	}
	b = append(b, `],"journeys":[`...)
	for i := range in.Journeys {
		j := &in.Journeys[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendField(b, "journey", j.Journey)
		b = append(b, `,"step":`...)
		b = strconv.AppendInt(b, int64(j.Step), 10)
		b = append(b, ',')
		b = appendField(b, "status", j.Status)
		b = appendTime(b, "entered_at", j.EnteredAt)
		if !j.LastStepAt.IsZero() {
			b = appendTime(b, "last_step_at", j.LastStepAt)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(in.Contacts) > 0 {
		b = append(b, `,"contacts":[`...)
		for i := range in.Contacts {
			l := &in.Contacts[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = appendField(b, "scope", l.Scope)
			b = append(b, ',')
			b = appendField(b, "key", l.Key)
			b = append(b, `,"at_ns":[`...)
			for j, at := range l.AtNS {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, at, 10)
			}
			b = append(b, `],"outcomes":[`...)
			for j, o := range l.Outcomes {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendString(b, o)
			}
			b = append(b, "]}"...)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendTime appends ,"key":"RFC 3339 UTC time".
func appendTime(b []byte, key string, t time.Time) []byte {
	b = append(b, ',')
	b = appendString(b, key)
	b = append(b, ':', '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendFeedback appends the feedback's fields after "customer".
func appendFeedback(b []byte, f *Feedback) []byte {
	b = appendField(b, "decision", f.Decision)
	b = append(b, `,"time":"`...)
	b = f.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"', ',')
	b = appendField(b, "action", f.Action)
	b = append(b, ',')
	b = appendField(b, "event", f.Event)
	b = appendNumber(b, "reward", f.Reward)
	return append(b, "}\n"...)
}

// appendField appends "key":"value".
func appendField(b []byte, key, value string) []byte {
	b = appendString(b, key)
	b = append(b, ':')
	return appendString(b, value)
}

// appendNumber appends ,"key":number (null when not finite).
func appendNumber(b []byte, key string, v float64) []byte {
	b = append(b, ',')
	b = appendString(b, key)
	b = append(b, ':')
	return appendFloat(b, v)
}

// appendFloat appends v exactly (shortest round-tripping form), null when
// not finite.
func appendFloat(b []byte, v float64) []byte { return jsonw.AppendFloat(b, v) }

// stageSeen reports whether a candidate of cs was removed at stage st.
func stageSeen(cs []Candidate, st string) bool {
	for i := range cs {
		if cs[i].Stage == st {
			return true
		}
	}
	return false
}

// appendString appends s as a JSON string (see jsonw.AppendString).
var appendString = jsonw.AppendString
