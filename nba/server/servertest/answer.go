package servertest

// The JSON of an explained POST /v1/decide answer as the README documents
// it, for tests that decode answers (of this package's Backend or of the
// real sidecar): one definition, so that a field the API gains is added
// once, and a test that decodes with unknown fields disallowed fails on a
// field the README does not document.

// StoppedBy is an answer's "stopped_by": the channel-wide contact policy
// that stopped the decision.
type StoppedBy struct {
	Policy  string `json:"policy"`
	Kind    string `json:"kind"`
	Scope   string `json:"scope"`
	Key     string `json:"key"`
	Outcome string `json:"outcome"`
	Window  string `json:"window"`
	Max     int    `json:"max"`
	Count   int    `json:"count"`
}

// Candidate is one element of an explained answer's "candidates". Rank and
// the factors (Propensity to Tier) are given only to the candidates that
// reached the ranking; Exploration only where the channel explores.
type Candidate struct {
	ID          string       `json:"id"`
	Stage       string       `json:"stage"`
	Score       float64      `json:"score"`
	Selected    bool         `json:"selected"`
	Reason      string       `json:"reason"`
	Rank        int          `json:"rank"`
	Propensity  *float64     `json:"propensity"`
	Weight      *float64     `json:"weight"`
	Value       *float64     `json:"value"`
	Lever       *float64     `json:"lever"`
	Tier        *int         `json:"tier"`
	Exploration *Exploration `json:"exploration"`
}

// Exploration is a candidate's "exploration": how the channel's explorer
// drew its score. Drawn is given by "thompson", RandomSlate by "epsilon".
type Exploration struct {
	Method      string   `json:"method"`
	Mean        float64  `json:"mean"`
	Drawn       *float64 `json:"drawn"`
	RandomSlate *bool    `json:"random_slate"`
}
