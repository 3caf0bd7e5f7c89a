package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// The request decoders are hand-written: they decode straight into pooled
// structs without reflection or allocation. Decoded strings are written into
// an arena whose capacity is at least the body's length before decoding
// starts; a decoded string is never longer than its encoding, so the arena
// never grows and strings pointing into it stay valid until it is reset.
//
// They are stricter than encoding/json in two ways: invalid UTF-8 in a string
// is an error (encoding/json replaces it with U+FFFD), and nesting deeper than
// maxDepth is an error. Unknown fields are skipped; a repeated field keeps its
// last value, as in encoding/json.

// maxDepth bounds the nesting of skipped values (unknown fields).
const maxDepth = 32

// decodeError is a request the decoders refuse; code is malformed_json for
// syntax and invalid_request for well-formed JSON of the wrong shape.
type decodeError struct {
	code string
	msg  string
}

func (e *decodeError) Error() string { return e.msg }

func (e *decodeError) httpError() *Error {
	return &Error{Status: http.StatusBadRequest, Code: e.code, Message: e.msg}
}

type scanner struct {
	data  []byte
	pos   int
	arena []byte
}

func (s *scanner) reset(data []byte, arena []byte) []byte {
	if cap(arena) < len(data) {
		arena = make([]byte, 0, len(data))
	}
	s.data, s.pos, s.arena = data, 0, arena[:0]
	return s.arena
}

func (s *scanner) syntax(format string, args ...any) error {
	return &decodeError{code: CodeMalformedJSON, msg: fmt.Sprintf("cannot decode body: offset %d: ", s.pos) + fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return &decodeError{code: CodeInvalidRequest, msg: fmt.Sprintf(format, args...)}
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.pos >= len(s.data) {
			return s.syntax("unexpected end, want %q", c)
		}
		return s.syntax("unexpected %q, want %q", s.data[s.pos], c)
	}
	s.pos++
	return nil
}

// object consumes the '{' that opens an object; well-formed JSON of another
// type is an invalid_request, not a syntax error.
func (s *scanner) object(what string) error {
	switch s.peek() {
	case '{':
		s.pos++
		return nil
	case 0:
		return s.syntax("unexpected end, want '{'")
	}
	if err := s.skip(0); err != nil {
		return err
	}
	return invalid("%s must be a JSON object", what)
}

// end checks that nothing but space follows the value.
func (s *scanner) end() error {
	if s.peek() != 0 || s.pos < len(s.data) {
		return s.syntax("unexpected data after the value")
	}
	return nil
}

// nextMember advances over an object's next key and colon. It returns
// ok=false after the closing brace. first must start true for each object.
func (s *scanner) nextMember(first *bool) (key string, ok bool, err error) {
	c := s.peek()
	if *first {
		*first = false
		if c == '}' {
			s.pos++
			return "", false, nil
		}
	} else {
		switch c {
		case '}':
			s.pos++
			return "", false, nil
		case ',':
			s.pos++
			c = s.peek()
		default:
			return "", false, s.syntax("want ',' or '}' in object")
		}
	}
	if c != '"' {
		return "", false, s.syntax("want a string key in object")
	}
	key, err = s.str()
	if err != nil {
		return "", false, err
	}
	if err := s.expect(':'); err != nil {
		return "", false, err
	}
	return key, true, nil
}

// nextElem advances to an array's next element; ok=false after ']'.
func (s *scanner) nextElem(first *bool) (ok bool, err error) {
	c := s.peek()
	if c == ']' { // "[1,]" never gets here: it is refused after the ','
		s.pos++
		return false, nil
	}
	if *first {
		*first = false
		return true, nil
	}
	if c != ',' {
		return false, s.syntax("want ',' or ']' in array")
	}
	s.pos++
	if s.peek() == ']' {
		return false, s.syntax("trailing ',' in array")
	}
	return true, nil
}

// str decodes a string at the current position into the arena.
func (s *scanner) str() (string, error) {
	if s.peek() != '"' {
		return "", s.syntax("want a string")
	}
	s.pos++
	start := len(s.arena)
	for {
		// Copy the run of plain ASCII bytes in one append.
		i := s.pos
		for i < len(s.data) {
			c := s.data[i]
			if c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
				break
			}
			i++
		}
		s.arena = append(s.arena, s.data[s.pos:i]...)
		s.pos = i
		if s.pos >= len(s.data) {
			return "", s.syntax("unterminated string")
		}
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.arenaString(start), nil
		case c < 0x20:
			return "", s.syntax("control character in string")
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && n == 1 {
				return "", s.syntax("invalid UTF-8 in string")
			}
			s.arena = append(s.arena, s.data[s.pos:s.pos+n]...)
			s.pos += n
		default: // backslash
			if s.pos+1 >= len(s.data) {
				return "", s.syntax("unterminated escape")
			}
			e := s.data[s.pos+1]
			s.pos += 2
			switch e {
			case '"', '\\', '/':
				s.arena = append(s.arena, e)
			case 'b':
				s.arena = append(s.arena, '\b')
			case 'f':
				s.arena = append(s.arena, '\f')
			case 'n':
				s.arena = append(s.arena, '\n')
			case 'r':
				s.arena = append(s.arena, '\r')
			case 't':
				s.arena = append(s.arena, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return "", s.syntax("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					// A high surrogate followed by a low one is one rune;
					// anything else is U+FFFD, as in encoding/json.
					r2 := utf8.RuneError
					save := s.pos
					if s.pos+1 < len(s.data) && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
						s.pos += 2
						if lo, ok := s.hex4(); ok {
							if d := utf16.DecodeRune(r, lo); d != utf8.RuneError {
								r2 = d
							}
						}
						if r2 == utf8.RuneError {
							s.pos = save
						}
					}
					r = r2
				}
				s.arena = utf8.AppendRune(s.arena, r)
			default:
				return "", s.syntax("invalid escape '\\%c'", e)
			}
		}
	}
}

func (s *scanner) hex4() (rune, bool) {
	if s.pos+4 > len(s.data) {
		return 0, false
	}
	var r rune
	for _, c := range s.data[s.pos : s.pos+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.pos += 4
	return r, true
}

// arenaString returns the arena's bytes from start as a string without
// copying. The arena never reallocates during a decode (see the file comment).
func (s *scanner) arenaString(start int) string {
	if len(s.arena) == start {
		return ""
	}
	return unsafe.String(&s.arena[start], len(s.arena)-start)
}

// num decodes a JSON number; it must be finite as a float64.
func (s *scanner) num() (float64, error) {
	s.ws()
	start := s.pos
	d := s.data
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return 0, s.syntax("want a number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return 0, s.syntax("want a digit after '.'")
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return 0, s.syntax("want a digit in exponent")
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	s.pos = i
	f, err := strconv.ParseFloat(unsafe.String(&d[start], i-start), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, &decodeError{code: CodeInvalidRequest, msg: fmt.Sprintf("number %.40s is out of range", d[start:i])}
	}
	return f, nil
}

// lit consumes the literal word (true, false, null).
func (s *scanner) lit(word string) bool {
	if len(s.data)-s.pos >= len(word) && string(s.data[s.pos:s.pos+len(word)]) == word {
		s.pos += len(word)
		return true
	}
	return false
}

// null consumes a null if one is next.
func (s *scanner) null() bool {
	return s.peek() == 'n' && s.lit("null")
}

func (s *scanner) boolean(field string) (bool, error) {
	switch s.peek() {
	case 't':
		if s.lit("true") {
			return true, nil
		}
	case 'f':
		if s.lit("false") {
			return false, nil
		}
	case '"', '{', '[', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if err := s.skip(0); err != nil {
			return false, err
		}
		return false, invalid("%s must be a boolean", field)
	}
	return false, s.syntax("want a value")
}

// skip consumes one value of any type without decoding it.
func (s *scanner) skip(depth int) error {
	if depth > maxDepth {
		return invalid("nesting deeper than %d", maxDepth)
	}
	switch c := s.peek(); c {
	case '"':
		// Validate and decode: the arena has room, and it keeps one code path.
		mark := len(s.arena)
		_, err := s.str()
		s.arena = s.arena[:mark]
		return err
	case '{':
		s.pos++
		first := true
		for {
			_, ok, err := s.nextMember(&first)
			if err != nil || !ok {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case '[':
		s.pos++
		first := true
		for {
			ok, err := s.nextElem(&first)
			if err != nil || !ok {
				return err
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
		}
	case 't':
		if s.lit("true") {
			return nil
		}
	case 'f':
		if s.lit("false") {
			return nil
		}
	case 'n':
		if s.lit("null") {
			return nil
		}
	default:
		if c == '-' || '0' <= c && c <= '9' {
			_, err := s.num()
			if de, ok := err.(*decodeError); ok && de.code == CodeInvalidRequest {
				return nil // out of range but well-formed: skipped values may be anything
			}
			return err
		}
	}
	if s.pos >= len(s.data) {
		return s.syntax("unexpected end, want a value")
	}
	return s.syntax("unexpected %q, want a value", s.data[s.pos])
}

// stringField decodes a string or null (which leaves *dst unchanged).
func (s *scanner) stringField(field string, dst *string) error {
	switch s.peek() {
	case '"':
		v, err := s.str()
		*dst = v
		return err
	case 'n':
		if s.lit("null") {
			return nil
		}
	case '{', '[', 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if err := s.skip(0); err != nil {
			return err
		}
		return invalid("%s must be a string", field)
	}
	return s.syntax("want a value")
}

// numberField decodes a number or null (which leaves *dst unchanged).
func (s *scanner) numberField(field string, dst *float64) error {
	switch c := s.peek(); {
	case c == '-' || '0' <= c && c <= '9':
		v, err := s.num()
		if err == nil {
			*dst = v
		}
		return err
	case c == 'n' && s.lit("null"):
		return nil
	case c == '"' || c == '{' || c == '[' || c == 't' || c == 'f':
		if err := s.skip(0); err != nil {
			return err
		}
		return invalid("%s must be a number", field)
	}
	return s.syntax("want a value")
}

// fields decodes an object of scalars into dst, at most max of them, keys
// unique. Nulls are left out.
func (s *scanner) fields(field string, dst []Field, max int) ([]Field, error) {
	dst = dst[:0]
	// Null-valued keys are remembered (on the stack, bounded) only to refuse
	// them repeated.
	var nullsBuf [16]string
	nulls := nullsBuf[:0]
	if s.null() {
		return dst, nil
	}
	if s.peek() != '{' {
		if err := s.skip(0); err != nil {
			return dst, err
		}
		return dst, invalid("%s must be an object", field)
	}
	s.pos++
	first := true
	for {
		key, ok, err := s.nextMember(&first)
		if err != nil || !ok {
			return dst, err
		}
		// Repeated keys are refused even when one value is null, so no
		// reader can disagree on which one counts.
		for i := range dst {
			if dst[i].Key == key {
				return dst, invalid("%s: key %q repeated", field, key)
			}
		}
		for i := range nulls {
			if nulls[i] == key {
				return dst, invalid("%s: key %q repeated", field, key)
			}
		}
		var f Field
		switch c := s.peek(); {
		case c == '"':
			f.Kind = KindString
			f.Str, err = s.str()
		case c == '-' || '0' <= c && c <= '9':
			f.Kind = KindNumber
			f.Num, err = s.num()
		case c == 't' || c == 'f':
			f.Kind = KindBool
			f.Bool, err = s.boolean(field)
		case c == 'n' && s.lit("null"):
			if len(nulls) < len(nullsBuf) {
				nulls = append(nulls, key)
				continue
			}
			return dst, invalid("%s has more than %d null fields", field, len(nullsBuf))
		case c == '{' || c == '[':
			if err := s.skip(0); err != nil {
				return dst, err
			}
			if field == "ids" {
				// ids hold strings only: the same message as for a
				// number or a boolean (scanner.ids).
				return dst, invalid("ids.%.64s must be a string", key)
			}
			return dst, invalid("%s.%s: values must be strings, numbers or booleans", field, key)
		default:
			return dst, s.syntax("want a value")
		}
		if err != nil {
			return dst, err
		}
		if len(dst) >= max {
			return dst, invalid("%s has more than %d fields", field, max)
		}
		f.Key = key
		dst = append(dst, f)
	}
}

// limits are the bounds the decoders enforce, from Config.
type limits struct {
	maxIDBytes int
	maxFields  int
	maxLimit   int
	maxBatch   int
	// minTime and maxAhead bound the ts of feedback and events: from
	// minTime to the time received plus maxAhead. A zero minTime or
	// maxAhead takes the Config default.
	minTime  time.Time
	maxAhead time.Duration
}

// maxAt is the latest "at" a decide request may ask for: far enough for any
// preview, and well inside the range time.UnixNano represents (to 2262).
var maxAt = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)

// timeRange returns the accepted range of ts for a request received at now.
func (l *limits) timeRange(now time.Time) (lo, hi time.Time) {
	lo, ahead := l.minTime, l.maxAhead
	if lo.IsZero() {
		lo = defaultMinTime
	}
	if ahead == 0 {
		ahead = defaultMaxAhead
	}
	return lo, now.Add(ahead)
}

// eventIDField decodes the optional event_id: a string of 1 to
// MaxEventIDBytes bytes, or null (absent).
func (s *scanner) eventIDField(dst *string) error {
	if s.peek() != '"' {
		*dst = ""
		return s.stringField("event_id", dst)
	}
	v, err := s.str()
	if err != nil {
		return err
	}
	if v == "" {
		return invalid("event_id must not be empty: leave it out or give 1 to %d bytes", MaxEventIDBytes)
	}
	if len(v) > MaxEventIDBytes {
		return invalid("event_id is longer than %d bytes", MaxEventIDBytes)
	}
	*dst = v
	return nil
}

func (l *limits) id(field, v string, required bool) error {
	if v == "" {
		if required {
			if field == "customer_id" {
				// Every route that takes customer_id takes ids in its
				// place (and asks for customer_id only without ids).
				return invalid("customer_id or ids is required")
			}
			return invalid("%s is required", field)
		}
		return nil
	}
	if len(v) > l.maxIDBytes {
		return invalid("%s is longer than %d bytes", field, l.maxIDBytes)
	}
	if field == "customer_id" && strings.IndexByte(v, '/') >= 0 {
		// The customer id rules of every route (state.CheckCustomerID):
		// the erasure route, one path segment, could not take it.
		return invalid("customer_id %.64q: a customer id must not contain a slash", v)
	}
	return nil
}

// decideObject decodes one decide request object at the scanner's position;
// dryOnly makes it a dry run whatever it says.
func (s *scanner) decideObject(req *DecideRequest, l *limits, dryOnly bool) error {
	req.CustomerID, req.Channel, req.Placement = "", "", ""
	req.Limit, req.Explain, req.DryRun = 0, false, false
	req.At, req.Seed = time.Time{}, 0
	req.Context = req.Context[:0]
	req.IDs = req.IDs[:0]
	var at string
	if err := s.object("the request"); err != nil {
		return err
	}
	first := true
	for {
		key, ok, err := s.nextMember(&first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		switch key {
		case "customer_id":
			err = s.stringField(key, &req.CustomerID)
		case "channel":
			err = s.stringField(key, &req.Channel)
		case "placement":
			err = s.stringField(key, &req.Placement)
		case "limit":
			f := float64(req.Limit)
			if err = s.numberField(key, &f); err == nil {
				if f != math.Trunc(f) || f < 0 || f > float64(l.maxLimit) {
					return invalid("limit must be an integer from 0 to %d", l.maxLimit)
				}
				req.Limit = int(f)
			}
		case "context":
			req.Context, err = s.fields(key, req.Context, l.maxFields)
		case "explain":
			if !s.null() {
				req.Explain, err = s.boolean(key)
			}
		case "dry_run":
			if !s.null() {
				req.DryRun, err = s.boolean(key)
			}
		case "at":
			err = s.stringField(key, &at)
		case "ids":
			req.IDs, err = s.ids(req.IDs, l)
		default:
			err = s.skip(0)
		}
		if err != nil {
			return err
		}
	}
	if dryOnly {
		// Before the check of "at": a route that forces the dry run
		// needs no "dry_run" in the body.
		req.DryRun = true
	}
	if at != "" {
		// A decision "as of" another time must not touch state: its
		// contacts and journey steps would be stamped out of order.
		if !req.DryRun {
			return invalid("at needs \"dry_run\":true: a decision as of another time records nothing")
		}
		lo, _ := l.timeRange(time.Time{})
		t, err := parseTime("at", at, lo, maxAt)
		if err != nil {
			return err
		}
		req.At = t
	}
	if err := l.id("customer_id", req.CustomerID, len(req.IDs) == 0); err != nil {
		return err
	}
	if err := l.id("channel", req.Channel, true); err != nil {
		return err
	}
	return l.id("placement", req.Placement, false)
}

// decodeDecide decodes a whole POST /v1/decide body.
func decodeDecide(body []byte, arena []byte, req *DecideRequest, l *limits) ([]byte, error) {
	return decodeDecideAs(body, arena, req, l, false)
}

// decodeDecideAs is decodeDecide; dryOnly (the studio's route) decodes the
// body as a dry run whatever it says, so that "at" is accepted without
// "dry_run".
func decodeDecideAs(body []byte, arena []byte, req *DecideRequest, l *limits, dryOnly bool) ([]byte, error) {
	var s scanner
	arena = s.reset(body, arena)
	err := s.decideObject(req, l, dryOnly)
	if err == nil {
		err = s.end()
	}
	return arena, err
}

// decodeBatch decodes a POST /v1/decide/batch body into reqs, reusing its
// elements, and returns the requests decoded.
func decodeBatch(body []byte, arena []byte, reqs []DecideRequest, l *limits) ([]byte, []DecideRequest, error) {
	var s scanner
	arena = s.reset(body, arena)
	reqs = reqs[:0]
	if err := s.object("the body"); err != nil {
		return arena, reqs, err
	}
	first, seen := true, false
	for {
		key, ok, err := s.nextMember(&first)
		if err != nil {
			return arena, reqs, err
		}
		if !ok {
			break
		}
		if key != "requests" {
			if err := s.skip(0); err != nil {
				return arena, reqs, err
			}
			continue
		}
		seen = true
		reqs = reqs[:0]
		if s.peek() != '[' {
			if err := s.skip(0); err != nil {
				return arena, reqs, err
			}
			return arena, reqs, invalid("requests must be an array")
		}
		s.pos++
		firstElem := true
		for {
			ok, err := s.nextElem(&firstElem)
			if err != nil {
				return arena, reqs, err
			}
			if !ok {
				break
			}
			if len(reqs) >= l.maxBatch {
				return arena, reqs, invalid("requests has more than %d elements", l.maxBatch)
			}
			if len(reqs) < cap(reqs) {
				reqs = reqs[:len(reqs)+1]
			} else {
				reqs = append(reqs, DecideRequest{})
			}
			if err := s.decideObject(&reqs[len(reqs)-1], l, false); err != nil {
				if de, ok := err.(*decodeError); ok {
					de.msg = fmt.Sprintf("requests[%d]: %s", len(reqs)-1, de.msg)
				}
				return arena, reqs, err
			}
		}
	}
	if !seen {
		return arena, reqs, invalid("requests is required")
	}
	return arena, reqs, s.end()
}

// decodeFeedback decodes a POST /v1/feedback body. now is the default ts.
func decodeFeedback(body []byte, arena []byte, fb *Feedback, l *limits, now time.Time) ([]byte, error) {
	var s scanner
	arena = s.reset(body, arena)
	*fb = Feedback{IDs: fb.IDs[:0]}
	var outcome, ts string
	if err := s.object("the body"); err != nil {
		return arena, err
	}
	first := true
	for {
		key, ok, err := s.nextMember(&first)
		if err != nil {
			return arena, err
		}
		if !ok {
			break
		}
		switch key {
		case "decision_id":
			err = s.stringField(key, &fb.DecisionID)
		case "customer_id":
			err = s.stringField(key, &fb.CustomerID)
		case "action_id":
			err = s.stringField(key, &fb.ActionID)
		case "channel":
			err = s.stringField(key, &fb.Channel)
		case "outcome":
			err = s.stringField(key, &outcome)
		case "value":
			err = s.numberField(key, &fb.Value)
		case "ts":
			err = s.stringField(key, &ts)
		case "event_id":
			err = s.eventIDField(&fb.EventID)
		case "ids":
			fb.IDs, err = s.ids(fb.IDs, l)
		default:
			err = s.skip(0)
		}
		if err != nil {
			return arena, err
		}
	}
	if err := s.end(); err != nil {
		return arena, err
	}
	for _, c := range [...]struct {
		field, v string
		req      bool
	}{{"decision_id", fb.DecisionID, false}, {"customer_id", fb.CustomerID, len(fb.IDs) == 0}, {"action_id", fb.ActionID, true}, {"channel", fb.Channel, false}} {
		if err := l.id(c.field, c.v, c.req); err != nil {
			return arena, err
		}
	}
	if outcome == "" {
		return arena, invalid("outcome is required")
	}
	o, ok := ParseOutcome(outcome)
	if !ok {
		return arena, invalid("outcome %.64q is not one of impression, click, accept, reject, convert, dismiss", outcome)
	}
	fb.Outcome = o
	var err error
	fb.TS, err = l.ts(ts, now)
	return arena, err
}

// decodeEvent decodes a POST /v1/events body. now is the default ts.
func decodeEvent(body []byte, arena []byte, ev *Event, l *limits, now time.Time) ([]byte, error) {
	var s scanner
	arena = s.reset(body, arena)
	ev.CustomerID, ev.Type, ev.TS, ev.EventID = "", "", time.Time{}, ""
	ev.Attrs = ev.Attrs[:0]
	ev.IDs = ev.IDs[:0]
	var ts string
	if err := s.object("the body"); err != nil {
		return arena, err
	}
	first := true
	for {
		key, ok, err := s.nextMember(&first)
		if err != nil {
			return arena, err
		}
		if !ok {
			break
		}
		switch key {
		case "customer_id":
			err = s.stringField(key, &ev.CustomerID)
		case "type":
			err = s.stringField(key, &ev.Type)
		case "ts":
			err = s.stringField(key, &ts)
		case "attrs":
			ev.Attrs, err = s.fields(key, ev.Attrs, l.maxFields)
		case "event_id":
			err = s.eventIDField(&ev.EventID)
		case "ids":
			ev.IDs, err = s.ids(ev.IDs, l)
		default:
			err = s.skip(0)
		}
		if err != nil {
			return arena, err
		}
	}
	if err := s.end(); err != nil {
		return arena, err
	}
	if err := l.id("customer_id", ev.CustomerID, len(ev.IDs) == 0); err != nil {
		return arena, err
	}
	if err := l.id("type", ev.Type, true); err != nil {
		return arena, err
	}
	var err error
	ev.TS, err = l.ts(ts, now)
	return arena, err
}

// ts reads the ts of feedback or an event received at now: now when
// absent, else an RFC 3339 time within l.timeRange(now).
func (l *limits) ts(ts string, now time.Time) (time.Time, error) {
	if ts == "" {
		return now, nil
	}
	lo, hi := l.timeRange(now)
	return parseTime("ts", ts, lo, hi)
}

// parseTime reads an RFC 3339 time and refuses one outside [lo, hi]. The
// bounds matter beyond plausibility: time.UnixNano, which the state log
// stores, is undefined outside 1678-2262 (year 1000 wraps to 2169).
func parseTime(field, v string, lo, hi time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, invalid("%s %.64q is not an RFC 3339 time", field, v)
	}
	if t.Before(lo) || t.After(hi) {
		return time.Time{}, invalid("%s %.64q is outside the accepted range %s to %s", field, v,
			lo.UTC().Format(time.RFC3339), hi.UTC().Format(time.RFC3339))
	}
	return t, nil
}

// unsafeString returns b as a string without copying; b must not change
// while the string is in use.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
