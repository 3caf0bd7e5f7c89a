package server_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/valyala/fasthttp"

	"nba/nba/server"
	"nba/nba/server/servertest"
)

const decideBody = `{"customer_id":"cust-123456","channel":"web","placement":"home","limit":3,` +
	`"context":{"device":"ios","basket":42.5,"vip":true,"page":"/loans/mortgage"},"explain":false}`

func newTestServer(tb testing.TB) *server.Server {
	srv, err := server.New(server.Config{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}, &servertest.Backend{})
	if err != nil {
		tb.Fatal(err)
	}
	return srv
}

func decideCtx(body string) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fasthttp.MethodPost)
	ctx.Request.SetRequestURI("/v1/decide")
	ctx.Request.SetBodyString(body)
	return &ctx
}

// TestDecideHandlerAllocs proves the whole decide handler (routing, decode,
// backend, encode, metrics) allocates nothing with an allocation-free backend.
func TestDecideHandlerAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, tc := range []struct {
		name, body string
	}{
		{"decide", decideBody},
		{"explain", `{"customer_id":"c1","channel":"app","explain":true,"context":{"a":"\u00e9\n"}}`},
		{"stopped", `{"customer_id":"limited-1","channel":"email","explain":true}`},
		{"ids", `{"customer_id":"c1","ids":{"cookie":"c-91","crm_id":"c1"},"channel":"web"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestServer(t).Handler()
			ctx := decideCtx(tc.body)
			h(ctx)
			if ctx.Response.StatusCode() != 200 {
				t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			n := testing.AllocsPerRun(1000, func() {
				ctx.Response.Reset()
				h(ctx)
			})
			if n > 0 {
				t.Errorf("decide handler: %v allocs per request, budget 0", n)
			}
		})
	}
}

func BenchmarkDecideHandler(b *testing.B) {
	h := newTestServer(b).Handler()
	ctx := decideCtx(decideBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(decideBody)))
	for b.Loop() {
		ctx.Response.Reset()
		h(ctx)
	}
}

// BenchmarkFixedResponseHandler is the floor: a handler that writes a fixed
// decision-sized body without reading the request.
func BenchmarkFixedResponseHandler(b *testing.B) {
	ctx := decideCtx(decideBody)
	body := make([]byte, 700)
	h := func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		h(ctx)
	}
}
