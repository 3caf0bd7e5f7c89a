package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"nba/nba/metrics"
	"nba/nba/server"
	"nba/nba/sidecar"
)

// Served is a sidecar serving a bundle on a loopback port, in process, the
// way cmd/nba serve wires it: sidecar.Open, server.New, Serve.
type Served struct {
	// URL is the base URL of the public API, "http://127.0.0.1:<port>".
	URL string

	sc   *sidecar.Sidecar
	srv  *server.Server
	errc chan error
}

// Serve opens the bundle in bundleDir with its customer state in stateDir
// and serves it on 127.0.0.1 at a free port. Logs below warnings are
// dropped. Close stops it.
func Serve(bundleDir, stateDir string) (*Served, error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sc, err := sidecar.Open(sidecar.Config{Bundle: os.DirFS(bundleDir), BundleName: bundleDir, StateDir: stateDir, Logger: logger})
	if err != nil {
		return nil, err
	}
	set := metrics.NewSet()
	if err := sc.RegisterMetrics(set); err != nil {
		sc.Close()
		return nil, err
	}
	srv, err := server.New(server.Config{Metrics: set, Logger: logger}, sc)
	if err != nil {
		sc.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sc.Close()
		return nil, fmt.Errorf("cannot listen on loopback: %w", err)
	}
	s := &Served{URL: "http://" + ln.Addr().String(), sc: sc, srv: srv, errc: make(chan error, 1)}
	go func() { s.errc <- srv.Serve(ln) }()
	return s, nil
}

// Close shuts the server down and closes the sidecar.
func (s *Served) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if e := <-s.errc; e != nil && err == nil {
		err = e
	}
	return errors.Join(err, s.sc.Close())
}

// ServeBundle writes the bundle of cs and visitModel into a new directory
// under tmp and serves it; the returned cleanup closes the sidecar and
// removes the directory.
func ServeBundle(tmp string, cs []Customer, visitModel string) (*Served, func(), error) {
	dir, err := os.MkdirTemp(tmp, "hillstrom-")
	if err != nil {
		return nil, nil, fmt.Errorf("cannot serve hillstrom bundle: %w", err)
	}
	if err := WriteBundle(filepath.Join(dir, "bundle"), cs, visitModel); err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	s, err := Serve(filepath.Join(dir, "bundle"), filepath.Join(dir, "state"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return s, func() {
		if err := s.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "closing the sidecar: %v\n", err)
		}
		os.RemoveAll(dir)
	}, nil
}

// Decision is the sidecar's answer for one customer.
type Decision struct {
	Arm        Arm
	Propensity float64 // the predicted visit probability of Arm, as served
}

// ClientConfig bounds the load DecideHTTP puts on the sidecar.
type ClientConfig struct {
	// Workers is the number of client goroutines, each with at most one
	// request in flight (so at most Workers connections). Default 4.
	Workers int
	// Batch is the customers per POST /v1/decide/batch request, at most the
	// server's MaxBatch (1000 by default); 1 sends one POST /v1/decide per
	// customer instead. Default 200.
	Batch int
}

// DecideHTTP asks the sidecar at base for the arm of every customer of cs
// on channel Channel with limit 1, and returns the decisions in the order
// of cs. Any refused request, error element, empty decision or unknown
// action is an error: the benchmark must see one arm per customer.
func DecideHTTP(ctx context.Context, base string, cs []Customer, cfg ClientConfig) ([]Decision, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Workers, DisableCompression: true}}
	defer client.CloseIdleConnections()
	out := make([]Decision, len(cs))
	chunks := make(chan int)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			for lo := range chunks {
				hi := min(lo+cfg.Batch, len(cs))
				var err error
				if cfg.Batch == 1 {
					body, err = decideOne(ctx, client, base, &cs[lo], &out[lo], body)
				} else {
					body, err = decideBatch(ctx, client, base, cs[lo:hi], out[lo:hi], body)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
feed:
	for lo := 0; lo < len(cs); lo += cfg.Batch {
		select {
		case chunks <- lo:
		case <-ctx.Done():
			break feed
		}
	}
	close(chunks)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, ctx.Err()
}

type wireDecision struct {
	CustomerID string `json:"customer_id"`
	Actions    []struct {
		ID         string  `json:"id"`
		Propensity float64 `json:"propensity"`
	} `json:"actions"`
	Control bool `json:"control"`
	Error   *struct {
		Code, Message string
	} `json:"error"`
}

func (w *wireDecision) decision(c *Customer) (Decision, error) {
	id := CustomerID(c)
	switch {
	case w.Error != nil:
		return Decision{}, fmt.Errorf("customer %s: refused: %s: %s", id, w.Error.Code, w.Error.Message)
	case w.CustomerID != id:
		return Decision{}, fmt.Errorf("customer %s: answer for customer %q", id, w.CustomerID)
	case w.Control || len(w.Actions) != 1:
		return Decision{}, fmt.Errorf("customer %s: %d actions (control %v), want exactly 1", id, len(w.Actions), w.Control)
	}
	a, ok := armOf(w.Actions[0].ID)
	if !ok {
		return Decision{}, fmt.Errorf("customer %s: unknown action %q", id, w.Actions[0].ID)
	}
	return Decision{Arm: a, Propensity: w.Actions[0].Propensity}, nil
}

func appendRequest(dst []byte, c *Customer) []byte {
	dst = append(dst, `{"customer_id":"`...)
	dst = append(dst, CustomerID(c)...)
	dst = append(dst, `","channel":"`+Channel+`","limit":1}`...)
	return dst
}

func decideOne(ctx context.Context, client *http.Client, base string, c *Customer, out *Decision, body []byte) ([]byte, error) {
	body = appendRequest(body[:0], c)
	resp, err := post(ctx, client, base+"/v1/decide", body)
	if err != nil {
		return body, err
	}
	var w wireDecision
	if err := json.Unmarshal(resp, &w); err != nil {
		return body, fmt.Errorf("cannot decode /v1/decide answer: %w", err)
	}
	*out, err = w.decision(c)
	return body, err
}

func decideBatch(ctx context.Context, client *http.Client, base string, cs []Customer, out []Decision, body []byte) ([]byte, error) {
	body = append(body[:0], `{"requests":[`...)
	for i := range cs {
		if i > 0 {
			body = append(body, ',')
		}
		body = appendRequest(body, &cs[i])
	}
	body = append(body, "]}"...)
	resp, err := post(ctx, client, base+"/v1/decide/batch", body)
	if err != nil {
		return body, err
	}
	var w struct{ Decisions []wireDecision }
	if err := json.Unmarshal(resp, &w); err != nil {
		return body, fmt.Errorf("cannot decode /v1/decide/batch answer: %w", err)
	}
	if len(w.Decisions) != len(cs) {
		return body, fmt.Errorf("/v1/decide/batch: %d decisions for %d requests", len(w.Decisions), len(cs))
	}
	for i := range cs {
		if out[i], err = w.Decisions[i].decision(&cs[i]); err != nil {
			return body, err
		}
	}
	return body, nil
}

// post sends body and returns the answer of a 200, or an error with the
// status and the start of the answer.
func post(ctx context.Context, client *http.Client, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot post to %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("cannot read answer of %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d: %.200s", url, resp.StatusCode, b)
	}
	return b, nil
}

// Summary counts decisions per arm, for reports.
func Summary(ds []Decision) (counts [NumArms]int) {
	for _, d := range ds {
		counts[d.Arm]++
	}
	return counts
}

func armCounts(c [NumArms]int) string {
	return "no " + strconv.Itoa(c[NoEmail]) + " / men's " + strconv.Itoa(c[MensEmail]) + " / women's " + strconv.Itoa(c[WomensEmail])
}
