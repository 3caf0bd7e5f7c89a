package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/valyala/fasthttp"
)

// stubBackend decides nothing; it is enough to build a Server inside the
// package (servertest imports this package, so it cannot be used here).
type stubBackend struct{}

func (stubBackend) Decide(*DecideRequest, *DecideResponse) error        { return nil }
func (stubBackend) Feedback(*Feedback) error                            { return nil }
func (stubBackend) Event(*Event) error                                  { return nil }
func (stubBackend) AppendCustomer(dst []byte, _ string) ([]byte, error) { return dst, nil }
func (stubBackend) AppendActions(dst []byte) ([]byte, error)            { return append(dst, "[]"...), nil }
func (stubBackend) AppendStatus(dst []byte) ([]byte, error)             { return append(dst, "{}"...), nil }
func (stubBackend) Ready() error                                        { return nil }
func (stubBackend) Reload(context.Context) error                        { return nil }

// A panic inside a decoder (goccy/go-json and hand-written decoders have both
// had them on malformed input) must be answered 400, not crash the process.
func TestDecoderPanicIsBadRequest(t *testing.T) {
	s, err := New(Config{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}, stubBackend{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.decodeSafely(func() error { panic("index out of range") })
	var ctx fasthttp.RequestCtx
	s.writeErr(&ctx, err)
	if ctx.Response.StatusCode() != 400 || string(ctx.Response.Body()) != `{"error":{"code":"malformed_json","message":"cannot decode body"}}` {
		t.Errorf("got %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if s.decodePanics.Value() != 1 {
		t.Errorf("decode panics counted %d, want 1", s.decodePanics.Value())
	}
}
