package server

import (
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
)

// The studio's what-if: POST /ui/api/v1/decide takes, beside a decide
// request, two members the public API does not know:
//
//	"overrides": {"actions": {"ID": {"lever": 2, "weight": 0.5, "tier": 1}, ...},
//	              "context": {"page": "home", ...}}
//	"bundle":    "live" (the default) or "candidate"
//	"seed":      an integer from 1 to 2^53
//
// The action overrides change the action's lever, weight or tier (0
// unpins) for this one dry run; the context values replace or add to the
// request's context. "candidate" decides by the candidate bundle
// (nba serve -studio.candidate) instead of the live one. A seed makes the
// channel's exploration draw the same for every decision given it, so that
// two decisions of the page (with and without a what-if, live and
// candidate) differ by what changed, not by their draws. Nothing persists:
// the decision is a dry run like every other of the studio. An override
// that cannot apply is refused 400 with code invalid_override.

// CodeInvalidOverride (400) refuses a studio what-if whose overrides
// cannot apply: not the shape above, an action the catalog does not have,
// a lever, weight or tier out of range.
const CodeInvalidOverride = "invalid_override"

// MaxOverrideActions bounds the action overrides of one what-if.
const MaxOverrideActions = 1000

// ActionOverride is one action's what-if: a nil field keeps the catalog's
// value.
type ActionOverride struct {
	ID     string
	Lever  *float64
	Weight *float64
	Tier   *int
}

// WhatIf is how a studio decision differs from a plain dry run.
type WhatIf struct {
	Actions   []ActionOverride // applied to this decision only
	Candidate bool             // decide by the candidate bundle
	// Seed, when not 0, seeds the exploration's draws: the same seed
	// draws the same for the same candidates.
	Seed uint64
}

// MaxSeed is the largest seed of a what-if: 2^53, the largest integer a
// JavaScript number holds exactly.
const MaxSeed = 1 << 53

// Studio is what a Backend may offer the studio beyond Backend; the server
// finds it by a type assertion. Without it, what-ifs and the candidate
// bundle are answered 404 not_found.
type Studio interface {
	// DecideWhatIf decides req, a dry run, as w says: with its action
	// overrides applied to this decision only, by the live bundle or the
	// candidate bundle (NotFoundf when there is none), with its seed. An
	// override the catalog refuses is an *Error with CodeInvalidOverride.
	DecideWhatIf(req *DecideRequest, w *WhatIf, resp *DecideResponse) error
	// AppendCandidate appends a JSON object describing the candidate
	// bundle to dst: {"loaded":true,"name","versions",...}, or
	// {"loaded":false} when there is none.
	AppendCandidate(dst []byte) ([]byte, error)
}

// InvalidOverridef returns an *Error with CodeInvalidOverride.
func InvalidOverridef(format string, args ...any) *Error {
	e := Invalidf(format, args...)
	e.Code = CodeInvalidOverride
	return e
}

// whatIf is a decoded studio what-if.
type whatIf struct {
	WhatIf
	context []Field
}

func (w *whatIf) none() bool {
	return len(w.Actions) == 0 && len(w.context) == 0 && !w.Candidate && w.Seed == 0
}

// decodeWhatIf decodes the members "overrides" and "bundle" of a studio
// decide body whose other members decodeDecide has accepted. Its errors
// have code invalid_override. It allocates: the studio is not the hot
// path.
func decodeWhatIf(body []byte, l *limits) (w whatIf, err error) {
	defer func() {
		var de *decodeError
		if errors.As(err, &de) {
			err = InvalidOverridef("%s", de.msg)
		}
	}()
	var s scanner
	s.reset(body, nil)
	if err := s.object("the request"); err != nil {
		return w, err
	}
	first, seenOv, seenBundle, seenSeed := true, false, false, false
	for {
		key, ok, err := s.nextMember(&first)
		if err != nil {
			return w, err
		}
		if !ok {
			break
		}
		switch key {
		case "overrides":
			if seenOv {
				return w, invalid("overrides repeated")
			}
			seenOv = true
			err = s.overrides(&w, l)
		case "bundle":
			if seenBundle {
				return w, invalid("bundle repeated")
			}
			seenBundle = true
			var b string
			if err = s.stringField(key, &b); err == nil {
				switch b {
				case "", "live":
				case "candidate":
					w.Candidate = true
				default:
					return w, invalid(`bundle must be "live" or "candidate"`)
				}
			}
		case "seed":
			if seenSeed {
				return w, invalid("seed repeated")
			}
			seenSeed = true
			var x float64
			if err = s.numberField(key, &x); err == nil && x != 0 {
				if x != math.Trunc(x) || x < 1 || x > MaxSeed {
					return w, invalid("seed must be an integer from 1 to 2^53")
				}
				w.Seed = uint64(x)
			}
		default:
			err = s.skip(0)
		}
		if err != nil {
			return w, err
		}
	}
	return w, s.end()
}

// overrides decodes the "overrides" object.
func (s *scanner) overrides(w *whatIf, l *limits) error {
	if s.null() {
		return nil
	}
	if s.peek() != '{' {
		return invalid("overrides must be an object")
	}
	s.pos++
	first := true
	for {
		key, ok, err := s.nextMember(&first)
		if err != nil || !ok {
			return err
		}
		switch key {
		case "actions":
			if w.Actions != nil {
				return invalid("overrides.actions repeated")
			}
			err = s.actionOverrides(w, l)
		case "context":
			if w.context != nil {
				return invalid("overrides.context repeated")
			}
			w.context, err = s.fields("overrides.context", make([]Field, 0, 4), l.maxFields)
		default:
			return invalid("overrides: unknown member %q (want actions, context)", key)
		}
		if err != nil {
			return err
		}
	}
}

// actionOverrides decodes overrides.actions: action id → override.
func (s *scanner) actionOverrides(w *whatIf, l *limits) error {
	w.Actions = make([]ActionOverride, 0, 4)
	if s.null() {
		return nil
	}
	if s.peek() != '{' {
		return invalid("overrides.actions must be an object of action id → {lever, weight, tier}")
	}
	s.pos++
	first := true
	for {
		id, ok, err := s.nextMember(&first)
		if err != nil || !ok {
			return err
		}
		if err := l.id("overrides.actions key", id, true); err != nil {
			return err
		}
		for i := range w.Actions {
			if w.Actions[i].ID == id {
				return invalid("overrides.actions: %q repeated", id)
			}
		}
		if len(w.Actions) >= MaxOverrideActions {
			return invalid("overrides.actions has more than %d actions", MaxOverrideActions)
		}
		o := ActionOverride{ID: id}
		if err := s.actionOverride(&o); err != nil {
			return err
		}
		w.Actions = append(w.Actions, o)
	}
}

// actionOverride decodes one {lever, weight, tier} object; null members
// keep the catalog's value, at least one must be given.
func (s *scanner) actionOverride(o *ActionOverride) error {
	if s.peek() != '{' {
		return invalid("overrides.actions.%s must be an object {lever, weight, tier}", o.ID)
	}
	s.pos++
	first := true
	for {
		key, ok, err := s.nextMember(&first)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		var dst **float64
		switch key {
		case "lever":
			dst = &o.Lever
		case "weight":
			dst = &o.Weight
		case "tier":
		default:
			return invalid("overrides.actions.%s: unknown member %q (want lever, weight, tier)", o.ID, key)
		}
		if s.null() {
			continue
		}
		c := s.peek()
		if c != '-' && (c < '0' || c > '9') {
			return invalid("overrides.actions.%s.%s must be a number", o.ID, key)
		}
		x, err := s.num()
		if err != nil {
			return err
		}
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return invalid("overrides.actions.%s.%s is out of range", o.ID, key)
		}
		if dst != nil {
			*dst = &x
			continue
		}
		if x != math.Trunc(x) || math.Abs(x) > 1e9 {
			return invalid("overrides.actions.%s.tier must be an integer", o.ID)
		}
		t := int(x)
		o.Tier = &t
	}
	if o.Lever == nil && o.Weight == nil && o.Tier == nil {
		return invalid("overrides.actions.%s: give lever, weight or tier", o.ID)
	}
	return nil
}

// mergeContext returns ctx with the what-if's context values in place of
// those of the same key, and the others added.
func (w *whatIf) mergeContext(ctx []Field, max int) ([]Field, error) {
	out := append([]Field(nil), ctx...)
next:
	for _, f := range w.context {
		for i := range out {
			if out[i].Key == f.Key {
				out[i] = f
				continue next
			}
		}
		out = append(out, f)
	}
	if len(out) > max {
		return nil, InvalidOverridef("context and overrides.context have more than %d fields together", max)
	}
	return out, nil
}

// studioDecide answers the studio's POST /ui/api/v1/decide: a dry run,
// with what-if overrides and by the candidate bundle when the body asks.
func (s *Server) studioDecide(ctx *fasthttp.RequestCtx, start time.Time) {
	body, ok := s.body(ctx, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	var req DecideRequest
	var w whatIf
	err := s.decodeSafely(func() (err error) {
		if _, err = decodeDecideAs(body, nil, &req, &s.lim, true); err != nil {
			return err
		}
		w, err = decodeWhatIf(body, &s.lim)
		return err
	})
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	if w.none() {
		s.decide(ctx, start, true)
		return
	}
	st, ok := s.backend.(Studio)
	if !ok {
		s.writeError(ctx, http.StatusNotFound, CodeNotFound, "this sidecar has no what-if")
		return
	}
	if req.Context, err = w.mergeContext(req.Context, s.cfg.MaxFields); err != nil {
		s.writeErr(ctx, err)
		return
	}
	s.nextDecisionID(&req)
	var resp DecideResponse
	if err := st.DecideWhatIf(&req, &w.WhatIf, &resp); err != nil {
		s.writeErr(ctx, err)
		return
	}
	s.writeJSON(ctx, http.StatusOK, appendDecision(nil, &req, &resp, start))
}

// studioCandidate answers GET /ui/api/candidate; 200 {"loaded":false}
// without a candidate, so that the page's asking is no error.
func (s *Server) studioCandidate(ctx *fasthttp.RequestCtx) {
	st, ok := s.backend.(Studio)
	if !ok {
		s.writeJSON(ctx, http.StatusOK, []byte(`{"loaded":false}`))
		return
	}
	s.appendJSON(ctx, st.AppendCandidate)
}
