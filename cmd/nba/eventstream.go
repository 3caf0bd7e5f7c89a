package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"nba/nba/eventstream"
	"nba/nba/server"
)

// eventStreamFlags are serve's -events.redis.* flags: events consumed from
// a Redis stream.
type eventStreamFlags struct {
	stream, group, url, consumer, deadLetter string
	minIdle                                  time.Duration
	count                                    int64
}

func (f *eventStreamFlags) register(fset *flag.FlagSet) {
	fset.StringVar(&f.stream, "events.redis.stream", "", "consume customer events from this Redis stream key (entry fields customer_id, type, ts, event_id, attrs as a JSON object), applied as POST /v1/events; needs -events.redis.group")
	fset.StringVar(&f.group, "events.redis.group", "", "consumer group of -events.redis.stream; created at the start of the stream when missing. Every sidecar of one deployment uses the same group: each entry is applied by one of them")
	fset.StringVar(&f.url, "events.redis.url", "", "Redis holding -events.redis.stream (the URL forms of -state.redis; default: -state.redis)")
	fset.StringVar(&f.consumer, "events.redis.consumer", "", "this process's consumer name in the group (default hostname-pid)")
	fset.StringVar(&f.deadLetter, "events.redis.deadLetter", "", "stream that receives entries that can never be applied, with their reason (default <stream>:dead)")
	fset.DurationVar(&f.minIdle, "events.redis.minIdle", time.Minute, "take over entries pending this long with another consumer (one that died); must exceed the time a live consumer takes to apply one read")
	fset.Int64Var(&f.count, "events.redis.count", 100, "most entries one read takes")
}

// config returns the consumer's configuration, checked against the
// decoder bounds of POST /v1/events in scfg; a zero Stream when no stream
// is named.
func (f *eventStreamFlags) config(fset *flag.FlagSet, scfg server.Config, stateRedis string) (eventstream.Config, error) {
	if f.stream == "" {
		for _, name := range [...]string{"events.redis.group", "events.redis.url", "events.redis.consumer", "events.redis.deadLetter", "events.redis.minIdle", "events.redis.count"} {
			if flagSet(fset, name) {
				return eventstream.Config{}, fmt.Errorf("-%s needs -events.redis.stream", name)
			}
		}
		return eventstream.Config{}, nil
	}
	// Zero takes the default; a negative value is a mistake the consumer
	// would otherwise turn into the default without a word.
	if f.count < 0 {
		return eventstream.Config{}, fmt.Errorf("-events.redis.count must not be negative (got %d)", f.count)
	}
	if f.minIdle < 0 {
		return eventstream.Config{}, fmt.Errorf("-events.redis.minIdle must not be negative (got %v)", f.minIdle)
	}
	if f.group == "" {
		return eventstream.Config{}, errors.New("-events.redis.stream needs -events.redis.group")
	}
	url := f.url
	if url == "" {
		url = stateRedis
	}
	if url == "" {
		return eventstream.Config{}, errors.New("-events.redis.stream needs -events.redis.url (or -state.redis)")
	}
	dec, err := server.NewEventDecoder(scfg)
	if err != nil {
		return eventstream.Config{}, err
	}
	return eventstream.Config{URL: url, Stream: f.stream, Group: f.group, Consumer: f.consumer, DeadLetter: f.deadLetter,
		MinIdle: f.minIdle, Count: f.count, Decoder: dec}, nil
}
