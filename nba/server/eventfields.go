package server

import (
	"time"
	"unicode/utf8"
)

// EventFields is one event as a transport other than HTTP carries it (an
// entry of a Redis stream): the members of a POST /v1/events body as
// separate strings, attrs as the JSON object the body would hold.
type EventFields struct {
	CustomerID string
	Type       string
	TS         string // RFC 3339; empty: the time received
	EventID    string // empty: none
	Attrs      []byte // a JSON object of strings, numbers and booleans; empty: none
	// IDs is a JSON object of identifiers by namespace ("ids" of POST
	// /v1/events: string values, at most MaxIDs), in place of (or beside)
	// CustomerID; empty: none.
	IDs []byte
}

// EventDecoder decodes EventFields with the checks and bounds POST
// /v1/events applies under the same Config: id lengths, the ts range,
// attribute count and types. It is safe for concurrent use.
type EventDecoder struct {
	lim limits
}

// NewEventDecoder returns a decoder with cfg's bounds (defaults for the
// zero values, as New takes them).
func NewEventDecoder(cfg Config) (*EventDecoder, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &EventDecoder{lim: limits{maxIDBytes: cfg.MaxIDBytes, maxFields: cfg.MaxFields, maxLimit: cfg.MaxLimit,
		maxBatch: cfg.MaxBatch, minTime: cfg.MinTime, maxAhead: cfg.MaxTimeAhead}}, nil
}

// Decode fills ev from f as if f had been posted to /v1/events at now. An
// error says what is wrong with f, in the words the HTTP answer uses. ev
// keeps no memory of f's Attrs.
func (d *EventDecoder) Decode(f EventFields, ev *Event, now time.Time) error {
	*ev = Event{CustomerID: f.CustomerID, Type: f.Type, Attrs: ev.Attrs[:0], IDs: ev.IDs[:0]}
	// A JSON body cannot carry invalid UTF-8 (POST /v1/events answers
	// malformed_json), so neither may a field: an id of raw bytes would
	// name a customer no HTTP request can reach and that an export (JSON)
	// would rename.
	for _, fv := range [...]struct{ name, v string }{{"customer_id", f.CustomerID}, {"type", f.Type}, {"event_id", f.EventID}, {"ts", f.TS}} {
		if !utf8.ValidString(fv.v) {
			return invalid("%s is not valid UTF-8", fv.name)
		}
	}
	if len(f.IDs) > 0 {
		// A fresh arena: the decoded strings outlive this call.
		var s scanner
		s.reset(f.IDs, nil)
		var err error
		if ev.IDs, err = s.ids(ev.IDs, &d.lim); err == nil {
			err = s.end()
		}
		if de, ok := err.(*decodeError); ok && de.code == CodeMalformedJSON {
			return invalid("ids is not a JSON object of strings: %s", de.msg)
		}
		if err != nil {
			return err
		}
	}
	if err := d.lim.id("customer_id", f.CustomerID, len(ev.IDs) == 0); err != nil {
		return err
	}
	if err := d.lim.id("type", f.Type, true); err != nil {
		return err
	}
	if len(f.EventID) > MaxEventIDBytes {
		return invalid("event_id is longer than %d bytes", MaxEventIDBytes)
	}
	ev.EventID = f.EventID
	var err error
	if ev.TS, err = d.lim.ts(f.TS, now); err != nil {
		return err
	}
	if len(f.Attrs) == 0 {
		return nil
	}
	// A fresh arena: the decoded strings outlive this call.
	var s scanner
	s.reset(f.Attrs, nil)
	if ev.Attrs, err = s.fields("attrs", ev.Attrs, d.lim.maxFields); err == nil {
		err = s.end()
	}
	if de, ok := err.(*decodeError); ok && de.code == CodeMalformedJSON {
		return invalid("attrs is not a JSON object of strings, numbers and booleans: %s", de.msg)
	}
	return err
}
