// Command hillstrom evaluates e-mail targeting policies on Kevin Hillstrom's
// randomized e-mail experiment (a copy is in testdata/hillstrom.csv): each
// customer was sent a men's e-mail, a women's e-mail or none, at random with
// probability 1/3 each, so the value of any policy "customer → arm" is
// estimated without bias by inverse propensity scoring (IPS) over the
// customers whose random arm matches the policy's choice.
//
// On the evaluation half of the fixed split shared with train.py it:
//
//  1. writes a bundle (bundle.go) whose actions are the three arms on
//     channel "email", scored by visit.json with the arm flags as action
//     features and the customers as the snapshot; value 1 for every arm, no
//     caps, no holdout, no fallback;
//  2. serves it in process (sidecar.Open, server.New, Serve on loopback) and
//     decides every customer through POST /v1/decide/batch (or /v1/decide)
//     with a bounded pool of client goroutines (serve.go);
//  3. learns online models (model.Online, one per arm) from the training
//     half's logged arms and visits, with offset 0 and with the offline
//     model's logit as offset (online.go);
//  4. prints the IPS value (visits, conversions, spend per customer) of the
//     baselines, the served model policy and the online policies, with
//     normal and bootstrap 95% intervals, the paired differences against
//     the marketer's rule, and a last machine-readable line.
//
// Propensities are the design's exact 1/3, not the realised arm shares.
//
// Usage:
//
//	go run ./bench/hillstrom [-data hillstrom.csv] [-model bench/hillstrom/visit.json] [-bootstrap 1000] [-seed 1]
//	    [-http.workers 4] [-http.batch 200] [-tmp dir]
package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Arm is an arm of the experiment.
type Arm int

// The arms; the numbering matches train.py.
const (
	NoEmail Arm = iota
	MensEmail
	WomensEmail
	NumArms
)

var armNames = [NumArms]string{"No E-Mail", "Mens E-Mail", "Womens E-Mail"}

func (a Arm) String() string {
	if a >= 0 && a < NumArms {
		return armNames[a]
	}
	return fmt.Sprintf("arm(%d)", int(a))
}

// Propensity is the probability of each arm in the experiment's design.
const Propensity = 1.0 / 3

// Customer is one row of the data set.
type Customer struct {
	Row            int // 0-based data row in file order
	Recency        float64
	HistorySegment string
	History        float64
	Mens, Womens   bool
	Zip            string // Urban, Surburban (sic), Rural
	Newbie         bool
	Channel        string // Phone, Web, Multichannel
	Arm            Arm    // the randomly assigned arm
	Visit          bool
	Conversion     bool
	Spend          float64
}

// FeatureNames are the model inputs, in the order Features writes them and
// train.py trains on.
var FeatureNames = []string{
	"recency", "history", "mens", "womens",
	"zip_urban", "zip_suburban", "zip_rural", "newbie",
	"channel_phone", "channel_web", "channel_multichannel",
	"arm_mens", "arm_womens",
}

var (
	zipIndex     = map[string]int{"Urban": 4, "Surburban": 5, "Rural": 6}
	channelIndex = map[string]int{"Phone": 8, "Web": 9, "Multichannel": 10}
	armIndex     = map[string]Arm{"No E-Mail": NoEmail, "Mens E-Mail": MensEmail, "Womens E-Mail": WomensEmail}
)

// Features writes the model row of c as if it were sent arm into
// dst[:len(FeatureNames)] and returns it.
func (c *Customer) Features(arm Arm, dst []float64) []float64 {
	dst = append(dst[:0], make([]float64, len(FeatureNames))...)
	dst[0], dst[1] = c.Recency, c.History
	dst[2], dst[3] = b2f(c.Mens), b2f(c.Womens)
	dst[zipIndex[c.Zip]] = 1
	dst[7] = b2f(c.Newbie)
	dst[channelIndex[c.Channel]] = 1
	dst[11], dst[12] = b2f(arm == MensEmail), b2f(arm == WomensEmail)
	return dst
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Load reads the data set.
func Load(path string) ([]Customer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot load hillstrom data: %w", err)
	}
	defer f.Close()
	cs, err := parse(f)
	if err != nil {
		return nil, fmt.Errorf("cannot load hillstrom data %q: %w", path, err)
	}
	return cs, nil
}

var header = []string{"recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie", "channel", "segment", "visit", "conversion", "spend"}

func parse(r io.Reader) ([]Customer, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(header)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	for i, h := range header {
		if head[i] != h {
			return nil, fmt.Errorf("header: column %d is %q, want %q", i+1, head[i], h)
		}
	}
	var out []Customer
	for row := 0; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		c := Customer{Row: row, HistorySegment: rec[1], Zip: rec[5], Channel: rec[7]}
		var bad string
		num := func(col int) float64 {
			v, err := strconv.ParseFloat(rec[col], 64)
			if err != nil && bad == "" {
				bad = header[col]
			}
			return v
		}
		flag := func(col int) bool {
			if rec[col] != "0" && rec[col] != "1" && bad == "" {
				bad = header[col]
			}
			return rec[col] == "1"
		}
		c.Recency, c.History, c.Spend = num(0), num(2), num(11)
		c.Mens, c.Womens, c.Newbie, c.Visit, c.Conversion = flag(3), flag(4), flag(6), flag(9), flag(10)
		arm, okArm := armIndex[rec[8]]
		_, okZip := zipIndex[c.Zip]
		_, okCh := channelIndex[c.Channel]
		switch {
		case bad != "":
			return nil, fmt.Errorf("row %d: bad %s", row+2, bad)
		case !okArm || !okZip || !okCh:
			return nil, fmt.Errorf("row %d: unknown segment, zip_code or channel", row+2)
		}
		c.Arm = arm
		out = append(out, c)
	}
}

// splitSeed and splitmix64 define the fixed train/evaluation split shared
// with train.py: row i is in the evaluation half when splitmix64(i+splitSeed)
// is odd.
const splitSeed = 0x4E4241

func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// InEval reports whether data row row is in the evaluation half.
func InEval(row int) bool { return splitmix64(uint64(row)+splitSeed)&1 == 1 }

// EvalHalf returns the customers of the evaluation half.
func EvalHalf(cs []Customer) []Customer {
	var out []Customer
	for _, c := range cs {
		if InEval(c.Row) {
			out = append(out, c)
		}
	}
	return out
}

// TrainHalf returns the customers of the training half (the rows train.py
// trains on), in file order.
func TrainHalf(cs []Customer) []Customer {
	var out []Customer
	for _, c := range cs {
		if !InEval(c.Row) {
			out = append(out, c)
		}
	}
	return out
}
