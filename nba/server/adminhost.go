package server

import (
	"net"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// The admin listener answers only requests whose Host names it: loopback
// (localhost, 127.0.0.0/8, ::1), the address it listens on, and the names
// of Config.AdminAllowedHosts. A page on another site that makes its own
// name resolve to 127.0.0.1 (DNS rebinding) reaches the listener with its
// own name as Host, and is refused before any route runs: otherwise it
// could read /admin/status and pprof from the operator's browser.

// hostSet is the set of allowed host names (lower case, no port); any
// allows every host ("*" in the list).
type hostSet struct {
	names map[string]bool
	any   bool
}

// adminHosts holds the Server's hostSet; ServeAdmin adds its listener's
// address, so it is swapped, not changed in place.
type adminHosts struct{ p atomic.Pointer[hostSet] }

func (a *adminHosts) init(names []string) {
	hs := &hostSet{names: map[string]bool{}}
	for _, n := range names {
		if n = normalHost(n); n == "*" {
			hs.any = true
		} else if n != "" {
			hs.names[n] = true
		}
	}
	a.p.Store(hs)
}

// add allows the host of addr (an address the listener is bound to)
// unless it is unspecified (0.0.0.0, ::), which names no host.
func (a *adminHosts) add(addr net.Addr) {
	h := normalHost(addr.String())
	if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
		return
	}
	old := a.p.Load()
	hs := &hostSet{names: make(map[string]bool, len(old.names)+1), any: old.any}
	for n := range old.names {
		hs.names[n] = true
	}
	hs.names[h] = true
	a.p.Store(hs)
}

// allowed reports whether a request's Host may reach the admin API.
func (a *adminHosts) allowed(host []byte) bool {
	hs := a.p.Load()
	if hs.any {
		return true
	}
	h := normalHost(string(host))
	if h == "" {
		return false // HTTP/1.0 without Host: nothing says which site asked
	}
	if h == "localhost" || hs.names[h] {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// normalHost returns a Host value or address without its port, brackets
// or trailing dot, in lower case.
func normalHost(h string) string {
	h = strings.TrimSpace(h)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), ".")
	return strings.ToLower(h)
}

// checkAdminHost answers 403 host_not_allowed unless the request's Host
// may reach the admin API.
func (s *Server) checkAdminHost(ctx *fasthttp.RequestCtx) bool {
	if s.adminHosts.allowed(ctx.Host()) {
		return true
	}
	s.writeError(ctx, http.StatusForbidden, CodeHostNotAllowed,
		"the admin API answers only to loopback hosts, its listening address and -admin.allowedHosts; this request's Host is not among them")
	return false
}
