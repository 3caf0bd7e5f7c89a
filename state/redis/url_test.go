package redisstate_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	redisstate "nba/state/redis"
)

// TestOpenBadURLHidesPassword: an unparsable URL's error (it reaches the
// start-up log) does not quote the password, as url.Parse's error does.
func TestOpenBadURLHidesPassword(t *testing.T) {
	for _, u := range []string{
		"redis://:s3cret@host:6379/%zz",
		"redis://user:s3cret@ho st:6379/",
		"redis://user:s3cret@host:port/",
	} {
		t.Run(u, func(t *testing.T) {
			_, err := redisstate.Open(context.Background(), redisstate.Config{URL: u})
			if err == nil || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("Open: %v", err)
			}
			_, err = redisstate.OpenLearn(redisstate.LearnConfig{URL: u, DecisionTTL: time.Minute})
			if err == nil || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("OpenLearn: %v", err)
			}
		})
	}
}

// TestOpenRefusesURLMistakes is the regression test of redis-10: an
// unknown query parameter (a mistyped Cluster seed became a standalone
// connection), a malformed addr= (silently dropped), protocol=2 (a
// rueidis-internal message) and a URL without a scheme are refused before
// any connection, with an error naming the parameter.
func TestOpenRefusesURLMistakes(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"redis://127.0.0.1:1?foo=bar", `unknown query parameter "foo"`},
		{"redis://127.0.0.1:1?adr=127.0.0.1:2", `unknown query parameter "adr"`},
		{"redis://127.0.0.1:1?addr=bad%zz", "addr"},
		{"redis://127.0.0.1:1?addr=host:notaport", "addr="},
		{"redis://127.0.0.1:1?addr=host:70000", "addr="},
		{"redis://127.0.0.1:1?addr=", "addr="},
		{"redis://127.0.0.1:1?protocol=2", "RESP3"},
		{"redis//127.0.0.1:1", "no scheme"},
		{"redis://127.0.0.1:1/1?db=2", "database is named twice"},
		{"redis://127.0.0.1:1?master_set=", "master_set is empty"},
		{"redis://127.0.0.1:1#frag", "fragment"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			start := time.Now()
			_, err := redisstate.Open(context.Background(), redisstate.Config{URL: tc.url})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want an error with %q", err, tc.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("refused after %v: the URL is wrong, nothing to wait for", d)
			}
		})
	}
}

// FuzzParseURL: any URL is either refused with an error that does not
// quote its password or accepted with a known scheme and only known
// query parameters.
func FuzzParseURL(f *testing.F) {
	for _, u := range []string{"redis://:pw@h:1/0?addr=a:2&addr=b", "rediss://h?skip_verify", "redis://h?protocol=2", "unix:///tmp/s", "redis://h?addr=%zz", "redis://h?x=1"} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, u string) {
		err := redisstate.CheckURL(u)
		if err != nil {
			if p, perr := url.Parse(u); perr == nil && p.User != nil {
				if pw, ok := p.User.Password(); ok && len(pw) > 3 && strings.Contains(err.Error(), pw) {
					t.Fatalf("error %q quotes the password", err)
				}
			}
			return
		}
		p, perr := url.Parse(u)
		if perr != nil {
			t.Fatalf("accepted an unparsable URL %q", u)
		}
		for k := range p.Query() {
			if !slices.Contains([]string{"addr", "client_cache", "client_name", "db", "dial_timeout", "master_set", "max_retries", "protocol", "skip_verify", "write_timeout"}, k) {
				t.Fatalf("accepted unknown parameter %q", k)
			}
		}
		if p.Query().Has("protocol") && p.Query().Get("protocol") != "3" {
			t.Fatalf("accepted %q", u)
		}
	})
}
