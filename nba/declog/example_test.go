package declog_test

import (
	"fmt"
	"os"
	"time"

	"nba/nba/declog"
)

func ExampleLogger() {
	dir, _ := os.MkdirTemp("", "declog")
	defer os.RemoveAll(dir)
	l, err := declog.New(declog.Config{Dir: dir, Secret: []byte("from-an-environment-variable")})
	if err != nil {
		panic(err)
	}
	l.LogDecision(&declog.Decision{
		ID: "d-1", Time: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), Customer: "42", Channel: "web",
		Candidates: []declog.Candidate{{Action: "loan", Stage: "cap"}, {Action: "savings", P: 0.03, Value: 10, Score: 0.3}},
		Chosen:     []declog.Chosen{{Action: "savings", Prob: 0.95}},
	})
	l.Close()
	st, _ := declog.ReadDir(dir, "decisions", func(line []byte) error {
		r, _ := declog.ParseRecord(line)
		fmt.Println(r.Type, r.ID, r.Channel, r.Chosen[0].Action, *r.Chosen[0].Prob, r.Customer == declog.Pseudonym([]byte("from-an-environment-variable"), "42"))
		return nil
	})
	fmt.Println(st.Records, "record,", st.LostRecords, "lost")
	// Output:
	// decision d-1 web savings 0.95 true
	// 1 record, 0 lost
}
