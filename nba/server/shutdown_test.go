package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"nba/nba/server"
	"nba/nba/server/servertest"
)

// TestServeAfterShutdownReturns: a Shutdown that comes before Serve and
// ServeAdmin have handed their listeners to the HTTP server (a test or a
// process stopping right after start) still ends them; before, fasthttp
// had no listener to close and Serve served on for ever (a CI run hung
// for 10 minutes on it).
func TestServeAfterShutdownReturns(t *testing.T) {
	srv, err := server.New(server.Config{}, &servertest.Backend{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for _, serve := range []func(net.Listener) error{srv.Serve, srv.ServeAdmin} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- serve(ln) }()
	}
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve after shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve after shutdown did not return")
		}
	}
}
