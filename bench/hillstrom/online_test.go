package main

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"testing/fstest"

	"nba/nba/sidecar"
)

// synthetic returns n customers with random arms whose visit depends on the
// arm and on what they bought: customers who bought only women's merchandise
// visit mostly after a women's e-mail, the others after a men's e-mail, and
// hardly ever without e-mail.
func synthetic(n int, seed uint64) []Customer {
	rng := rand.New(rand.NewPCG(seed, 1))
	zips := []string{"Urban", "Surburban", "Rural"}
	chans := []string{"Phone", "Web", "Multichannel"}
	cs := make([]Customer, n)
	for i := range cs {
		c := Customer{Row: i, Recency: float64(1 + rng.IntN(12)), History: 30 + 1000*rng.Float64(),
			Mens: rng.IntN(2) == 1, Newbie: rng.IntN(2) == 1, Zip: zips[rng.IntN(3)], Channel: chans[rng.IntN(3)], Arm: Arm(rng.IntN(int(NumArms)))}
		c.Womens = !c.Mens || rng.IntN(2) == 1
		best := MensEmail
		if c.Womens && !c.Mens {
			best = WomensEmail
		}
		p := 0.05
		switch c.Arm {
		case best:
			p = 0.5
		case NoEmail:
			p = 0.02
		}
		c.Visit = rng.Float64() < p
		cs[i] = c
	}
	return cs
}

func TestOnlineLearnsBestArm(t *testing.T) {
	train, test := synthetic(6000, 1), synthetic(2000, 2)
	l, err := LearnOnline(train, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Policy()
	wrong := 0
	for i := range test {
		c := &test[i]
		want := MensEmail
		if c.Womens && !c.Mens {
			want = WomensEmail
		}
		if p(c)[want] != 1 {
			wrong++
		}
	}
	if wrong > len(test)/50 {
		t.Errorf("online policy picks the wrong arm for %d of %d customers", wrong, len(test))
	}
	// Its IPS value on fresh logs is near the best achievable 0.5.
	if v := Evaluate(test, p, Outcomes[0], 0, 0); v.Upper < 0.5 || v.Lower > 0.5 {
		t.Errorf("online policy value %+v, want about 0.5", v.Estimate)
	}
	// A policy before any feedback has no preference: every arm ties at 0.5.
	l0, err := LearnOnline(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := l0.Predict(&test[0], WomensEmail); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("prior prediction %v, want 0.5", got)
	}
}

func TestDifference(t *testing.T) {
	cs := synthetic(3000, 3)
	rule, men := Baselines()[4].Policy, Baselines()[1].Policy
	for _, o := range Outcomes[:1] { // synthetic customers have visits only
		d := Difference(cs, rule, men, o, 100, 1)
		a, b := Evaluate(cs, rule, o, 0, 0), Evaluate(cs, men, o, 0, 0)
		if math.Abs(d.Value-(a.Value-b.Value)) > 1e-12 {
			t.Errorf("%s: difference %v, values %v − %v", o.Name, d.Value, a.Value, b.Value)
		}
		if !(d.BootLower <= d.Value && d.Value <= d.BootUpper) {
			t.Errorf("%s: bootstrap interval [%v, %v] misses %v", o.Name, d.BootLower, d.BootUpper, d.Value)
		}
		// Pairing: the rule and men's-to-all agree on most customers, so the
		// difference is far more certain than either value.
		if d.StdErr >= a.StdErr {
			t.Errorf("%s: paired standard error %v not below the single one %v", o.Name, d.StdErr, a.StdErr)
		}
		if z := Difference(cs, rule, rule, o, 100, 1); z.Value != 0 || z.StdErr != 0 || z.BootLower != 0 || z.BootUpper != 0 {
			t.Errorf("%s: a policy minus itself: %+v", o.Name, z)
		}
	}
}

func TestBundleValidates(t *testing.T) {
	vm, err := os.ReadFile("visit.json")
	if err != nil {
		t.Fatal(err)
	}
	files := bundleFiles(synthetic(50, 4), vm)
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: data}
	}
	if errs := sidecar.ValidateBundle(fsys); len(errs) > 0 {
		t.Fatalf("bundle does not validate: %v\n%s\n%s", errs, files["bundle.yaml"], files["catalog.yaml"])
	}
}
