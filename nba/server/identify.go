package server

import (
	"fmt"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"nba/nba/jsonw"
)

// Identity stitching over HTTP:
//
//	POST /v1/identify {"ids":{"cookie":"c-91","crm_id":"c00042"},"ts":..,"event_id":..}
//	  → {"customer_id":"c00042","merged":["<receipt>",...]}
//	  409 identity_conflict: two values of a unique namespace would meet
//	  in one profile; nothing changed
//	POST /admin/identity/unmerge {"receipt":"..."} (admin token)
//	  → {"customer_id":"<the profile split off>","receipt":"..."}
//
// Decide, feedback and events accept "ids" in place of (or beside)
// customer_id, and GET /v1/customers/{value}?ns={namespace} finds a
// customer by identifier. A backend without identity stitching (no
// IdentityBackend, or no identity: in its bundle) answers 404 not_found
// to the two routes and 400 to a request naming no customer_id.

// IdentityBackend is implemented by a Backend that links identifiers into
// profiles.
type IdentityBackend interface {
	// Identify links req.IDs into one profile and answers its canonical
	// customer id and the receipts of the merges the link made. A link
	// refused because it would join two values of a unique namespace is
	// an *Error with status 409 and code CodeIdentityConflict.
	Identify(req *IdentifyRequest) (IdentifyResult, error)
	// Unmerge undoes the merge of a receipt.
	Unmerge(receipt string) (IdentifyResult, error)
	// ResolveCustomer returns the customer id an identifier names.
	ResolveCustomer(ns, value string) (string, error)
}

// IdentifyRequest is one decoded POST /v1/identify.
type IdentifyRequest struct {
	IDs     []Field // string values only, keys unique, 1 to MaxIDs
	TS      time.Time
	EventID string
}

// IdentifyResult is what Identify and Unmerge answer.
type IdentifyResult struct {
	CustomerID string
	Receipts   []string
}

// MaxIDs bounds the identifiers of one request.
const MaxIDs = 16

// CodeIdentityConflict (409): the link would put two values of a unique
// identity namespace into one profile; nothing was changed.
const CodeIdentityConflict = "identity_conflict"

// CodeUnknownReceipt (404): POST /admin/identity/unmerge names no merge
// that can be undone: the receipt is unknown (or malformed), already
// undone, or older than the merges a profile remembers; nothing changed.
const CodeUnknownReceipt = "unknown_receipt"

// UnknownReceiptf returns a 404 unknown_receipt error.
func UnknownReceiptf(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeUnknownReceipt, Message: fmt.Sprintf(format, args...)}
}

// ids decodes the "ids" member: an object of at most MaxIDs namespaces,
// each a string of 1 to MaxIDBytes bytes; null is none.
func (s *scanner) ids(dst []Field, l *limits) ([]Field, error) {
	dst, err := s.fields("ids", dst, MaxIDs)
	if err != nil {
		return dst, err
	}
	for i := range dst {
		f := &dst[i]
		if f.Kind != KindString {
			return dst, invalid("ids.%.64s must be a string", f.Key)
		}
		if f.Key == "" {
			return dst, invalid("ids: a namespace must not be empty")
		}
		if len(f.Str) > l.maxIDBytes || len(f.Key) > l.maxIDBytes {
			return dst, invalid("ids.%.64s is longer than %d bytes", f.Key, l.maxIDBytes)
		}
	}
	return dst, nil
}

// decodeIdentify decodes a POST /v1/identify body. now is the default ts.
func decodeIdentify(body []byte, arena []byte, req *IdentifyRequest, l *limits, now time.Time) ([]byte, error) {
	var s scanner
	arena = s.reset(body, arena)
	*req = IdentifyRequest{IDs: req.IDs[:0]}
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
		case "ids":
			req.IDs, err = s.ids(req.IDs, l)
		case "ts":
			err = s.stringField(key, &ts)
		case "event_id":
			err = s.eventIDField(&req.EventID)
		default:
			err = invalid("unknown member %.64q: want ids, ts, event_id", key)
		}
		if err != nil {
			return arena, err
		}
	}
	if err := s.end(); err != nil {
		return arena, err
	}
	if len(req.IDs) == 0 {
		return arena, invalid("ids is required: at least one identifier")
	}
	var err error
	req.TS, err = l.ts(ts, now)
	return arena, err
}

// decodeUnmerge decodes a POST /admin/identity/unmerge body.
func decodeUnmerge(body []byte, arena []byte, l *limits) ([]byte, string, error) {
	var s scanner
	arena = s.reset(body, arena)
	var receipt string
	if err := s.object("the body"); err != nil {
		return arena, "", err
	}
	first := true
	for {
		key, ok, err := s.nextMember(&first)
		if err != nil {
			return arena, "", err
		}
		if !ok {
			break
		}
		if key != "receipt" {
			return arena, "", invalid("unknown member %.64q: want receipt", key)
		}
		if err := s.stringField(key, &receipt); err != nil {
			return arena, "", err
		}
	}
	if err := s.end(); err != nil {
		return arena, "", err
	}
	if receipt == "" || len(receipt) > 4*l.maxIDBytes+64 {
		return arena, "", invalid("receipt is required (a merge's receipt from /v1/identify)")
	}
	return arena, receipt, nil
}

func (s *Server) identityBackend(ctx *fasthttp.RequestCtx) (IdentityBackend, bool) {
	ib, ok := s.backend.(IdentityBackend)
	if !ok {
		s.writeError(ctx, http.StatusNotFound, CodeNotFound, "identity stitching is not supported by this backend")
	}
	return ib, ok
}

// identify serves POST /v1/identify.
func (s *Server) identify(ctx *fasthttp.RequestCtx) {
	ib, ok := s.identityBackend(ctx)
	if !ok {
		return
	}
	body, ok := s.body(ctx, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	sc := s.bodyPool.Get().(*bodyScratch)
	defer s.releaseBody(sc)
	var req IdentifyRequest
	err := s.decodeSafely(func() (err error) {
		sc.arena, err = decodeIdentify(body, sc.arena, &req, &s.lim, time.Now())
		return err
	})
	var res IdentifyResult
	if err == nil {
		res, err = ib.Identify(&req)
	}
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	s.writeJSON(ctx, http.StatusOK, appendIdentifyResult(sc.out[:0], "merged", res))
}

// unmerge serves POST /admin/identity/unmerge (admin token).
func (s *Server) unmerge(ctx *fasthttp.RequestCtx) {
	if s.cfg.AdminToken == "" {
		s.writeError(ctx, http.StatusForbidden, CodeAdminDisabled, "unmerge is disabled: no admin token is configured ("+AdminTokenEnv+")")
		return
	}
	if !s.checkBearer(ctx) {
		return
	}
	ib, ok := s.identityBackend(ctx)
	if !ok {
		return
	}
	body, ok := s.body(ctx, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	sc := s.bodyPool.Get().(*bodyScratch)
	defer s.releaseBody(sc)
	var receipt string
	err := s.decodeSafely(func() (err error) {
		sc.arena, receipt, err = decodeUnmerge(body, sc.arena, &s.lim)
		return err
	})
	var res IdentifyResult
	if err == nil {
		res, err = ib.Unmerge(receipt)
	}
	if err != nil {
		s.writeErr(ctx, err)
		return
	}
	s.writeJSON(ctx, http.StatusOK, appendIdentifyResult(sc.out[:0], "receipts", res))
}

// resolveCustomer resolves GET /v1/customers/{value}?ns={namespace}.
func (s *Server) resolveCustomer(ctx *fasthttp.RequestCtx, ns, value string) (string, bool) {
	ib, ok := s.identityBackend(ctx)
	if !ok {
		return "", false
	}
	id, err := ib.ResolveCustomer(ns, value)
	if err == nil && id == "" {
		err = NotFoundf("no customer has identifier %.64s %.64q", ns, value)
	}
	if err != nil {
		s.writeErr(ctx, err)
		return "", false
	}
	return id, true
}

func appendIdentifyResult(b []byte, list string, r IdentifyResult) []byte {
	b = append(b, `{"customer_id":`...)
	b = jsonw.AppendString(b, r.CustomerID)
	b = append(b, `,"`...)
	b = append(b, list...)
	b = append(b, `":[`...)
	for i, rc := range r.Receipts {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonw.AppendString(b, rc)
	}
	return append(b, "]}"...)
}

// IdentityConflictf returns a 409 identity_conflict error.
func IdentityConflictf(format string, args ...any) *Error {
	e := Conflictf(format, args...)
	e.Code = CodeIdentityConflict
	return e
}
