package server

import (
	"nba/nba/jsonw"
	"strconv"
	"time"
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

// appendDecision appends one decision object.
func appendDecision(dst []byte, req *DecideRequest, resp *DecideResponse, start time.Time) []byte {
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
	dst = append(dst, `,"versions":{"catalog":`...)
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
			dst = append(dst, `,"score":`...)
			dst = appendNumber(dst, c.Score)
			dst = append(dst, `,"selected":`...)
			dst = appendBool(dst, c.Selected)
			dst = append(dst, `,"reason":`...)
			dst = appendString(dst, c.Reason)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"took_us":`...)
	dst = strconv.AppendInt(dst, time.Since(start).Microseconds(), 10)
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
