// Command gen writes the demo bundle's synthetic customers and the training
// rows from which nba/demo/train.py fits the demo's propensity model.
//
//	go run ./nba/demo/gen -catalog nba/demo/bundle/catalog.yaml \
//	    -customers nba/demo/bundle/customers.csv.zst -train /tmp/demo-train.tsv
//
// Every customer has observable features (the snapshot) and a hidden taste
// that the model can only approximate from them. Responses in the training
// rows are drawn from a known logistic response function of both, so the demo
// model learns real structure: cross-sell categories matter by household,
// age and price sensitivity; win-back works on lapsed customers; up-sell on
// big spenders. The output is deterministic for a seed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/klauspost/compress/zstd"
)

// asOf is the demo snapshot's as-of date: birthdays and recency are relative to it.
var asOf = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// customer is one synthetic customer: observable features plus hidden taste.
type customer struct {
	id                                string
	age, tenureDays, orders, spend    float64
	daysSinceOrder                    float64 // NaN: never ordered
	visits30d, returns90d             float64
	emailOptIn, appInstalled, arrears bool
	kids                              bool
	priceSensitivity                  float64
	loyalty, segment, region          string
	birthDate, signupAt               time.Time
	tzOffsetMin                       float64
	taste                             [9]float64 // hidden per-category taste, index = category code
}

// action is what training needs of a catalog action: its model features.
type action struct {
	ID       string             `yaml:"id"`
	Model    string             `yaml:"model"`
	Features map[string]float64 `yaml:"features"`
}

func main() {
	catalogPath := flag.String("catalog", "nba/demo/bundle/catalog.yaml", "catalog whose actions' features the training rows use")
	customersPath := flag.String("customers", "nba/demo/bundle/customers.csv.zst", "where to write the customer snapshot (zstd CSV)")
	trainPath := flag.String("train", "", "where to write training rows (TSV with header); empty: none")
	n := flag.Int("n", 10000, "number of customers")
	perCustomer := flag.Int("train.perCustomer", 8, "training rows per customer (random actions)")
	seed := flag.Uint64("seed", 7, "random seed")
	flag.Parse()

	rng := rand.New(rand.NewPCG(*seed, 0x5eed))
	customers := make([]customer, *n)
	for i := range customers {
		customers[i] = newCustomer(rng, i)
	}
	if err := writeCustomers(*customersPath, customers); err != nil {
		log.Fatalf("cannot write customers: %v", err)
	}
	if *trainPath == "" {
		return
	}
	actions, err := readActions(*catalogPath)
	if err != nil {
		log.Fatalf("cannot read catalog: %v", err)
	}
	if err := writeTraining(*trainPath, rng, customers, actions, *perCustomer); err != nil {
		log.Fatalf("cannot write training rows: %v", err)
	}
}

func newCustomer(rng *rand.Rand, i int) customer {
	c := customer{id: fmt.Sprintf("c%05d", i+1)}
	c.age = math.Round(18 + 62*rng.Float64()*rng.Float64()*1.3)
	c.age = min(c.age, 85)
	c.tenureDays = math.Round(rng.ExpFloat64() * 700)
	c.signupAt = asOf.Add(-time.Duration(c.tenureDays) * 24 * time.Hour)
	c.kids = c.age > 27 && c.age < 55 && rng.Float64() < 0.45
	c.priceSensitivity = math.Round(100*clamp(rng.NormFloat64()*0.22+0.5, 0, 1)) / 100
	c.orders = float64(poisson(rng, 1+3*rng.Float64()*(1-c.priceSensitivity/2)))
	if c.orders > 0 {
		c.spend = math.Round(c.orders * (30 + 90*rng.Float64()) * (1.5 - c.priceSensitivity))
		c.daysSinceOrder = math.Round(rng.Float64() * 360 / math.Sqrt(c.orders))
	} else {
		c.daysSinceOrder = math.NaN()
	}
	c.visits30d = float64(poisson(rng, 0.5+c.orders))
	c.returns90d = float64(poisson(rng, 0.1*c.orders))
	c.emailOptIn = rng.Float64() < 0.7
	c.appInstalled = rng.Float64() < 0.35+0.01*(50-c.age)/2
	c.arrears = rng.Float64() < 0.04
	switch {
	case c.spend > 900:
		c.loyalty = "gold"
	case c.spend > 300:
		c.loyalty = "silver"
	default:
		c.loyalty = "none"
	}
	switch {
	case c.kids:
		c.segment = "family"
	case c.age < 30:
		c.segment = "young"
	case c.priceSensitivity > 0.65:
		c.segment = "value"
	default:
		c.segment = "premium"
	}
	regions := []string{"north", "south", "east", "west", "city"}
	c.region = regions[rng.IntN(len(regions))]
	offsets := []float64{0, 0, 0, 60, 60, 120, -300, -480}
	c.tzOffsetMin = offsets[rng.IntN(len(offsets))]
	born := asOf.AddDate(-int(c.age), 0, 0).AddDate(0, 0, -rng.IntN(365))
	c.birthDate = time.Date(born.Year(), born.Month(), born.Day(), 0, 0, 0, 0, time.UTC)
	for k := 1; k < len(c.taste); k++ {
		c.taste[k] = rng.NormFloat64() * 0.6
	}
	// Observable traits shift taste: the model can learn these.
	if c.kids {
		c.taste[catKids] += 1.6
		c.taste[catHome] += 0.6
	}
	if c.age < 32 {
		c.taste[catElectronics] += 0.9
		c.taste[catBeauty] += 0.5
	}
	if c.age > 55 {
		c.taste[catBooks] += 1.0
		c.taste[catHome] += 0.5
	}
	if c.visits30d > 4 {
		c.taste[catShoes] += 0.7
	}
	return c
}

// Product categories of cross-sell actions (action feature "category").
const (
	catShoes = 1 + iota
	catAccessories
	catKids
	catHome
	catBeauty
	catOutdoor
	catElectronics
	catBooks
)

// Offer kinds (action feature "offer_kind").
const (
	kindCrossSell = 1 + iota
	kindUpSell
	kindWinBack
	kindLoyalty
	kindService
	kindCredit
	kindContent
	kindBirthday
	kindWelcome
	kindCart
)

// trueLogit is the hidden response function: log-odds that the customer
// accepts the action.
func trueLogit(c *customer, f map[string]float64) float64 {
	kind, cat := int(f["offer_kind"]), int(f["category"])
	discount, price := f["discount_pct"], f["price_level"]
	l := -3.2
	switch kind {
	case kindCrossSell:
		l += c.taste[cat] + 0.15*min(c.orders, 6)
	case kindUpSell:
		l += -0.6 + 0.9*math.Log1p(c.spend/200) - 1.2*c.priceSensitivity
	case kindWinBack:
		lapsed := !math.IsNaN(c.daysSinceOrder) && c.daysSinceOrder > 120
		if lapsed {
			l += 1.8
		} else {
			l -= 0.8
		}
	case kindLoyalty:
		l += 0.12*min(c.orders, 10) - 0.3
	case kindService:
		l += 0.5
	case kindCredit:
		l += -0.8 + 0.6*math.Log1p(c.spend/500)
	case kindContent:
		l += -0.4 + 0.05*c.visits30d
	case kindBirthday:
		l += 1.5
	case kindWelcome:
		l += 1.0 - c.tenureDays/200
	case kindCart:
		l += 1.2
	}
	l += discount / 10 * (0.4 + 2.2*c.priceSensitivity)
	l -= price * (0.2 + 0.9*c.priceSensitivity)
	if c.emailOptIn {
		l += 0.2
	}
	return l
}

// modelFeatures are the profile columns the demo model reads, in order; the
// action features follow them.
var modelFeatures = []string{"age", "tenure_days", "orders_12m", "spend_12m", "days_since_order",
	"web_visits_30d", "returns_90d", "email_opt_in", "app_installed", "kids_in_household", "price_sensitivity"}

var actionFeatures = []string{"offer_kind", "category", "discount_pct", "price_level"}

func (c *customer) modelRow() []float64 {
	return []float64{c.age, c.tenureDays, c.orders, c.spend, c.daysSinceOrder, c.visits30d, c.returns90d,
		b2f(c.emailOptIn), b2f(c.appInstalled), b2f(c.kids), c.priceSensitivity}
}

func writeCustomers(path string, cs []customer) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(zw)
	fmt.Fprintln(w, "id,age,tenure_days,orders_12m,spend_12m,days_since_order,web_visits_30d,returns_90d,email_opt_in,app_installed,kids_in_household,price_sensitivity,in_arrears,loyalty_tier,segment,region,tz_offset_min,birth_date,signup_at")
	for i := range cs {
		c := &cs[i]
		fmt.Fprintf(w, "%s,%g,%g,%g,%g,%s,%g,%g,%t,%t,%t,%g,%t,%s,%s,%s,%g,%s,%s\n",
			c.id, c.age, c.tenureDays, c.orders, c.spend, num(c.daysSinceOrder), c.visits30d, c.returns90d,
			c.emailOptIn, c.appInstalled, c.kids, c.priceSensitivity, c.arrears, c.loyalty, c.segment, c.region,
			c.tzOffsetMin, c.birthDate.Format("2006-01-02"), c.signupAt.Format(time.RFC3339))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func readActions(path string) ([]action, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cat struct {
		Actions []action `yaml:"actions"`
	}
	if err := yaml.Unmarshal(data, &cat); err != nil {
		return nil, err
	}
	var out []action
	for _, a := range cat.Actions {
		if len(a.Features) > 0 {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no action has model features", path)
	}
	return out, nil
}

func writeTraining(path string, rng *rand.Rand, cs []customer, actions []action, per int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	for _, h := range append(append([]string{}, modelFeatures...), actionFeatures...) {
		fmt.Fprintf(w, "%s\t", h)
	}
	fmt.Fprintln(w, "label")
	for i := range cs {
		c := &cs[i]
		row := c.modelRow()
		for k := 0; k < per; k++ {
			a := &actions[rng.IntN(len(actions))]
			p := 1 / (1 + math.Exp(-trueLogit(c, a.Features)))
			y := 0
			if rng.Float64() < p {
				y = 1
			}
			for _, v := range row {
				fmt.Fprintf(w, "%s\t", num(v))
			}
			for _, name := range actionFeatures {
				fmt.Fprintf(w, "%g\t", a.Features[name])
			}
			fmt.Fprintln(w, y)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func poisson(rng *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func num(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
