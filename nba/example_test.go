package nba_test

import (
	"fmt"
	"time"

	"nba/nba"
)

// staticProfiles serves one customer.
type staticProfiles struct{}

func (staticProfiles) Profile(id string, p *nba.Profile) bool {
	if id != "c42" {
		return false
	}
	p.Num[0] = 35     // age
	p.Str[1] = "gold" // segment
	p.Num[2] = 0      // in_arrears
	return true
}

func (staticProfiles) Version() string { return "example" }

func ExampleEngine_Decide() {
	schema := nba.Schema{Fields: []nba.Field{{Name: "age", Kind: nba.KindNumber},
		{Name: "segment", Kind: nba.KindCategory}, {Name: "in_arrears", Kind: nba.KindBool}}}
	catalog := `
context: {page: category}
actions:
  - id: premium_card
    channels: [web]
    value: 40
    rules:
      eligible: ["profile.age >= 18"]
      suitable: ["!profile.in_arrears"]
    treatments: {web: {headline: "Upgrade to Premium"}}
  - id: savings
    channels: [web]
    value: "context.page == \"savings\" ? 60 : 20"
`
	cat, err := nba.CompileCatalog("catalog.yaml", []byte(catalog), nba.Options{Schema: schema})
	if err != nil {
		fmt.Println(err)
		return
	}
	e, err := nba.NewEngine(nba.Config{Catalog: cat, Profiles: staticProfiles{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	var d nba.Decision
	for _, page := range []string{"home", "savings"} {
		req := nba.Request{Customer: "c42", Channel: "web", Now: time.Now(),
			Context: []nba.ContextValue{{Key: "page", Str: page}}}
		if err := e.Decide(&req, &d); err != nil {
			fmt.Println(err)
			return
		}
		a := d.Actions[0]
		fmt.Printf("%s: %s priority %.0f treatment=%s\n", page, a.Action.ID, a.Priority, a.Treatment)
	}
	// Output:
	// home: premium_card priority 40 treatment={"headline":"Upgrade to Premium"}
	// savings: savings priority 60 treatment=
}
