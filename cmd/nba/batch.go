package main

import (
	"bufio"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"
	"github.com/klauspost/compress/zstd"

	"nba/nba/server"
	"nba/nba/sidecar"
)

func init() {
	register(command{name: "decide", summary: "decide for one customer from the command line", run: runDecide})
	register(command{name: "batch", summary: "decide for all (or listed) customers of a bundle: outbound runs, JSON Lines out", run: runBatch})
}

// decisionJSON is one decision as decide and batch print it: the fields of
// the HTTP API's decide response.
type decisionJSON struct {
	DecisionID string       `json:"decision_id,omitempty"`
	CustomerID string       `json:"customer_id"`
	Channel    string       `json:"channel"`
	Actions    []actionJSON `json:"actions"`
	Control    bool         `json:"control"`
	Withheld   []actionJSON `json:"withheld,omitempty"`
	Versions   struct {
		Catalog  string `json:"catalog"`
		Model    string `json:"model"`
		Snapshot string `json:"snapshot"`
	} `json:"versions"`
	Candidates []server.Candidate `json:"candidates,omitempty"`
}

type actionJSON struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Score      float64         `json:"score"`
	Propensity float64         `json:"propensity"`
	Value      float64         `json:"value"`
	Lever      float64         `json:"lever"`
	Tier       int             `json:"tier"`
	Treatment  json.RawMessage `json:"treatment,omitempty"`
}

func toJSON(req *server.DecideRequest, resp *server.DecideResponse) *decisionJSON {
	d := &decisionJSON{DecisionID: req.DecisionID, CustomerID: req.CustomerID, Channel: req.Channel, Control: resp.Control, Actions: []actionJSON{}, Candidates: resp.Candidates}
	d.Versions.Catalog, d.Versions.Model, d.Versions.Snapshot = resp.Versions.Catalog, resp.Versions.Model, resp.Versions.Snapshot
	for _, a := range resp.Actions {
		d.Actions = append(d.Actions, actionJSON{a.ID, a.Name, a.Score, a.Propensity, a.Value, a.Lever, a.Tier, json.RawMessage(a.Treatment)})
	}
	for _, a := range resp.Withheld {
		d.Withheld = append(d.Withheld, actionJSON{a.ID, a.Name, a.Score, a.Propensity, a.Value, a.Lever, a.Tier, json.RawMessage(a.Treatment)})
	}
	return d
}

// bundleFlags are the flags decide and batch share to open a bundle.
type bundleFlags struct {
	bundle, state string
}

func (f *bundleFlags) register(fset *flag.FlagSet) {
	fset.StringVar(&f.bundle, "bundle", "", "bundle directory; empty uses the embedded demo")
	fset.StringVar(&f.state, "state", "", "customer state directory to read contact history and journeys from (must not be in use by a running server); empty: none")
}

func (f *bundleFlags) open() (*sidecar.Sidecar, func(), error) {
	bundle, name, err := openBundle(f.bundle)
	if err != nil {
		return nil, nil, err
	}
	dir, cleanup := f.state, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "nba-state-"); err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	s, err := sidecar.Open(sidecar.Config{Bundle: bundle, BundleName: name, StateDir: dir, Logger: quietLogger()})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return s, func() { s.Close(); cleanup() }, nil
}

// contextFlag collects -context key=value pairs.
type contextFlag []server.Field

func (c *contextFlag) String() string { return fmt.Sprint(*c) }

func (c *contextFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	f := server.Field{Key: k, Kind: server.KindString, Str: v}
	if v == "true" || v == "false" {
		f = server.Field{Key: k, Kind: server.KindBool, Bool: v == "true"}
	} else if num, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(num, 0) && !math.IsNaN(num) {
		f = server.Field{Key: k, Kind: server.KindNumber, Num: num}
	}
	*c = append(*c, f)
	return nil
}

func runDecide(args []string) error {
	fset := flag.NewFlagSet("decide", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba decide [flags]

Decides once for one customer against a bundle, without a server, and prints
the decision as the HTTP API would (JSON). The decision changes no state.

Examples:
  nba decide -customer c00042 -channel web -limit 3
  nba decide -customer c00042 -channel agent -explain -context page=checkout

Flags:
`)
		fset.PrintDefaults()
	}
	var bf bundleFlags
	bf.register(fset)
	customer := fset.String("customer", "", "customer id (unknown ids are decided as anonymous)")
	channel := fset.String("channel", "web", "channel")
	placement := fset.String("placement", "", "placement")
	limit := fset.Int("limit", 1, "actions wanted")
	explain := fset.Bool("explain", false, "list every candidate with the stage that removed it or its scores")
	var ctx contextFlag
	fset.Var(&ctx, "context", "request context field key=value (repeatable)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	s, done, err := bf.open()
	if err != nil {
		return err
	}
	defer done()
	req := server.DecideRequest{CustomerID: *customer, Channel: *channel, Placement: *placement, Limit: *limit,
		Context: ctx, Explain: *explain, DryRun: true}
	var resp server.DecideResponse
	if err := s.Decide(&req, &resp); err != nil {
		return err
	}
	out, err := json.MarshalIndent(toJSON(&req, &resp), "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

func runBatch(args []string) error {
	fset := flag.NewFlagSet("batch", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba batch -channel CHANNEL [flags]

Decides for every customer of the bundle's snapshot (or those listed in
-customers, one id per line) on all cores, and writes one JSON object per
line: decision_id, customer_id, channel, actions, control, versions (send
the decision_id back with the feedback). Output ending in
.zst is zstd-compressed. On a terminal, progress goes to stderr. Decisions
are dry runs unless -record is given with -state, in which case journey
steps given are recorded there.

Examples:
  nba batch -channel email -out decisions.jsonl.zst
  nba batch -bundle ./bundle -channel push -customers ids.txt -limit 2

Flags:
`)
		fset.PrintDefaults()
	}
	var bf bundleFlags
	bf.register(fset)
	channel := fset.String("channel", "", "channel to decide for (required)")
	limit := fset.Int("limit", 1, "actions per customer")
	list := fset.String("customers", "", "file of customer ids, one per line; empty: every customer of the snapshot")
	outPath := fset.String("out", "-", "output file (- for stdout); a .zst suffix compresses with zstd")
	workers := fset.Int("workers", runtime.GOMAXPROCS(0), "parallel deciders")
	record := fset.Bool("record", false, "record journey steps in -state (not a dry run)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *channel == "" {
		return errors.New("-channel is required")
	}
	if *record && bf.state == "" {
		return errors.New("-record needs -state")
	}
	s, done, err := bf.open()
	if err != nil {
		return err
	}
	defer done()
	var ids []string
	if *list != "" {
		data, err := os.ReadFile(*list)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				ids = append(ids, l)
			}
		}
	} else {
		ids = s.CustomerIDs()
	}
	var out io.Writer = os.Stdout
	if *outPath != "-" {
		f, err := os.Create(*outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	var zw *zstd.Encoder
	if strings.HasSuffix(*outPath, ".zst") {
		if zw, err = zstd.NewWriter(bw); err != nil {
			return err
		}
		out = zw
	} else {
		out = bw
	}

	// Decision ids as the server makes them: a random prefix for the run,
	// then the customer's position in the run.
	var idPrefix [8]byte
	if _, err := rand.Read(idPrefix[:]); err != nil {
		return err
	}

	// Workers decide chunks of customers; the writer emits chunks in order.
	const chunk = 256
	nchunks := (len(ids) + chunk - 1) / chunk
	results := make([]chan []byte, nchunks)
	for i := range results {
		results[i] = make(chan []byte, 1)
	}
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := 0; w < max(1, *workers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var resp server.DecideResponse
			for {
				c := int(next.Add(1) - 1)
				if c >= nchunks {
					return
				}
				var buf []byte
				for j, id := range ids[c*chunk : min((c+1)*chunk, len(ids))] {
					req := server.DecideRequest{CustomerID: id, Channel: *channel, Limit: *limit, DryRun: !*record,
						DecisionID: fmt.Sprintf("%x%016x", idPrefix, c*chunk+j+1)}
					resp = server.DecideResponse{Actions: resp.Actions[:0], Withheld: resp.Withheld[:0]}
					if err := s.Decide(&req, &resp); err != nil {
						firstErr.CompareAndSwap(nil, &err)
						break
					}
					b, _ := json.Marshal(toJSON(&req, &resp))
					buf = append(append(buf, b...), '\n')
				}
				results[c] <- buf
			}
		}()
	}
	progress := newProgress(os.Stderr, len(ids))
	start := time.Now()
	for c := range results {
		b := <-results[c]
		if _, err := out.Write(b); err != nil {
			return err
		}
		progress.add(min(chunk, len(ids)-c*chunk))
	}
	wg.Wait()
	progress.done()
	if e := firstErr.Load(); e != nil {
		return *e
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "decided %d customers on %s in %v\n", len(ids), *channel, time.Since(start).Round(time.Millisecond))
	return nil
}

// progress draws a progress bar when its writer is a terminal, at most
// every 100 ms, and always its final state (the bar used to stay at the
// first chunk's 256/10000 when the rest came within 100 ms).
type progress struct {
	w        io.Writer
	total, n int
	tty      bool
	now      func() time.Time
	last     time.Time
}

func newProgress(f *os.File, total int) *progress {
	fi, err := f.Stat()
	return &progress{w: f, total: total, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0, now: time.Now}
}

func (p *progress) add(n int) {
	p.n += n
	if !p.tty {
		return
	}
	if now := p.now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
}

func (p *progress) draw() {
	const width = 40
	filled := width * min(p.n, p.total) / max(1, p.total)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), p.n, p.total)
}

func (p *progress) done() {
	if p.tty {
		p.draw()
		fmt.Fprintln(p.w)
	}
}
