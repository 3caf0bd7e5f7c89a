package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/valyala/fasthttp"

	"nba/nba/server"
	"nba/nba/sidecar"
)

// The -state.redis comparison (-ab redis): A is the sidecar with the
// embedded state, B the same bundle with the customer state on Redis.
// B's contact history is loaded through Feedback (one acknowledged write
// per contact, as a caller would send them), only for the customers the
// requests visit (ids kept by keep): the Redis backend has no bulk import,
// and the rest would never be read. Their event ids are the file's line
// numbers, so a second run on the same server records nothing again.

// feedContacts sends the bundle's contacts.csv rows of the kept customers
// to sc as impression (and other outcome) feedback, from 16 goroutines.
func feedContacts(sc *sidecar.Sidecar, bundleDir string, keep func(string) bool) (int, error) {
	f, err := os.Open(filepath.Join(bundleDir, "contacts.csv"))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	jobs := make(chan server.Feedback, 1024)
	var sent atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fb := range jobs {
				if err := sc.Feedback(&fb); err != nil {
					first.CompareAndSwap(nil, &err)
					continue
				}
				sent.Add(1)
			}
		}()
	}
	sc2 := bufio.NewScanner(f)
	line := 0
	for sc2.Scan() {
		line++
		// customer_id,action,group,channel,outcome,at
		p := strings.Split(sc2.Text(), ",")
		if line == 1 || len(p) != 6 || !keep(p[0]) {
			continue
		}
		o, ok := server.ParseOutcome(p[4])
		at, err := time.Parse(time.RFC3339, p[5])
		if !ok || err != nil {
			close(jobs)
			wg.Wait()
			return 0, fmt.Errorf("contacts.csv line %d: cannot parse %q", line, sc2.Text())
		}
		jobs <- server.Feedback{CustomerID: p[0], ActionID: p[1], Channel: p[3], Outcome: o, TS: at, EventID: "import-" + strconv.Itoa(line)}
	}
	close(jobs)
	wg.Wait()
	if err := sc2.Err(); err != nil {
		return int(sent.Load()), err
	}
	if e := first.Load(); e != nil {
		return int(sent.Load()), fmt.Errorf("cannot feed contacts: %w", *e)
	}
	return int(sent.Load()), nil
}

// redisCounter reads a Redis server's command counts (INFO commandstats),
// to report commands per decision and per feedback.
type redisCounter struct{ c rueidis.Client }

func newRedisCounter(url string) (*redisCounter, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, err
	}
	return &redisCounter{c}, nil
}

// commandsBy returns the calls per command (INFO commandstats), summed
// over the nodes, but the health check's PING and the INFO this counter
// sends. Redis counts the commands a script runs (the write script's
// HMGET and HSET) as well as the EVALSHA that sent it.
func (r *redisCounter) commandsBy() (map[string]int64, error) {
	n := map[string]int64{}
	for _, node := range r.c.Nodes() {
		info, err := node.Do(context.Background(), node.B().Info().Section("commandstats").Build()).ToString()
		if err != nil {
			return nil, err
		}
		for line := range strings.Lines(info) {
			name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
			if !ok || name == "cmdstat_ping" || name == "cmdstat_info" {
				continue
			}
			calls, _, _ := strings.Cut(rest, ",")
			v, err := strconv.ParseInt(calls, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("INFO commandstats: %q", line)
			}
			n[strings.TrimPrefix(name, "cmdstat_")] += v
		}
	}
	return n, nil
}

func (r *redisCounter) close() { r.c.Close() }

// sendFeedback posts n impression feedbacks in turn (one at a time: the
// latency of an acknowledgement, not a throughput) for customers in the
// order of ids, and returns the p50 and p99 in µs.
func sendFeedback(addr string, ids []string, action, channel string, n int, tag string) (p50, p99 float64, err error) {
	c := &fasthttp.HostClient{Addr: addr, MaxConns: 1}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	lat := make([]float64, 0, n)
	for i := range n {
		req.Reset()
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI("http://" + addr + "/v1/feedback")
		req.Header.SetContentType("application/json")
		fmt.Fprintf(req.BodyWriter(), `{"customer_id":%q,"action_id":%q,"channel":%q,"outcome":"impression","event_id":"load-%s-%d-%d"}`,
			ids[i%len(ids)], action, channel, tag, time.Now().UnixNano(), i)
		start := time.Now()
		if err := c.DoTimeout(req, resp, 5*time.Second); err != nil {
			return 0, 0, err
		}
		if sc := resp.StatusCode(); sc >= 300 {
			return 0, 0, fmt.Errorf("feedback: status %d: %s", sc, resp.Body())
		}
		lat = append(lat, float64(time.Since(start).Microseconds()))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], nil
}

// feedbackAction is an action of the bundle's catalog to send feedback
// about.
func feedbackAction(sc *sidecar.Sidecar) (string, error) {
	if as := sc.Catalog().Actions(); len(as) > 0 {
		return as[0].ID, nil
	}
	return "", fmt.Errorf("the catalog has no action to send feedback about")
}

// measureFeedback sends -feedback feedbacks to each sidecar (not the
// floor), for the first 1,000 customers of the requests (decided in the
// rounds: their state is cached), and prints p50/p99 and, with Redis, the
// Redis commands per feedback.
func measureFeedback(out io.Writer, o options, targets []*target, b server.Backend, redis *redisCounter) error {
	sc, ok := b.(*sidecar.Sidecar)
	if !ok {
		return errors.New("-feedback needs -bundle")
	}
	action, err := feedbackAction(sc)
	if err != nil {
		return err
	}
	ids := make([]string, min(o.customers, 1000))
	for i := range ids {
		ids[i] = fmt.Sprintf(o.prefix, i)
	}
	for _, t := range targets {
		if t.name == "floor" {
			continue
		}
		var c0 map[string]int64
		if redis != nil {
			if c0, err = redis.commandsBy(); err != nil {
				return err
			}
		}
		p50, p99, err := sendFeedback(t.addr, ids, action, o.channel, o.feedbacks, t.name)
		if err != nil {
			return fmt.Errorf("feedback to %s: %w", t.name, err)
		}
		fmt.Fprintf(out, "feedback %-5s n=%d p50_us=%.0f p99_us=%.0f", t.name, o.feedbacks, p50, p99)
		if redis != nil {
			c1, err := redis.commandsBy()
			if err != nil {
				return err
			}
			total, each := perOp(c0, c1, o.feedbacks)
			fmt.Fprintf(out, " redis_cmds_per_feedback=%.3f (%s)", total, each)
		}
		fmt.Fprintln(out)
	}
	return nil
}

// perOp returns the commands per operation between two commandstats
// readings, in all and by command.
func perOp(c0, c1 map[string]int64, ops int) (float64, string) {
	var total int64
	var each []string
	for name, v := range c1 {
		if d := v - c0[name]; d > 0 {
			total += d
			each = append(each, fmt.Sprintf("%s=%.4f", name, float64(d)/float64(ops)))
		}
	}
	slices.Sort(each)
	return float64(total) / float64(ops), strings.Join(each, " ")
}
