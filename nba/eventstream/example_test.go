package eventstream_test

import (
	"log"

	"nba/nba/eventstream"
	"nba/nba/server"
)

// ExampleStart consumes a stream in group "nba" and applies each event;
// nba serve passes its sidecar's ApplyEvent, the function behind POST
// /v1/events.
func ExampleStart() {
	apply := func(ev *server.Event) (dup bool, err error) {
		log.Printf("customer %s: %s at %s", ev.CustomerID, ev.Type, ev.TS)
		return false, nil
	}
	c, err := eventstream.Start(eventstream.Config{URL: "redis://127.0.0.1:6379", Stream: "{nba}:events", Group: "nba", Apply: apply})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Stop()
	// ... serve; c.Stats() for /admin/status.
}
