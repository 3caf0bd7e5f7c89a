package server

import (
	"strconv"
	"strings"
	"time"

	"nba/nba/jsonw"
)

// The response encoders append to a reused buffer without reflection.

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string (see jsonw.AppendString).
var appendString = jsonw.AppendString

// appendNumber appends v in the shortest form that reads back exactly, or
// null if v is not finite (JSON has no NaN or infinities).
func appendNumber(dst []byte, v float64) []byte { return jsonw.AppendFloat(dst, v) }

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// appendDecision appends one decision object, timed from start.
func appendDecision(dst []byte, req *DecideRequest, resp *DecideResponse, start time.Time) []byte {
	return AppendDecision(dst, req, resp, time.Since(start))
}

// AppendDecision appends to dst the JSON object POST /v1/decide answers for
// one decision (the format the README documents), took being the time the
// decision took. It is the one encoder of a decision: the HTTP API and the
// command line print the same JSON. It allocates nothing beyond growing dst.
func AppendDecision(dst []byte, req *DecideRequest, resp *DecideResponse, took time.Duration) []byte {
	dst = append(dst, `{"decision_id":`...)
	dst = appendString(dst, req.DecisionID)
	dst = append(dst, `,"customer_id":`...)
	dst = appendString(dst, req.CustomerID)
	dst = append(dst, `,"channel":`...)
	dst = appendString(dst, req.Channel)
	dst = append(dst, `,"actions":`...)
	dst = appendActions(dst, resp.Actions)
	dst = append(dst, `,"control":`...)
	dst = appendBool(dst, resp.Control)
	if resp.Control {
		dst = append(dst, `,"withheld":`...)
		dst = appendActions(dst, resp.Withheld)
	}
	if resp.Stale {
		dst = append(dst, `,"state":"stale"`...)
	}
	if resp.Stopped {
		dst = append(dst, `,"stopped_by":`...)
		dst = appendPolicy(dst, &resp.StoppedBy)
	}
	dst = append(dst, `,"versions":{"bundle":`...)
	dst = appendString(dst, resp.Versions.Bundle)
	dst = append(dst, `,"catalog":`...)
	dst = appendString(dst, resp.Versions.Catalog)
	dst = append(dst, `,"model":`...)
	dst = appendString(dst, resp.Versions.Model)
	dst = append(dst, `,"snapshot":`...)
	dst = appendString(dst, resp.Versions.Snapshot)
	dst = append(dst, '}')
	if req.Explain {
		dst = append(dst, `,"candidates":[`...)
		for i := range resp.Candidates {
			c := &resp.Candidates[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = appendString(dst, c.ID)
			dst = append(dst, `,"stage":`...)
			dst = appendString(dst, c.Stage)
			dst = append(dst, `,"score":`...)
			dst = appendNumber(dst, c.Score)
			dst = append(dst, `,"selected":`...)
			dst = appendBool(dst, c.Selected)
			dst = append(dst, `,"reason":"`...)
			dst = appendReason(dst, c, req.Placement, resp.Limit)
			dst = append(dst, '"')
			if c.Rank > 0 {
				dst = append(dst, `,"rank":`...)
				dst = strconv.AppendInt(dst, int64(c.Rank), 10)
				dst = append(dst, `,"propensity":`...)
				dst = appendNumber(dst, c.Propensity)
				dst = append(dst, `,"weight":`...)
				dst = appendNumber(dst, c.Weight)
				dst = append(dst, `,"value":`...)
				dst = appendNumber(dst, c.Value)
				dst = append(dst, `,"lever":`...)
				dst = appendNumber(dst, c.Lever)
				dst = append(dst, `,"tier":`...)
				dst = strconv.AppendInt(dst, int64(c.Tier), 10)
			}
			if x := &c.Exploration; x.Method != "" {
				dst = append(dst, `,"exploration":{"method":`...)
				dst = appendString(dst, x.Method)
				dst = append(dst, `,"mean":`...)
				dst = appendNumber(dst, x.Mean)
				if x.Method == "epsilon" { // ranks by the mean or by chance: nothing drawn
					dst = append(dst, `,"random_slate":`...)
					dst = appendBool(dst, x.RandomSlate)
				} else {
					dst = append(dst, `,"drawn":`...)
					dst = appendNumber(dst, x.Drawn)
				}
				dst = append(dst, '}')
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"took_us":`...)
	dst = strconv.AppendInt(dst, took.Microseconds(), 10)
	return append(dst, '}')
}

// appendReason appends, inside a JSON string, what happened to the
// candidate: its stage's verb, then the detail. Every phrase starts with
// the verb of its stage:
//
//	chosen          chosen
//	placement       not offered on placement P
//	schedule        not scheduled: before its start | after its end
//	journey         held: journey step not due | held by locked journey J
//	eligibility     failed eligible: RULE
//	applicability   failed applicable: RULE
//	suitability     failed suitable: RULE
//	contact_policy  cap reached: N OUTCOMEs of SCOPE KEY in WINDOW (max M)
//	                suppressed: POLICY (count N)
//	exclusion       excluded: another action of its exclusive group ranked higher
//	holdout         withheld: in the global holdout | in the action's holdout
//	rank            outranked: not among the best N
//	consent         no consent: CHANNEL PURPOSE denied by SOURCE at TS | denied by default
//	                | denied: the customer's state was unavailable
func appendReason(dst []byte, c *Candidate, placement string, limit int) []byte {
	switch c.Stage {
	case StageChosen:
		return append(dst, "chosen"...)
	case StagePlacement:
		dst = append(dst, "not offered on placement "...)
		return appendInString(dst, placement)
	case StageSchedule:
		dst = append(dst, "not scheduled"...)
	case StageJourney:
		if strings.HasPrefix(c.Detail, "held ") {
			return appendInString(dst, c.Detail)
		}
		dst = append(dst, "held"...)
	case StageEligibility:
		dst = append(dst, "failed eligible"...)
	case StageApplicability:
		dst = append(dst, "failed applicable"...)
	case StageSuitability:
		dst = append(dst, "failed suitable"...)
	case StageContactPolicy:
		p := &c.Policy
		if p.Suppression {
			dst = append(dst, "suppressed: "...)
			dst = appendInString(dst, p.Desc)
			dst = append(dst, " (count "...)
			dst = strconv.AppendInt(dst, int64(p.Count), 10)
			return append(dst, ')')
		}
		if p.Count < 0 {
			dst = append(dst, "exact cap not reserved: "...)
			dst = appendInString(dst, p.Desc)
			break // Detail says why
		}
		dst = append(dst, "cap reached: "...)
		dst = strconv.AppendInt(dst, int64(p.Count), 10)
		dst = append(dst, ' ')
		dst = appendInString(dst, p.Outcome)
		if p.Count != 1 {
			dst = append(dst, 's')
		}
		dst = append(dst, " of "...)
		dst = appendInString(dst, p.Scope)
		dst = append(dst, ' ')
		dst = appendInString(dst, p.Key)
		dst = append(dst, " in "...)
		dst = appendWindow(dst, p.Window)
		dst = append(dst, " (max "...)
		dst = strconv.AppendInt(dst, int64(p.Max), 10)
		if p.Reserved > 0 {
			dst = append(dst, "; "...)
			dst = strconv.AppendInt(dst, int64(p.Reserved), 10)
			dst = append(dst, " reserved by decisions awaiting their impression"...)
		}
		return append(dst, ')')
	case StageExclusion:
		dst = append(dst, "excluded"...)
	case StageHoldout:
		dst = append(dst, "withheld"...)
	case StageRank:
		dst = append(dst, "outranked: not among the best "...)
		return strconv.AppendInt(dst, int64(limit), 10)
	case StageConsent:
		x := &c.Consent
		dst = append(dst, "no consent: "...)
		dst = appendInString(dst, x.Channel)
		dst = append(dst, ' ')
		dst = appendInString(dst, x.Purpose)
		if x.Default {
			return append(dst, " denied by default"...)
		}
		if x.Stale {
			return append(dst, " denied: the customer's state was unavailable"...)
		}
		dst = append(dst, " denied"...)
		if x.Source != "" {
			dst = append(dst, " by "...)
			dst = appendInString(dst, x.Source)
		}
		dst = append(dst, " at "...)
		return x.At.UTC().AppendFormat(dst, time.RFC3339)
	default:
		dst = appendInString(dst, c.Stage)
	}
	if c.Detail != "" {
		dst = append(dst, ": "...)
		dst = appendInString(dst, c.Detail)
	}
	return dst
}

// appendInString appends s escaped for the inside of a JSON string.
func appendInString(dst []byte, s string) []byte {
	n := len(dst)
	dst = appendString(dst, s)
	copy(dst[n:], dst[n+1:len(dst)-1]) // drop the quotes
	return dst[:len(dst)-2]
}

// appendWindow appends a window as the catalog writes it: 7d, 12h, 30m,
// or seconds.
func appendWindow(dst []byte, w time.Duration) []byte {
	for _, u := range [...]struct {
		d    time.Duration
		name byte
	}{{24 * time.Hour, 'd'}, {time.Hour, 'h'}, {time.Minute, 'm'}} {
		if w != 0 && w%u.d == 0 {
			dst = strconv.AppendInt(dst, int64(w/u.d), 10)
			return append(dst, u.name)
		}
	}
	dst = strconv.AppendInt(dst, int64(w/time.Second), 10)
	return append(dst, 's')
}

// appendPolicy appends a contact policy that held as a JSON object.
func appendPolicy(dst []byte, p *ContactPolicy) []byte {
	dst = append(dst, `{"policy":`...)
	dst = appendString(dst, p.Desc)
	if p.Suppression {
		dst = append(dst, `,"kind":"suppression","scope":`...)
	} else {
		dst = append(dst, `,"kind":"cap","scope":`...)
	}
	dst = appendString(dst, p.Scope)
	dst = append(dst, `,"key":`...)
	dst = appendString(dst, p.Key)
	dst = append(dst, `,"outcome":`...)
	dst = appendString(dst, p.Outcome)
	dst = append(dst, `,"window":"`...)
	dst = appendWindow(dst, p.Window)
	dst = append(dst, `","max":`...)
	dst = strconv.AppendInt(dst, int64(p.Max), 10)
	dst = append(dst, `,"count":`...)
	dst = strconv.AppendInt(dst, int64(p.Count), 10)
	if p.Reserved > 0 {
		dst = append(dst, `,"reserved":`...)
		dst = strconv.AppendInt(dst, int64(p.Reserved), 10)
	}
	return append(dst, '}')
}

// appendActions appends a JSON array of actions.
func appendActions(dst []byte, actions []Action) []byte {
	dst = append(dst, '[')
	for i := range actions {
		a := &actions[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = appendString(dst, a.ID)
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, a.Name)
		dst = append(dst, `,"score":`...)
		dst = appendNumber(dst, a.Score)
		dst = append(dst, `,"propensity":`...)
		dst = appendNumber(dst, a.Propensity)
		dst = append(dst, `,"value":`...)
		dst = appendNumber(dst, a.Value)
		dst = append(dst, `,"lever":`...)
		dst = appendNumber(dst, a.Lever)
		dst = append(dst, `,"tier":`...)
		dst = strconv.AppendInt(dst, int64(a.Tier), 10)
		dst = append(dst, `,"treatment":`...)
		if len(a.Treatment) == 0 {
			dst = append(dst, "{}"...)
		} else {
			dst = append(dst, a.Treatment...)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendError appends the error body {"error":{"code":..,"message":..}}.
func appendError(dst []byte, code, msg string) []byte {
	dst = append(dst, `{"error":{"code":`...)
	dst = appendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, msg)
	return append(dst, "}}"...)
}

// appendDecisionID writes a 32-hex-digit id: the process's random prefix
// then the counter.
func appendDecisionID(dst []byte, prefix, n uint64) []byte {
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(prefix>>uint(shift))&0xf])
	}
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(n>>uint(shift))&0xf])
	}
	return dst
}
