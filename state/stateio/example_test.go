package stateio_test

import (
	"fmt"
	"os"
	"strings"
	"time"

	"nba/state"
	"nba/state/embedded"
	"nba/state/stateio"
	"nba/state/wal"
)

// ExampleImport loads contact history into a state store: a cap counts it
// from then on.
func ExampleImport() {
	dir, _ := os.MkdirTemp("", "stateio-example-")
	defer os.RemoveAll(dir)
	st, err := embedded.Open(state.Config{WAL: wal.Config{Dir: dir}})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	history := `customer_id,action,group,channel,outcome,at,id
c1,card_offer,sales,email,impression,2026-03-09T08:00:00Z,m-1
c1,card_offer,sales,email,impression,2026-03-10T08:00:00Z,m-2
c2,card_offer,sales,email,maybe,2026-03-10T08:00:00Z,m-3
`
	n, err := stateio.Import(strings.NewReader(history), st, stateio.Options{Refused: func(line int, why error) {
		fmt.Printf("line %d refused: %v\n", line, why)
	}})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d customers, %d contacts, %d refused\n", n.Customers, n.Contacts, n.Refused)
	var v state.View
	st.View([]byte("c1"), &v)
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	fmt.Println("e-mails in 7 days:", v.Count(state.KindChannel, "email", state.Impression, 7*24*time.Hour, now))
	// Output:
	// line 4 refused: outcome: want impression, click, accept, reject, convert or dismiss
	// 1 customers, 2 contacts, 1 refused
	// e-mails in 7 days: 2
}
