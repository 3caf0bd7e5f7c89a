package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"nba/state/redis/redistest"
)

// exactCapsInRace makes the race test's e-mail limit exact. Set it to
// false to see the test fail: without reservations the replicas give the
// last slot several times over.
const exactCapsInRace = true

// emailLimit is the customer view's entry for the demo's daily e-mail
// limit.
type emailLimit struct {
	Max, Count, Reserved int
	Exact                bool
}

func (p *proc) emailLimit(customer string) (emailLimit, int) {
	p.t.Helper()
	r := p.call("GET", "/v1/customers/"+customer, "")
	if r.status != http.StatusOK {
		p.t.Fatalf("GET /v1/customers/%s: %v", customer, r)
	}
	var v struct {
		Caps []struct {
			Scope, Key, Window   string
			Max, Count, Reserved int
			Exact                bool
		}
		History []struct {
			Channel, Outcome string
		}
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		p.t.Fatal(err)
	}
	var l emailLimit
	for _, c := range v.Caps {
		if c.Scope == "channel" && c.Key == "email" && c.Window == "1d" {
			l = emailLimit{Max: c.Max, Count: c.Count, Reserved: c.Reserved, Exact: c.Exact}
		}
	}
	imps := 0
	for _, h := range v.History {
		if h.Channel == "email" && h.Outcome == "impression" {
			imps++
		}
	}
	return l, imps
}

// TestExactCapRace: three nba serve replicas on one Redis, 32 concurrent
// callers deciding e-mail for the same few customers on any replica and
// sending each impression (quoting its decision) to another, and an nba
// batch -channel email run on the same Redis at the same time, its
// e-mails sent too: no customer ends with more e-mail impressions plus
// live reservations than the exact daily limit of 1. Without exact caps
// (exactCapsInRace false) the same run gives customers several e-mails.
func TestExactCapRace(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	bundle := exportDemo(t)
	cat := filepath.Join(bundle, "catalog.yaml")
	data, err := os.ReadFile(cat)
	if err != nil {
		t.Fatal(err)
	}
	const old = "- {max: 1, window: 1d}"
	if !strings.Contains(string(data), old) {
		t.Fatalf("the demo catalog has no %q", old)
	}
	writeAtomically(t, cat, []byte(strings.Replace(string(data), old, fmt.Sprintf("- {max: 1, window: 1d, exact: %v}", exactCapsInRace), 1)))
	common := []string{"-bundle", bundle, "-state.redis", rs.URL, "-state.redis.allowVolatile", "-caps.reserveTTL", "5m"}
	var replicas []*proc
	for range 3 {
		replicas = append(replicas, startServe(t, append([]string{"-state", t.TempDir(), "-decisionlog=false"}, common...)...))
	}

	// Customers the demo gives an e-mail.
	var customers []string
	for i := 1; i <= 400 && len(customers) < 13; i++ {
		c := fmt.Sprintf("c%05d", i)
		if d := replicas[0].decide(`{"customer_id":"` + c + `","channel":"email","limit":1,"dry_run":true}`); len(d.Actions) > 0 {
			customers = append(customers, c)
		}
	}
	if len(customers) < 7 {
		t.Fatalf("only %d demo customers are given an e-mail", len(customers))
	}
	// The batch decides its list in order: the first customer, whom the
	// callers leave alone, tells them by its reservation in Redis that
	// the batch is deciding; the others are contested by both.
	list := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(list, []byte(strings.Join(customers, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	sentinel := customers[0]
	customers = customers[1:]
	opt, err := rueidis.ParseURL(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	batchStarted := func() bool {
		n, err := rc.Do(context.Background(), rc.B().Exists().Key("{c:"+sentinel+"}").Build()).AsInt64()
		return err == nil && n == 1
	}

	var given, sent atomic.Int64
	impression := func(d decision, via *proc, n int64) error {
		for _, a := range d.Actions {
			fb := fmt.Sprintf(`{"decision_id":%q,"customer_id":%q,"action_id":%q,"channel":"email","outcome":"impression","event_id":"imp-%d-%s"}`,
				d.DecisionID, d.CustomerID, a.ID, n, a.ID)
			// 503 state_unavailable is the answer to retry (idempotent by
			// event_id): on this loaded machine a Redis connection's
			// health check can time out and take writes in flight with it.
			r, err := via.try("POST", via.base+"/v1/feedback", fb)
			for try := 0; err == nil && r.status == http.StatusServiceUnavailable && try < 50; try++ {
				time.Sleep(20 * time.Millisecond)
				r, err = via.try("POST", via.base+"/v1/feedback", fb)
			}
			if err != nil || r.status != http.StatusOK {
				return fmt.Errorf("feedback %s: %v %v", fb, r, err)
			}
			sent.Add(1)
		}
		return nil
	}
	start, callers := make(chan struct{}), make(chan struct{})
	batchDone := make(chan struct{})
	var batchOut string
	var batchErr error
	go func() {
		defer close(batchDone)
		<-start
		code, stdout, stderr := runNBA(t, append([]string{"batch", "-channel", "email", "-customers", list, "-workers", "2",
			"-state", t.TempDir()}, common...)...)
		if code != 0 {
			batchErr = fmt.Errorf("nba batch: exit %d: %s", code, stderr)
		}
		batchOut = stdout
	}()
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := range 32 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			<-callers
			for round := 0; ; round++ {
				select {
				case <-batchDone:
					if round >= 8 {
						return
					}
				default:
				}
				c := customers[rng.IntN(len(customers))]
				n := seq.Add(1)
				on, via := replicas[n%3], replicas[(n+1)%3]
				r, err := on.try("POST", on.base+"/v1/decide", `{"customer_id":"`+c+`","channel":"email","limit":1}`)
				if err != nil || r.status != http.StatusOK {
					t.Errorf("decide: %v %v", r, err)
					return
				}
				var d decision
				if err := json.Unmarshal(r.body, &d); err != nil {
					t.Error(err)
					return
				}
				given.Add(int64(len(d.Actions)))
				if err := impression(d, via, n); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	close(start)
	deadline := time.Now().Add(waitDeadline)
	for !batchStarted() && time.Now().Before(deadline) {
		select {
		case <-batchDone:
			deadline = time.Now() // exited without reserving: the checks below say why
		default:
			time.Sleep(time.Millisecond)
		}
	}
	close(callers)
	wg.Wait()
	<-batchDone
	if batchErr != nil {
		t.Fatal(batchErr)
	}
	// The batch's e-mails are sent: their impressions quote the batch's
	// decisions.
	batchGiven := 0
	sc := bufio.NewScanner(strings.NewReader(batchOut))
	for sc.Scan() {
		var d decision
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("batch line %q: %v", sc.Text(), err)
		}
		batchGiven += len(d.Actions)
		if err := impression(d, replicas[int(seq.Add(1))%3], seq.Add(1)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d customers: %d e-mails given by the replicas, %d by the batch, %d impressions sent; %v reservation conflicts",
		len(customers), given.Load(), batchGiven, sent.Load(),
		replicas[0].metric("nba_exact_reservation_conflicts_total")+replicas[1].metric("nba_exact_reservation_conflicts_total")+replicas[2].metric("nba_exact_reservation_conflicts_total"))
	if given.Load()+int64(batchGiven) == 0 {
		t.Fatal("no e-mail given at all: the race proves nothing")
	}
	for _, c := range customers {
		l, imps := replicas[int(seq.Add(1))%3].emailLimit(c)
		if l.Max != 1 || l.Exact != exactCapsInRace {
			t.Fatalf("%s: the customer view shows the e-mail limit as %+v", c, l)
		}
		if l.Count+l.Reserved > l.Max || imps > l.Max {
			t.Errorf("%s: %d e-mail impressions (%d in the history) and %d reserved, over the exact limit of %d a day", c, l.Count, imps, l.Reserved, l.Max)
		}
	}
}

// exactDemo exports the demo bundle with its daily e-mail limit exact.
func exactDemo(t *testing.T) string {
	t.Helper()
	bundle := exportDemo(t)
	cat := filepath.Join(bundle, "catalog.yaml")
	data, err := os.ReadFile(cat)
	if err != nil {
		t.Fatal(err)
	}
	const old = "- {max: 1, window: 1d}"
	if !strings.Contains(string(data), old) {
		t.Fatalf("the demo catalog has no %q", old)
	}
	writeAtomically(t, cat, []byte(strings.Replace(string(data), old, "- {max: 1, window: 1d, exact: true}", 1)))
	return bundle
}

// TestBatchReservesExactCaps: nba batch on an embedded state directory
// reserves the e-mails it gives under the exact daily limit, so a second
// run the same day gives none of those customers another; with
// -reserve=false it reserves nothing.
func TestBatchReservesExactCaps(t *testing.T) {
	bundle := exactDemo(t)
	var ids []string
	for i := 1; i <= 60; i++ {
		ids = append(ids, fmt.Sprintf("c%05d", i))
	}
	list := filepath.Join(t.TempDir(), "ids.txt")
	if err := os.WriteFile(list, []byte(strings.Join(ids, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	given := func(dir string, extra ...string) map[string]bool {
		t.Helper()
		code, stdout, stderr := runNBA(t, append([]string{"batch", "-bundle", bundle, "-channel", "email", "-customers", list, "-state", dir}, extra...)...)
		if code != 0 {
			t.Fatalf("nba batch: exit %d: %s", code, stderr)
		}
		out := map[string]bool{}
		for line := range strings.Lines(stdout) {
			var d decision
			if err := json.Unmarshal([]byte(line), &d); err != nil {
				t.Fatal(err)
			}
			if len(d.Actions) > 0 {
				out[d.CustomerID] = true
			}
		}
		return out
	}
	dir := t.TempDir()
	first := given(dir)
	if len(first) == 0 {
		t.Fatal("the first run gave no e-mail")
	}
	for c := range given(dir) {
		if first[c] {
			t.Errorf("%s given a second e-mail the same day: the first run's reservation did not hold", c)
		}
	}
	free := t.TempDir()
	given(free, "-reserve=false")
	if again := given(free); len(again) != len(first) {
		t.Errorf("after a run with -reserve=false, %d customers given an e-mail, want %d (nothing reserved)", len(again), len(first))
	}
}
