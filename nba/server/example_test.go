package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"nba/nba/server"
	"nba/nba/server/servertest"
)

// A command builds the server over its backend, serves both listeners and
// shuts down on a signal.
func ExampleServer() {
	srv, err := server.New(server.Config{
		AdminToken: "", // from the environment (server.AdminTokenEnv) in a real command
		Logger:     slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}, &servertest.Backend{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	admin, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	go srv.ServeAdmin(admin)
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// ... wait for SIGTERM, then:
	fmt.Println(srv.Shutdown(context.Background()))
	// Output:
	// 200
	// <nil>
}
