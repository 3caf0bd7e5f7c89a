package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"nba/model"
)

func main() {
	data := flag.String("data", "bench/hillstrom/testdata/hillstrom.csv", "path of hillstrom.csv (a copy of the shared data set, see testdata/README.md)")
	modelPath := flag.String("model", filepath.Join("bench", "hillstrom", "visit.json"), "XGBoost visit model served by the sidecar and used as the online models' offset")
	reps := flag.Int("bootstrap", 1000, "bootstrap resamples per interval; 0 for normal intervals only")
	seed := flag.Uint64("seed", 1, "bootstrap seed")
	workers := flag.Int("http.workers", 4, "client goroutines deciding through the sidecar, each with one request in flight")
	batch := flag.Int("http.batch", 200, "customers per POST /v1/decide/batch; 1 for one POST /v1/decide each")
	tmp := flag.String("tmp", "", "directory for the bundle and the sidecar's state; default the system's temporary directory")
	flag.Parse()
	if err := run(*data, *modelPath, *reps, *seed, ClientConfig{Workers: *workers, Batch: *batch}, *tmp); err != nil {
		log.Fatal(err)
	}
}

func run(data, modelPath string, reps int, seed uint64, client ClientConfig, tmp string) error {
	cs, err := Load(data)
	if err != nil {
		return err
	}
	eval, train := EvalHalf(cs), TrainHalf(cs)
	m, err := model.Load(modelPath)
	if err != nil {
		return err
	}

	// 1–2. The model policy, decided by the sidecar over HTTP.
	served, cleanup, err := ServeBundle(tmp, eval, modelPath)
	if err != nil {
		return err
	}
	start := time.Now()
	ds, err := DecideHTTP(context.Background(), served.URL, eval, client)
	took := time.Since(start)
	cleanup()
	if err != nil {
		return err
	}
	httpArm := make(map[int]Arm, len(eval))
	for i := range eval {
		httpArm[eval[i].Row] = ds[i].Arm
	}
	httpPolicy := Deterministic(func(c *Customer) Arm { return httpArm[c.Row] })
	direct, err := ModelPolicy(m)
	if err != nil {
		return err
	}
	agree := 0
	for i := range eval {
		if direct(&eval[i])[ds[i].Arm] == 1 {
			agree++
		}
	}
	fmt.Printf("sidecar: %d decisions over HTTP (%s, %d workers) in %s; arms %s; %d of %d equal to scoring %s directly\n",
		len(ds), map[bool]string{true: "POST /v1/decide", false: fmt.Sprintf("POST /v1/decide/batch of %d", client.Batch)}[client.Batch == 1],
		client.Workers, took.Round(time.Millisecond), armCounts(Summary(ds)), agree, len(eval), modelPath)

	// 4. Online models learnt from the training half's logged feedback.
	online0, err := LearnOnline(train, nil)
	if err != nil {
		return err
	}
	onlineOff, err := LearnOnline(train, m)
	if err != nil {
		return err
	}
	onlineCounts := func(p Policy) string {
		var n [NumArms]int
		for i := range eval {
			pr := p(&eval[i])
			for a := range NumArms {
				if pr[a] == 1 {
					n[a]++
				}
			}
		}
		return armCounts(n)
	}
	on0, onOff := online0.Policy(), onlineOff.Policy()
	fmt.Printf("online (offset 0): %d updates from the training half; arms on the evaluation half %s\n", len(train), onlineCounts(on0))
	fmt.Printf("online (offset = offline logit): %d updates; arms %s\n", len(train), onlineCounts(onOff))
	var out [1]float64
	offline := func(c *Customer, a Arm) float64 {
		var row [16]float64
		m.Predict(c.Features(a, row[:0]), out[:])
		return out[0]
	}
	fmt.Printf("visit log loss on the evaluation half (logged arm): offline %.4f, online offset 0 %.4f, online offset = offline logit %.4f, constant %.4f\n",
		LogLoss(eval, offline), LogLoss(eval, online0.Predict), LogLoss(eval, onlineOff.Predict), LogLoss(eval, constant(train)))
	fmt.Println()

	// 3. IPS values.
	const (
		nameModel  = "model via sidecar HTTP (best predicted visit)"
		nameOnline = "online, offset 0 (greedy on posterior mean)"
		nameOnOff  = "online, offset = offline logit (greedy)"
		nameRule   = "marketer's rule"
	)
	policies := append(Baselines(),
		NamedPolicy{nameModel, httpPolicy},
		NamedPolicy{nameOnline, on0},
		NamedPolicy{nameOnOff, onOff})
	byName := map[string]Policy{}
	fmt.Printf("Hillstrom evaluation half: %d of %d customers; IPS with the design propensity 1/3; 95%% normal [bootstrap %d, seed %d] intervals\n\n",
		len(eval), len(cs), reps, seed)
	fmt.Println("| policy | visits per customer | conversions per customer | spend per customer ($) |")
	fmt.Println("|---|---|---|---|")
	values := map[string][]Value{}
	for _, np := range policies {
		byName[np.Name] = np.Policy
		fmt.Printf("| %s |", np.Name)
		for _, o := range Outcomes {
			v := Evaluate(eval, np.Policy, o, reps, seed)
			values[np.Name] = append(values[np.Name], v)
			fmt.Printf(" %s |", format(v, o.Name == "spend"))
		}
		fmt.Println()
	}

	fmt.Printf("\nPaired differences (per-customer IPS terms subtracted, same resamples):\n\n")
	fmt.Println("| difference | customers where the choices differ | visits per customer | conversions per customer | spend per customer ($) |")
	fmt.Println("|---|---|---|---|---|")
	diffs := map[string][]Value{}
	for _, pair := range [][2]string{
		{nameModel, nameRule},
		{nameModel, "men's e-mail to all"},
		{nameRule, "men's e-mail to all"},
		{nameOnline, nameRule},
		{nameOnOff, nameRule},
		{nameOnline, nameModel},
	} {
		key := pair[0] + " − " + pair[1]
		differ := 0
		for i := range eval {
			if byName[pair[0]](&eval[i]) != byName[pair[1]](&eval[i]) {
				differ++
			}
		}
		fmt.Printf("| %s | %d |", key, differ)
		for _, o := range Outcomes {
			d := Difference(eval, byName[pair[0]], byName[pair[1]], o, reps, seed)
			diffs[key] = append(diffs[key], d)
			fmt.Printf(" %s |", format(d, o.Name == "spend"))
		}
		fmt.Println()
	}
	fmt.Println()

	boot := func(v Value) string {
		if v.BootLower != v.BootLower {
			return fmt.Sprintf("[%.4f,%.4f]", v.Lower, v.Upper)
		}
		return fmt.Sprintf("[%.4f,%.4f]", v.BootLower, v.BootUpper)
	}
	mv, rv, ov, oo := values[nameModel], values[nameRule], values[nameOnline], values[nameOnOff]
	d, don := diffs[nameModel+" − "+nameRule], diffs[nameOnline+" − "+nameRule]
	var b strings.Builder
	fmt.Fprintf(&b, "model_visit=%.4f rule_visit=%.4f model_minus_rule=%.4f %s", mv[0].Value, rv[0].Value, d[0].Value, boot(d[0]))
	fmt.Fprintf(&b, " online_visit=%.4f online_minus_rule=%.4f %s online_offset_visit=%.4f", ov[0].Value, don[0].Value, boot(don[0]), oo[0].Value)
	fmt.Fprintf(&b, " model_conversion=%.4f rule_conversion=%.4f model_minus_rule_conversion=%.4f %s", mv[1].Value, rv[1].Value, d[1].Value, boot(d[1]))
	fmt.Fprintf(&b, " http_agree=%d/%d", agree, len(eval))
	fmt.Println(b.String())
	if agree != len(eval) {
		fmt.Fprintf(os.Stderr, "warning: %d HTTP decisions differ from direct scoring\n", len(eval)-agree)
	}
	return nil
}

func format(v Value, money bool) string {
	f := "%.4f [%.4f, %.4f]"
	if money {
		f = "%.3f [%.3f, %.3f]"
	}
	s := fmt.Sprintf(f, v.Value, v.Lower, v.Upper)
	if v.BootLower == v.BootLower { // not NaN
		s += fmt.Sprintf(" (boot "+f[5:]+")", v.BootLower, v.BootUpper)
	}
	return s
}
