package evaluate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"nba/nba/declog"
)

// TestUpliftRecoversKnownEffect logs decisions where the treated customers
// respond at 12% and the control group at 8%, and checks the measured
// difference and that its interval covers the truth.
func TestUpliftRecoversKnownEffect(t *testing.T) {
	dir := t.TempDir()
	l, err := declog.New(declog.Config{Dir: dir, Secret: []byte("0123456789abcdef0123")})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const n = 20000
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("d%d", i)
		control := r.Float64() < 0.2
		p := 0.12
		if control {
			p = 0.08
		}
		l.LogDecision(&declog.Decision{ID: id, Time: now, Customer: fmt.Sprintf("c%d", i), Channel: "web", Control: control,
			Chosen: []declog.Chosen{{Action: "offer", Prob: 1}}})
		if r.Float64() < p {
			l.LogFeedback(&declog.Feedback{Decision: id, Time: now, Customer: fmt.Sprintf("c%d", i), Action: "offer", Event: "convert", Reward: 10})
		}
		if i%1000 == 999 {
			l.Flush()
		}
	}
	l.LogFeedback(&declog.Feedback{Decision: "unknown", Time: now, Customer: "x", Action: "offer", Event: "convert"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.Dropped > 0 {
		t.Fatalf("the test lost records to a full queue: %+v", st)
	}
	rows, _, orphans, err := Uplift(dir, "decisions", UpliftConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if orphans != 1 {
		t.Errorf("orphans = %d, want 1", orphans)
	}
	if len(rows) != 2 || rows[0].Action != "*" || rows[1].Action != "offer" {
		t.Fatalf("rows = %+v", rows)
	}
	u := rows[1]
	if got := u.Treatment.N + u.Control.N; got != n {
		t.Errorf("decisions counted %d, want %d", got, n)
	}
	if d := u.RateDiff; d.Lower > 0.04 || d.Upper < 0.04 || math.Abs(d.Value-0.04) > 0.015 {
		t.Errorf("rate difference %+v does not recover 0.04", d)
	}
	if d := u.ValueDiff; d.Lower > 0.4 || d.Upper < 0.4 {
		t.Errorf("value difference %+v does not cover 0.4", d)
	}
}
