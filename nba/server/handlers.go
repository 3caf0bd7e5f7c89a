package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
)

// maxPooledArena is the largest decode arena or output buffer returned to a
// pool; larger ones (from big batches) are left to the garbage collector so
// that one burst does not pin megabytes per pooled entry.
const maxPooledArena = 256 << 10

// decideScratch is the pooled per-request state of POST /v1/decide.
type decideScratch struct {
	req   DecideRequest
	resp  DecideResponse
	arena []byte
	out   []byte
}

// batchScratch is the pooled per-request state of POST /v1/decide/batch.
type batchScratch struct {
	reqs  []DecideRequest
	resp  DecideResponse
	arena []byte
	out   []byte
}

// bodyScratch is a pooled output buffer for the other endpoints.
type bodyScratch struct {
	fb    Feedback
	ev    Event
	arena []byte
	out   []byte
}

func trim(b []byte) []byte {
	if cap(b) > maxPooledArena {
		return nil
	}
	return b[:0]
}

// decodeSafely runs decode, turning a panic into a 400: no input may crash
// the server, whatever bug a decoder has.
func (s *Server) decodeSafely(decode func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.decodePanics.Inc()
			s.log.Error("decoder panic", "panic", fmt.Sprint(r))
			err = &decodeError{code: CodeMalformedJSON, msg: "cannot decode body"}
		}
	}()
	return decode()
}

func (s *Server) nextDecisionID(req *DecideRequest) {
	id := appendDecisionID(req.idBuf[:0], s.idPrefix, s.idSeq.Add(1))
	req.DecisionID = unsafeString(id)
}

// decide answers POST /v1/decide; dryOnly (the studio's route) decides
// every request as a dry run, whatever it says.
func (s *Server) decide(ctx *fasthttp.RequestCtx, start time.Time, dryOnly bool) {
	body, ok := s.body(ctx, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	sc := s.decidePool.Get().(*decideScratch)
	defer s.releaseDecide(sc)
	err := s.decodeSafely(func() (err error) {
		sc.arena, err = decodeDecideAs(body, sc.arena, &sc.req, &s.lim, dryOnly)
		return err
	})
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	s.nextDecisionID(&sc.req)
	sc.resp.reset()
	if err := s.backend.Decide(&sc.req, &sc.resp); err != nil {
		s.writeErr(ctx, err)
		return
	}
	sc.out = appendDecision(sc.out[:0], &sc.req, &sc.resp, start)
	s.writeJSON(ctx, http.StatusOK, sc.out)
}

func (s *Server) releaseDecide(sc *decideScratch) {
	// Strings in req point into the arena and the request's id buffer:
	// clear them so nothing stale is readable from the pool.
	sc.req.CustomerID, sc.req.Channel, sc.req.Placement, sc.req.DecisionID = "", "", "", ""
	clear(sc.req.Context)
	sc.req.Context = sc.req.Context[:0]
	clear(sc.req.IDs)
	sc.req.IDs = sc.req.IDs[:0]
	sc.resp.reset()
	sc.arena, sc.out = trim(sc.arena), trim(sc.out)
	s.decidePool.Put(sc)
}

func (s *Server) batch(ctx *fasthttp.RequestCtx, start time.Time) {
	body, ok := s.body(ctx, s.cfg.MaxBatchBodyBytes)
	if !ok {
		return
	}
	sc := s.batchPool.Get().(*batchScratch)
	defer s.releaseBatch(sc)
	err := s.decodeSafely(func() (err error) {
		sc.arena, sc.reqs, err = decodeBatch(body, sc.arena, sc.reqs, &s.lim)
		return err
	})
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	// Every decision is attempted. One the backend refuses as invalid or not
	// found becomes an error object in its place, so one bad customer does
	// not fail a batch; any other error (not ready, internal) fails the
	// whole batch, since it would fail every element alike.
	out := append(sc.out[:0], `{"decisions":[`...)
	for i := range sc.reqs {
		req := &sc.reqs[i]
		if i > 0 {
			out = append(out, ',')
		}
		s.nextDecisionID(req)
		sc.resp.reset()
		if err := s.backend.Decide(req, &sc.resp); err != nil {
			status, code, msg := errorParts(err)
			if status != http.StatusBadRequest && status != http.StatusNotFound {
				sc.out = out
				s.writeErr(ctx, err)
				return
			}
			out = appendError(out, code, msg)
			continue
		}
		out = appendDecision(out, req, &sc.resp, start)
	}
	sc.out = append(out, "]}"...)
	s.writeJSON(ctx, http.StatusOK, sc.out)
}

func (s *Server) releaseBatch(sc *batchScratch) {
	for i := range sc.reqs {
		r := &sc.reqs[i]
		r.CustomerID, r.Channel, r.Placement, r.DecisionID = "", "", "", ""
		clear(r.Context)
		r.Context = r.Context[:0]
		clear(r.IDs)
		r.IDs = r.IDs[:0]
	}
	if len(sc.reqs) > 0 && cap(sc.arena) > maxPooledArena {
		sc.reqs = nil
	}
	sc.reqs = sc.reqs[:0]
	sc.resp.reset()
	sc.arena, sc.out = trim(sc.arena), trim(sc.out)
	s.batchPool.Put(sc)
}

// errorParts returns the status, code and caller-visible message for err.
func errorParts(err error) (int, string, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Status, e.Code, e.Message
	}
	var de *decodeError
	if errors.As(err, &de) {
		return http.StatusBadRequest, de.code, de.msg
	}
	return http.StatusInternalServerError, CodeInternal, "internal error"
}

var okBody = []byte(`{"ok":true}`)

func (s *Server) feedback(ctx *fasthttp.RequestCtx) { s.ingest(ctx, true) }

func (s *Server) event(ctx *fasthttp.RequestCtx) { s.ingest(ctx, false) }

// ingest serves POST /v1/feedback (feedback) and POST /v1/events: decode
// the body, hand it to the backend, which makes it durable, and answer
// {"ok":true}.
func (s *Server) ingest(ctx *fasthttp.RequestCtx, feedback bool) {
	body, ok := s.body(ctx, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	sc := s.bodyPool.Get().(*bodyScratch)
	defer s.releaseBody(sc)
	err := s.decodeSafely(func() (err error) {
		if feedback {
			sc.arena, err = decodeFeedback(body, sc.arena, &sc.fb, &s.lim, time.Now())
		} else {
			sc.arena, err = decodeEvent(body, sc.arena, &sc.ev, &s.lim, time.Now())
		}
		return err
	})
	switch {
	case err != nil:
	case feedback:
		err = s.backend.Feedback(&sc.fb)
	default:
		err = s.backend.Event(&sc.ev)
	}
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	s.writeJSON(ctx, http.StatusOK, okBody)
}

func (s *Server) releaseBody(sc *bodyScratch) {
	clear(sc.fb.IDs)
	sc.fb = Feedback{IDs: sc.fb.IDs[:0]}
	clear(sc.ev.Attrs)
	clear(sc.ev.IDs)
	sc.ev = Event{Attrs: sc.ev.Attrs[:0], IDs: sc.ev.IDs[:0]}
	sc.arena, sc.out = trim(sc.arena), trim(sc.out)
	s.bodyPool.Put(sc)
}

func (s *Server) customer(ctx *fasthttp.RequestCtx, id []byte) {
	var ok bool
	// fasthttp has already percent-decoded the path.
	if len(id) > s.cfg.MaxIDBytes {
		s.writeError(ctx, http.StatusBadRequest, CodeInvalidRequest, fmt.Sprintf("customer id is longer than %d bytes", s.cfg.MaxIDBytes))
		return
	}
	cid := string(id) // a copy: the backend may keep it
	if ns := ctx.QueryArgs().Peek("ns"); len(ns) > 0 {
		// GET /v1/customers/{value}?ns={namespace}: by identifier.
		if cid, ok = s.resolveCustomer(ctx, string(ns), cid); !ok {
			return
		}
	}
	s.appendJSON(ctx, func(dst []byte) ([]byte, error) { return s.backend.AppendCustomer(dst, cid) })
}

// appendJSON answers 200 with the JSON the backend appends, or its error.
func (s *Server) appendJSON(ctx *fasthttp.RequestCtx, f func([]byte) ([]byte, error)) {
	sc := s.bodyPool.Get().(*bodyScratch)
	defer s.releaseBody(sc)
	out, err := f(sc.out[:0])
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	sc.out = out
	s.writeJSON(ctx, http.StatusOK, out)
}

func (s *Server) metrics(ctx *fasthttp.RequestCtx) {
	sc := s.bodyPool.Get().(*bodyScratch)
	defer s.releaseBody(sc)
	sc.out = s.cfg.Metrics.WritePrometheus(sc.out[:0])
	ctx.SetStatusCode(http.StatusOK)
	ctx.Response.Header.SetContentTypeBytes(contentText)
	ctx.SetBody(sc.out)
}

// bearerOK reports whether the request carries the admin token (which is
// set) as its bearer token.
func (s *Server) bearerOK(ctx *fasthttp.RequestCtx) bool {
	auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	const bearer = "Bearer "
	return s.cfg.AdminToken != "" && len(auth) > len(bearer) && string(auth[:len(bearer)]) == bearer &&
		subtle.ConstantTimeCompare(auth[len(bearer):], []byte(s.cfg.AdminToken)) == 1
}

// checkBearer answers 401 unless the request carries the admin token as
// its bearer token.
func (s *Server) checkBearer(ctx *fasthttp.RequestCtx) bool {
	if !s.bearerOK(ctx) {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="nba-admin"`)
		s.writeError(ctx, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong bearer token")
		return false
	}
	return true
}

func (s *Server) reload(ctx *fasthttp.RequestCtx) {
	if s.cfg.AdminToken == "" {
		s.writeError(ctx, http.StatusForbidden, CodeReloadDisabled, "reload is disabled: no admin token is configured ("+AdminTokenEnv+")")
		return
	}
	if !s.checkBearer(ctx) {
		return
	}
	rctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReloadTimeout)
	defer cancel()
	started := time.Now()
	if err := s.backend.Reload(rctx); err != nil {
		s.log.Warn("reload failed", "err", err.Error(), "took", time.Since(started))
		var e *Error
		if errors.As(err, &e) {
			s.writeError(ctx, e.Status, e.Code, e.Message)
			return
		}
		s.writeError(ctx, http.StatusInternalServerError, CodeReloadFailed, "reload failed, the last good bundle keeps serving: "+err.Error())
		return
	}
	s.log.Info("reloaded", "took", time.Since(started))
	s.writeJSON(ctx, http.StatusOK, []byte(`{"status":"reloaded"}`))
}
