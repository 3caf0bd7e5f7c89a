package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"nba/nba/studio"
)

// The studio is the web UI on the admin listener (package nba/studio holds
// its files). Every path under /ui/ answers the one page, which reads its
// route from the address in the browser, so a deep link such as
// /ui/customers/c00042 opens the customer page; the route is all the
// server counts or logs ("/ui/"). The page is a client of the decision
// API; since that API listens elsewhere, the admin listener serves the
// read-only part of it under /ui/api/:
//
//	POST /ui/api/v1/decide          POST /v1/decide, always as a dry run, with
//	                                "overrides" and "bundle" (whatif.go)
//	GET  /ui/api/candidate          the candidate bundle: {"loaded":false} without one
//	GET  /ui/api/v1/customers/{id}  GET /v1/customers/{id}
//	GET  /ui/api/v1/actions         GET /v1/actions
//	GET  /ui/api/auth               {"token_required","authorized"}
//
// and for the population funnel and the dashboard, /ui/api/funnel and
// /ui/api/dashboard (see studio_funnel.go).
//
// When an admin token is configured, the /v1/ routes need it as the bearer
// token (the page asks for it, having asked /ui/api/auth whether it must,
// so that no request fails); without one they are open to what the admin
// listener's Host check admits, as /admin/status is.

// uiAPIPrefix is where the studio's API routes live.
const uiAPIPrefix = "/ui/api/"

// ui answers the studio's page and its static files.
func (s *Server) ui(ctx *fasthttp.RequestCtx, path string) {
	if !s.allow(ctx, fasthttp.MethodGet) {
		return
	}
	if path == "/" || path == "/ui" {
		ctx.Redirect("/ui/", http.StatusFound)
		return
	}
	studio.Serve(ctx, path)
}

// uiAPI answers the studio's API route path (the public API's path, under
// /v1/).
func (s *Server) uiAPI(ctx *fasthttp.RequestCtx, path string, start time.Time) {
	if path == "/auth" {
		if s.allow(ctx, fasthttp.MethodGet) {
			required := s.cfg.AdminToken != ""
			ok := !required || s.bearerOK(ctx)
			s.writeJSON(ctx, http.StatusOK, []byte(`{"token_required":`+strconv.FormatBool(required)+`,"authorized":`+strconv.FormatBool(ok)+`}`))
		}
		return
	}
	if s.cfg.AdminToken != "" && !s.checkBearer(ctx) {
		return
	}
	switch {
	case path == "/v1/decide":
		if s.allow(ctx, fasthttp.MethodPost) {
			s.studioDecide(ctx, start) // a dry run, with what-ifs: whatif.go
		}
	case path == "/candidate":
		if s.allow(ctx, fasthttp.MethodGet) {
			s.studioCandidate(ctx)
		}
	case path == "/funnel":
		s.funnelAPI(ctx)
	case path == "/dashboard":
		if s.allow(ctx, fasthttp.MethodGet) {
			s.dashboard(ctx)
		}
	case path == "/v1/actions":
		if s.allow(ctx, fasthttp.MethodGet) {
			s.appendJSON(ctx, s.backend.AppendActions)
		}
	case len(path) > len(customersPrefix) && strings.HasPrefix(path, customersPrefix):
		if s.allow(ctx, fasthttp.MethodGet) {
			s.customer(ctx, []byte(path[len(customersPrefix):]))
		}
	default:
		s.writeError(ctx, http.StatusNotFound, CodeNotFound, "no studio API route for this path")
	}
}
