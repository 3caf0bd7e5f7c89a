package nba

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// choices reads a fuzzer's bytes as a sequence of small choices; past the
// end every choice is 0.
type choices struct{ b []byte }

func (c *choices) n(k int) int {
	if len(c.b) == 0 || k <= 1 {
		return 0
	}
	v := c.b[0]
	c.b = c.b[1:]
	return int(v) % k
}

func (c *choices) pick(opts ...string) string { return opts[c.n(len(opts))] }

// ruleWorld is a random schema, context and catalog the loader accepts,
// with a customer and a request to decide.
type ruleWorld struct {
	schema  Schema
	ctx     []Field
	catalog string
	rules   []string
}

var fuzzKinds = []Kind{KindNumber, KindCategory, KindTime, KindBool}

func fieldRef(side string, f Field) string { return side + "." + f.Name }

// rule returns a boolean rule over one field, in a flat form or not.
func (w *ruleWorld) rule(c *choices, depth int) string {
	type ref struct {
		src  string
		kind Kind
	}
	var refs []ref
	for _, f := range w.schema.Fields {
		refs = append(refs, ref{fieldRef("profile", f), f.Kind})
	}
	for _, f := range w.ctx {
		refs = append(refs, ref{fieldRef("context", f), f.Kind})
	}
	if depth < 2 && c.n(6) == 0 {
		a, b := w.rule(c, depth+1), w.rule(c, depth+1)
		return "(" + a + ") " + c.pick("&&", "||", "and", "or") + " (" + b + ")"
	}
	if c.n(8) == 0 {
		return fmt.Sprintf(`%s(%q, %q, %q) %s %d`, c.pick("impressions", "clicks", "accepts", "rejects"),
			"action", "a0", c.pick("1h", "1d", "7d", "30d"), c.pick("==", ">", ">=", "<"), c.n(3))
	}
	r := refs[c.n(len(refs))]
	num := c.pick("0", "1", "-2.5", "42", "1e300")
	switch r.kind {
	case KindNumber:
		op := c.pick("<", "<=", ">", ">=", "==", "!=")
		switch c.n(7) {
		case 0:
			return num + " " + op + " " + r.src // not flat
		case 1:
			return "!(" + r.src + " " + op + " " + num + ")" // not flat
		case 2:
			return r.src + " + 1 " + op + " " + num
		case 3:
			return r.src + " in [" + num + ", 1]"
		case 4:
			return r.src + " " + op + " " + r.src
		}
		return r.src + " " + op + " " + num
	case KindTime:
		return fmt.Sprintf("%s(%s) %s %s", c.pick("days_since", "days_until", "days_to_birthday"), r.src, c.pick("<", ">=", "==", "!="), num)
	case KindBool:
		return c.pick("", "!", "!!", "not ") + r.src + c.pick("", "", " == true", " != false", " && true", " || false")
	}
	lit := c.pick(`"x"`, `"y"`, `""`, `"checkout"`)
	switch c.n(8) {
	case 0:
		return lit + " == " + r.src // not flat
	case 1:
		return r.src + " in [" + lit + `, "y"]`
	case 2:
		return "!(" + r.src + " in [" + lit + "])"
	case 3:
		return r.src + " not in [" + lit + "]"
	case 4:
		return "(" + r.src + " == " + lit + ") ? true : false" // not flat
	case 5:
		return r.src + " != " + lit
	}
	return r.src + " == " + lit
}

func newRuleWorld(c *choices) *ruleWorld {
	w := &ruleWorld{}
	for i := range 1 + c.n(4) {
		w.schema.Fields = append(w.schema.Fields, Field{fmt.Sprintf("p%d", i), fuzzKinds[c.n(4)]})
	}
	var b strings.Builder
	b.WriteString("context: {")
	nctx := c.n(5)
	for i := range nctx {
		k := fuzzKinds[c.n(4)]
		name := fmt.Sprintf("c%d", i)
		w.ctx = append(w.ctx, Field{name, k})
		if i > 0 {
			b.WriteString(", ")
		}
		kn := k.String()
		if k == KindCategory && c.n(2) == 0 {
			kn = "string"
		}
		fmt.Fprintf(&b, "%s: %s", name, kn)
	}
	b.WriteString("}\nactions:\n")
	for i := range 1 + c.n(6) {
		fmt.Fprintf(&b, "  - id: a%d\n    channels: [web]\n", i)
		if c.n(4) == 0 { // a pinned tier decided by a rule
			r := w.rule(c, 0)
			w.rules = append(w.rules, r)
			fmt.Fprintf(&b, "    tier: %d\n    pin_when: %q\n", 1+c.n(3), r)
		}
		b.WriteString("    rules:\n")
		for _, stage := range []string{"eligible", "applicable", "suitable"} {
			if c.n(2) == 0 {
				continue
			}
			var rs []string
			for range 1 + c.n(2) {
				r := w.rule(c, 0)
				rs = append(rs, fmt.Sprintf("%q", r))
				w.rules = append(w.rules, r)
			}
			fmt.Fprintf(&b, "      %s: [%s]\n", stage, strings.Join(rs, ", "))
		}
	}
	w.catalog = b.String()
	return w
}

// value returns a random value of a field: missing, NaN or one of a few
// that the rules' constants hit and miss.
func fuzzValue(c *choices, k Kind) (num float64, str string, present bool) {
	switch c.n(4) {
	case 0:
		return math.NaN(), "", false
	case 1:
		return math.NaN(), "", true
	}
	switch k {
	case KindCategory:
		s := c.pick("x", "y", "checkout", "")
		return float64(len(s)), s, true
	case KindBool:
		return float64(c.n(2)), "", true
	case KindTime:
		return float64(monday.Unix() + int64(c.n(5)-2)*86400*180), "", true
	}
	return []float64{0, 1, -2.5, 42, 1e300, math.Inf(-1)}[c.n(6)], "", true
}

// FuzzFlatRulesAgree builds random catalogs the loader accepts (profile and
// context fields of every kind, history counts, rules in every flat form
// and in forms that are not flat) and random requests (context values
// missing, NaN or set; known, unknown and anonymous customers). No decision
// may panic, the flat form of every rule must decide as its closure, and an
// engine without flat forms must decide the same.
func FuzzFlatRulesAgree(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00\x01\x01\x00\x02\x01\x01\x05\x01\x01\x00\x03\x06\x07"))
	f.Add([]byte{0, 1, 1, 1, 3, 1, 0, 2, 0, 1, 1, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte("the fuzzer mutates these choices: schema, context, rules, values"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		c := &choices{b: data}
		w := newRuleWorld(c)
		opts := Options{Schema: w.schema}
		cat, err := CompileCatalog("fuzz.yaml", []byte(w.catalog), opts)
		if err != nil {
			t.Fatalf("generated catalog refused: %v\n%s", err, w.catalog)
		}
		noFlat := *cat
		noFlat.flat = make([]flatRule, len(cat.flat))

		prof := newMemProfiles(w.schema)
		vals := map[string]any{}
		for _, fl := range w.schema.Fields {
			num, str, ok := fuzzValue(c, fl.Kind)
			switch {
			case !ok:
			case fl.Kind == KindCategory:
				vals[fl.Name] = str
			default:
				vals[fl.Name] = num
			}
		}
		prof.set("c", vals)
		hist := newMemHistory()
		for range c.n(4) {
			hist.add("c", contact{action: "a0", channel: "web", outcome: Outcome(1 + c.n(4)), at: monday.Add(-time.Duration(c.n(48)) * time.Hour)})
		}
		var ctx []ContextValue
		for _, fl := range w.ctx {
			if num, str, ok := fuzzValue(c, fl.Kind); ok {
				ctx = append(ctx, ContextValue{Key: fl.Name, Num: num, Str: str})
			}
		}
		if c.n(4) == 0 {
			ctx = append(ctx, ContextValue{Key: "undeclared", Str: "x"})
		}
		e := mustEngine(t, cat, prof, hist, nil)
		ref := mustEngine(t, &noFlat, prof, hist, nil)
		for _, customer := range []string{"c", "unknown", ""} {
			req := &Request{Customer: customer, Channel: "web", Limit: 6, Context: ctx, Now: monday, Explain: true}
			var d, want Decision
			if err := e.Decide(req, &d); err != nil {
				t.Fatal(err)
			}
			if err := ref.Decide(req, &want); err != nil {
				t.Fatal(err)
			}
			if got, want := explained(&d), explained(&want); got != want {
				t.Fatalf("customer %q: flat forms decide\n%s\nclosures decide\n%s\ncatalog:\n%s", customer, got, want, w.catalog)
			}
			// Each rule on its own, whatever the stage order let run.
			s := e.pool.Get().(*scratch)
			s.prepare(cat)
			e.load(context.Background(), s, cat, req, monday, nil)
			for i, fr := range cat.flat {
				if fr.op == flatNone {
					continue
				}
				if got, want := fr.eval(&s.ec), cat.rules[i](&s.ec); got != want {
					t.Fatalf("customer %q: rule %q: flat %v, closure %v\ncatalog:\n%s", customer, cat.ruleText[i], got, want, w.catalog)
				}
			}
			e.pool.Put(s)
		}
	})
}

// explained prints a decision's chosen actions and every candidate's stage
// and reason.
func explained(d *Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %s\n", chosenIDs(d), d.Reason)
	for _, c := range d.Explain {
		fmt.Fprintf(&b, "  %s %v %s\n", c.Action, c.Stage, c.Reason)
	}
	return b.String()
}

// TestFlatFormsCoverEveryFlatOp: the generator of FuzzFlatRulesAgree
// reaches every flat form, on both sides, so the property covers them.
func TestFlatFormsCoverEveryFlatOp(t *testing.T) {
	seen := map[[2]int]bool{}
	for i := range 3000 {
		data := make([]byte, 64)
		for j := range data {
			data[j] = byte((i*131 + j*j*7 + i*j) % 251)
		}
		w := newRuleWorld(&choices{b: data})
		cat, err := CompileCatalog("gen.yaml", []byte(w.catalog), Options{Schema: w.schema})
		if err != nil {
			t.Fatalf("generated catalog refused: %v\n%s", err, w.catalog)
		}
		for _, fr := range cat.flat {
			seen[[2]int{int(fr.op), map[bool]int{false: 0, true: 1}[fr.ctx]}] = true
		}
	}
	for op := flatNone; op <= flatStrNotIn; op++ {
		for _, ctx := range []int{0, 1} {
			if op != flatNone && !seen[[2]int{int(op), ctx}] {
				t.Errorf("flat op %d (context %v) never generated", op, ctx == 1)
			}
		}
	}
	if !seen[[2]int{int(flatNone), 0}] {
		t.Error("no rule without a flat form generated")
	}
}
