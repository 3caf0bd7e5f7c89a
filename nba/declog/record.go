package declog

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Decision is one decision as the engine logs it. LogDecision copies what it
// needs; the caller may reuse the Decision and its slices right after.
type Decision struct {
	ID         string
	Time       time.Time
	Customer   string // raw id; only its pseudonym is written
	Channel    string
	Context    string // digest of the request context
	Control    bool
	Versions   []Version
	Candidates []Candidate
	Chosen     []Chosen
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
	b = append(b, ',')
	b = appendField(b, "context", d.Context)
	b = append(b, `,"control":`...)
	b = strconv.AppendBool(b, d.Control)
	b = append(b, `,"versions":{`...)
	for i, v := range d.Versions {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendField(b, v.Name, v.Value)
	}
	b = append(b, `},"candidates":[`...)
	for i := range d.Candidates {
		c := &d.Candidates[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendField(b, "action", c.Action)
		if c.Stage != "" {
			b = append(b, ',')
			b = appendField(b, "stage", c.Stage)
		} else {
			b = appendNumber(b, "p", c.P)
			b = appendNumber(b, "value", c.Value)
			b = appendNumber(b, "score", c.Score)
		}
		b = append(b, '}')
	}
	b = append(b, `],"chosen":[`...)
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
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
