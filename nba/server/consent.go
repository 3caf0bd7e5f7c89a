package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// ConsentChange is one decoded POST /v1/consent request:
//
//	{"customer_id":"c1","channel":"email","purpose":"marketing","status":"denied",
//	 "ts":"2026-03-10T12:00:00Z","source":"preference_center","event_id":"pc-991"}
//
// "ids":{"cookie":"c-91"} may stand in place of (or beside) customer_id,
// resolved as on feedback (DecideRequest.IDs).
//
// customer_id (or ids), channel, purpose and status are required; ts defaults to
// the time received; source and event_id are optional. Unknown members
// are refused (400 invalid_request): a misspelt "staus" must not read as
// a change without a status.
type ConsentChange struct {
	CustomerID string
	Channel    string
	Purpose    string
	Granted    bool
	TS         time.Time
	Source     string  // at most Config.MaxIDBytes
	EventID    string  // idempotency key, as in Feedback
	IDs        []Field // as DecideRequest.IDs
}

// ConsentBackend is the part of a Backend that records consent and erases
// customers. A Backend without it answers 404 not_found on those routes.
type ConsentBackend interface {
	// Consent records one change durably before it returns.
	Consent(c *ConsentChange) error
	// AppendErasure erases the customer (admin API) and appends the JSON
	// object saying what was removed.
	AppendErasure(dst []byte, id string) ([]byte, error)
}

// Codes of consent and erasure.
const (
	// CodeErased (410): the customer was erased; feedback, events and
	// consent for it are refused while its tombstone lasts.
	CodeErased = "erased"
)

// Erasedf returns a 410 erased error.
func Erasedf(format string, args ...any) *Error {
	return &Error{Status: http.StatusGone, Code: CodeErased, Message: fmt.Sprintf(format, args...)}
}

const adminCustomersPrefix = "/admin/customers/"

// decodeConsent decodes a POST /v1/consent body. now is the default ts.
func decodeConsent(body []byte, arena []byte, c *ConsentChange, l *limits, now time.Time) ([]byte, error) {
	var s scanner
	arena = s.reset(body, arena)
	*c = ConsentChange{}
	var status, ts string
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
			err = s.stringField(key, &c.CustomerID)
		case "channel":
			err = s.stringField(key, &c.Channel)
		case "purpose":
			err = s.stringField(key, &c.Purpose)
		case "status":
			err = s.stringField(key, &status)
		case "ts":
			err = s.stringField(key, &ts)
		case "source":
			err = s.stringField(key, &c.Source)
		case "event_id":
			err = s.eventIDField(&c.EventID)
		case "ids":
			c.IDs, err = s.ids(c.IDs, l)
		default:
			err = invalid("unknown member %.64q (want customer_id, ids, channel, purpose, status, ts, source, event_id)", key)
		}
		if err != nil {
			return arena, err
		}
	}
	if err := s.end(); err != nil {
		return arena, err
	}
	for _, f := range [...]struct {
		field, v string
		req      bool
	}{{"customer_id", c.CustomerID, len(c.IDs) == 0}, {"channel", c.Channel, true}, {"purpose", c.Purpose, true}, {"source", c.Source, false}} {
		if err := l.id(f.field, f.v, f.req); err != nil {
			return arena, err
		}
	}
	switch status {
	case "granted":
		c.Granted = true
	case "denied":
	case "":
		return arena, invalid("status is required")
	default:
		return arena, invalid("status %.64q is not granted or denied", status)
	}
	var err error
	c.TS, err = l.ts(ts, now)
	return arena, err
}

// consent serves POST /v1/consent.
func (s *Server) consent(ctx *fasthttp.RequestCtx) {
	cb, ok := s.backend.(ConsentBackend)
	if !ok {
		s.writeError(ctx, http.StatusNotFound, CodeNotFound, "no route for this path")
		return
	}
	body, ok := s.body(ctx, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	sc := s.bodyPool.Get().(*bodyScratch)
	defer s.releaseBody(sc)
	var c ConsentChange
	err := s.decodeSafely(func() (err error) {
		sc.arena, err = decodeConsent(body, sc.arena, &c, &s.lim, time.Now())
		return err
	})
	if err == nil {
		err = cb.Consent(&c)
	}
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	s.writeJSON(ctx, http.StatusOK, okBody)
}

// eraseCustomer serves DELETE /admin/customers/{id} (admin token).
func (s *Server) eraseCustomer(ctx *fasthttp.RequestCtx, id string) {
	cb, ok := s.backend.(ConsentBackend)
	if !ok {
		s.writeError(ctx, http.StatusNotFound, CodeNotFound, "no route for this path")
		return
	}
	if s.cfg.AdminToken == "" {
		s.writeError(ctx, http.StatusForbidden, CodeAdminDisabled, "erasure is disabled: no admin token is configured ("+AdminTokenEnv+")")
		return
	}
	if !s.checkBearer(ctx) {
		return
	}
	// Only ns is taken: a misspelt parameter must not turn an erasure by
	// identifier into one of a literal customer id.
	var bad []byte
	ctx.QueryArgs().VisitAll(func(k, _ []byte) {
		if bad == nil && string(k) != "ns" {
			bad = k
		}
	})
	if bad != nil {
		s.writeError(ctx, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("unknown query parameter %.64q (want ns)", bad))
		return
	}
	if ns := ctx.QueryArgs().Peek("ns"); len(ns) > 0 {
		// DELETE /admin/customers/{value}?ns={namespace}: the profile the
		// identifier names, resolved as GET /v1/customers does (hashed
		// namespaces included; an unknown namespace is 400).
		if id == "" || len(id) > s.cfg.MaxIDBytes {
			s.writeError(ctx, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("identifier must be 1 to %d bytes", s.cfg.MaxIDBytes))
			return
		}
		var ok bool
		if id, ok = s.resolveCustomer(ctx, string(ns), id); !ok {
			return
		}
	} else if id == "" || len(id) > s.cfg.MaxIDBytes || strings.ContainsRune(id, '/') {
		s.writeError(ctx, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("customer id must be 1 to %d bytes without a slash", s.cfg.MaxIDBytes))
		return
	}
	s.appendJSON(ctx, func(dst []byte) ([]byte, error) { return cb.AppendErasure(dst, id) })
}
