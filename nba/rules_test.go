package nba

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
)

var ruleCtxFields = []Field{{"page", KindCategory}, {"basket", KindNumber}, {"logged_in", KindBool}}

// ruleFixture is one customer and request for evaluating rules both with the
// compiled closures and with expr's own VM.
type ruleFixture struct {
	prof    map[string]any // schema field -> float64 | string | bool | time.Time
	ctx     map[string]any
	counts  map[histQuery]int
	now     time.Time
	tzOffMn float64
}

func defaultFixture() ruleFixture {
	return ruleFixture{
		prof: map[string]any{
			"age": 42.0, "birth_date": time.Date(1984, 11, 25, 0, 0, 0, 0, time.UTC),
			"signup": time.Date(2026, 11, 13, 10, 0, 0, 0, time.UTC), "clv": 250.5,
			"in_arrears": false, "ticket_open": true, "segment": "gold", "tz_offset": 60.0,
			"orders_since_cart": math.NaN(), "aff_birthday": 0.1, "aff_welcome": 0.2, "aff_xsell": 0.3,
		},
		ctx:    map[string]any{"page": "cards", "basket": 80.0, "logged_in": true},
		counts: map[histQuery]int{{ScopeAction, "welcome_1", Impression, 7 * 24 * time.Hour}: 3, {ScopeChannel, "email", Click, 30 * 24 * time.Hour}: 1},
		now:    monday, tzOffMn: 60,
	}
}

type fixtureHistory struct{ counts map[histQuery]int }

func (h fixtureHistory) Count(s Scope, k string, o Outcome, w time.Duration, _ time.Time) int {
	return h.counts[histQuery{s, k, o, w}]
}
func (h fixtureHistory) Contacts(_ Scope, _ string, dst []ContactAt) ([]ContactAt, bool) {
	return dst, false
}

// compileFor compiles src with a query table that accepts any key.
func compileFor(src string) (compiled, []histQuery, error) {
	var qs []histQuery
	env := newExprEnv(testSchema, ruleCtxFields, func(q histQuery) (int, error) {
		for i, x := range qs {
			if x == q {
				return i, nil
			}
		}
		if strings.HasPrefix(q.key, "unknown") {
			return 0, errUnknownKey
		}
		qs = append(qs, q)
		return len(qs) - 1, nil
	})
	c, err := env.compileExpr(src)
	return c, qs, err
}

var errUnknownKey = &PathError{Msg: "unknown key"}

// eval runs a compiled expression on the fixture.
func (f ruleFixture) eval(c compiled, qs []histQuery) any {
	ec := f.evalCtx(qs)
	switch c.kind {
	case vBool:
		return c.b(ec)
	case vStr:
		return c.s(ec)
	}
	return c.num(ec)
}

// evalCtx returns the fixture as rules read it.
func (f ruleFixture) evalCtx(qs []histQuery) *evalCtx {
	ec := evalCtx{now: f.now.Unix(), nowT: f.now, tzOff: int64(f.tzOffMn) * 60,
		hist: fixtureHistory{f.counts}, queries: qs, counts: make([]int32, len(qs))}
	for i := range ec.counts {
		ec.counts[i] = -1
	}
	fill := func(fields []Field, vals map[string]any) ([]float64, []string) {
		num, str := make([]float64, len(fields)), make([]string, len(fields))
		for i, fl := range fields {
			num[i] = math.NaN()
			switch v := vals[fl.Name].(type) {
			case float64:
				num[i] = v
			case bool:
				num[i] = 0
				if v {
					num[i] = 1
				}
			case time.Time:
				num[i] = float64(v.Unix())
			case string:
				str[i] = v
			}
		}
		return num, str
	}
	ec.num, ec.str = fill(testSchema.Fields, f.prof)
	ec.cnum, ec.cstr = fill(ruleCtxFields, f.ctx)
	return &ec
}

// TestFlatRulesMatchClosures: rules of a flat form (a field against
// constants) get one, and it decides as the closures do on every value,
// NaN and missing strings included; other rules get none.
func TestFlatRulesMatchClosures(t *testing.T) {
	flat := []string{
		"profile.age >= 25", "profile.age > 25", "profile.age < 25", "profile.age <= 25",
		"profile.age == 42", "profile.age != 42", "context.basket > 50", "profile.clv <= 250.5",
		"profile.in_arrears", "!profile.in_arrears", "!!profile.ticket_open", "context.logged_in", "!context.logged_in",
		`profile.segment in ["gold", "silver"]`, `!(profile.segment in ["gold"])`, `profile.segment == "gold"`,
		`profile.segment != "gold"`, `context.page in ["cards", "loans"]`, `context.page == "home"`,
	}
	notFlat := []string{
		"profile.age >= profile.clv", "!(profile.age < 25)", "profile.age + 1 > 25", "25 < profile.age",
		`profile.in_arrears && profile.age > 3`, `impressions("action", "welcome_1", "7d") == 0`,
	}
	fixtures := []ruleFixture{}
	for _, age := range []any{25.0, 42.0, 18.0, math.NaN(), nil} {
		for _, seg := range []any{"gold", "silver", "bronze", nil} {
			for _, b := range []any{true, false, nil} {
				f := defaultFixture()
				f.prof["age"], f.prof["segment"], f.prof["in_arrears"], f.prof["ticket_open"] = age, seg, b, b
				f.prof["clv"] = age
				f.ctx["logged_in"], f.ctx["basket"], f.ctx["page"] = b, age, seg
				fixtures = append(fixtures, f)
				g := defaultFixture()
				g.prof, g.ctx, g.counts = f.prof, f.ctx, map[histQuery]int{} // no contacts
				fixtures = append(fixtures, g)
			}
		}
	}
	for _, src := range flat {
		c, qs, err := compileFor(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if c.flat.op == flatNone {
			t.Errorf("%s: no flat form", src)
			continue
		}
		for _, f := range fixtures {
			ec := f.evalCtx(qs)
			if got, want := c.flat.eval(ec), c.b(ec); got != want {
				t.Errorf("%s with profile %v, context %v: flat %v, closure %v", src, f.prof, f.ctx, got, want)
			}
		}
	}
	for _, src := range notFlat {
		c, _, err := compileFor(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if c.flat.op != flatNone {
			t.Errorf("%s: flat form %+v, want none", src, c.flat)
		}
	}
}

// vm evaluates src with expr's own compiler and VM, with the helpers
// implemented directly on the fixture.
func (f ruleFixture) vm(src string) (any, error) {
	env := map[string]any{"profile": f.prof, "context": f.ctx}
	hist := func(o Outcome) func(params ...any) (any, error) {
		return func(p ...any) (any, error) {
			s := map[string]Scope{"action": ScopeAction, "group": ScopeGroup, "channel": ScopeChannel}[p[0].(string)]
			w, _ := parseWindow(p[2].(string))
			return float64(f.counts[histQuery{s, p[1].(string), o, w}]), nil
		}
	}
	now := f.now.Unix()
	off := int64(f.tzOffMn) * 60
	days := func(sign float64) func(p ...any) (any, error) {
		return func(p ...any) (any, error) {
			return sign * (float64(now) - float64(p[0].(time.Time).Unix())) / 86400, nil
		}
	}
	prog, err := expr.Compile(src, expr.Env(env), expr.DisableAllBuiltins(),
		expr.Function("impressions", hist(Impression), new(func(string, string, string) float64)),
		expr.Function("clicks", hist(Click), new(func(string, string, string) float64)),
		expr.Function("accepts", hist(Accept), new(func(string, string, string) float64)),
		expr.Function("rejects", hist(Reject), new(func(string, string, string) float64)),
		expr.Function("days_since", days(1), new(func(time.Time) float64)),
		expr.Function("days_until", days(-1), new(func(time.Time) float64)),
		expr.Function("days_to_birthday", func(p ...any) (any, error) {
			return float64(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Sub(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)).Hours() / 24), nil
		}, new(func(time.Time) float64)),
		expr.Function("hour", func(...any) (any, error) { return float64(time.Unix(now+off, 0).UTC().Hour()), nil }, new(func() float64)),
		expr.Function("weekday", func(...any) (any, error) { return float64(time.Unix(now+off, 0).UTC().Weekday()), nil }, new(func() float64)),
	)
	if err != nil {
		return nil, err
	}
	return expr.Run(prog, env)
}

func TestRules(t *testing.T) {
	fx := defaultFixture()
	f := func(src string, want any) {
		t.Helper()
		c, qs, err := compileFor(src)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			return
		}
		if got := fx.eval(c, qs); got != want {
			t.Errorf("%s = %v, want %v", src, got, want)
		}
	}
	t.Run("comparisons", func(t *testing.T) {
		f("profile.age > 40", true)
		f("profile.age >= 42 && profile.age <= 42", true)
		f("profile.age < 18 or profile.clv > 1000", false)
		f("profile.age != 42", false)
		f("context.basket == 80", true)
	})
	t.Run("missing values compare false", func(t *testing.T) {
		f("profile.orders_since_cart > 0", false)
		f("profile.orders_since_cart <= 0", false)
		f("profile.orders_since_cart != 0", true)
		f("not (profile.orders_since_cart > 0)", true)
	})
	t.Run("arithmetic", func(t *testing.T) {
		f("profile.clv * 0.1 + 1", 26.05)
		f("(profile.age - 2) / 4", 10.0)
		f("-profile.age", -42.0)
		f("2 * 3 + 1", 7.0)
	})
	t.Run("booleans", func(t *testing.T) {
		f("profile.ticket_open", true)
		f("!profile.in_arrears", true)
		f("profile.ticket_open and not context.logged_in", false)
		f("profile.in_arrears == false", true)
	})
	t.Run("categories and in", func(t *testing.T) {
		f(`profile.segment == "gold"`, true)
		f(`"gold" == profile.segment`, true)
		f(`profile.segment in ["silver", "gold"]`, true)
		f(`profile.segment not in ["silver", "gold"]`, false)
		f(`context.page != "home"`, true)
		f(`profile.age in [18, 42]`, true)
	})
	t.Run("ternary", func(t *testing.T) {
		f(`profile.segment == "gold" ? profile.clv * 2 : profile.clv`, 501.0)
		f(`profile.age > 50 ? "old" : "young"`, "young")
	})
	t.Run("time helpers", func(t *testing.T) {
		f("days_since(profile.signup)", 10.0)
		f("days_until(profile.signup)", -10.0)
		f("days_to_birthday(profile.birth_date)", 2.0)
		f("hour()", 11.0)   // 10:00 UTC at UTC+1
		f("weekday()", 1.0) // Monday
	})
	t.Run("history helpers", func(t *testing.T) {
		f(`impressions("action", "welcome_1", "7d") >= 3`, true)
		f(`impressions("action", "welcome_1", "1w")`, 3.0)
		f(`clicks("channel", "email", "30d") == 0`, false)
		f(`rejects("group", "sales", "30d")`, 0.0)
	})
}

func TestRuleErrors(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		_, _, err := compileFor(src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", src, err, want)
		}
	}
	f("profile.tenure_dayz > 3", `unknown field "tenure_dayz" (column 9)`)
	f("profile.segmnt == 'a'", `unknown field "segmnt" (did you mean "segment"?)`)
	f("context.nope", `unknown field "nope"`)
	f("profile.age > ", "unexpected token")
	f(`profile.segment > "a"`, "mismatched types string and string")
	f(`profile.age + "a"`, "mismatched types")
	f("len(profile.segment) > 1", "function len is not supported")
	f("profile.signup > 3", "mismatched types")
	f("days_since(profile.age)", "cannot use float64 as argument (type time.Time) to call days_since")
	f(`impressions("cluster", "x", "7d")`, `unknown scope "cluster"`)
	f(`impressions("action", "x", "soon")`, `invalid window "soon"`)
	f(`impressions("action", "x", "-1d")`, `must be positive`)
	f(`impressions("action", profile.segment, "7d")`, "argument 2 must be a constant string")
	f(`impressions("action", "unknown_action", "7d")`, "unknown key")
	f(`profile.age in [1, profile.clv]`, `"in" needs a list of number constants`)
	f(`profile.age % 2 == 0`, "invalid operation: %")
	f(`profile.age ** 2 > 0`, "operator ** is not supported")
	f(`let x = 1; x > 0`, "not supported")
	f(`profile.age ?? 1`, "not supported")
	f(`profile`, "must be followed by a field")
	f(``, "empty expression")
}

// TestRulesMatchExprVM checks the compiled closures against expr's VM.
func TestRulesMatchExprVM(t *testing.T) {
	for _, src := range ruleSeeds {
		if msg := differ(src); msg != "" {
			t.Error(msg)
		}
	}
}

var ruleSeeds = []string{
	"profile.age > 40 && profile.clv < 300",
	"profile.clv * 0.1 + profile.age / 3 - 2",
	`profile.segment in ["gold", "x"] ? profile.clv : -1`,
	"profile.orders_since_cart > 0 or !profile.ticket_open",
	`impressions("action", "welcome_1", "7d") >= 3 and clicks("channel", "email", "30d") < 2`,
	"days_since(profile.signup) > 7",
	"hour() >= 9 && weekday() != 0",
	"context.basket / 0",
	"profile.orders_since_cart == profile.orders_since_cart",
	`context.page == "cards" == context.logged_in`,
}

// differ returns "" when src does not compile or both evaluations agree.
func differ(src string) string {
	c, qs, err := compileFor(src)
	if err != nil {
		return ""
	}
	fx := defaultFixture()
	got := fx.eval(c, qs)
	if c.flat.op != flatNone && c.flat.eval(fx.evalCtx(qs)) != got {
		return "its flat form decides otherwise: " + src
	}
	want, err := fx.vm(src)
	if err != nil {
		return "compiled but expr's VM fails: " + src + ": " + err.Error()
	}
	switch w := want.(type) {
	case int:
		want = float64(w)
	}
	if g, ok := got.(float64); ok {
		w, ok := want.(float64)
		if !ok {
			return "type differs: " + src
		}
		if math.Abs(w) > 1<<53 || math.Abs(g) > 1<<53 {
			return "" // integer overflow in the VM; we compute in float64
		}
		if g == w || (math.IsNaN(g) && math.IsNaN(w)) || math.Abs(g-w) <= 1e-9*math.Max(1, math.Abs(w)) {
			return ""
		}
	} else if got == want {
		return ""
	}
	return "differs from expr's VM: " + src
}

func FuzzCompileRule(f *testing.F) {
	for _, s := range ruleSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 512 {
			return
		}
		if msg := differ(src); msg != "" {
			t.Fatal(msg)
		}
	})
}

// BenchmarkRule compares a compiled rule with expr's own VM on the same
// rule and values (the VM needs an env map per evaluation).
func BenchmarkRule(b *testing.B) {
	const src = `profile.age >= 18 && profile.segment in ["gold", "platinum"] && !profile.in_arrears && context.basket * 0.1 > 5`
	fx := defaultFixture()
	c, qs, err := compileFor(src)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("compiled", func(b *testing.B) {
		ec := evalCtx{queries: qs}
		ec.num, ec.str = make([]float64, len(testSchema.Fields)), make([]string, len(testSchema.Fields))
		ec.cnum, ec.cstr = make([]float64, len(ruleCtxFields)), make([]string, len(ruleCtxFields))
		ec.num[0], ec.str[6], ec.num[4], ec.cnum[1] = 42, "gold", 0, 80
		b.ReportAllocs()
		for b.Loop() {
			if !c.b(&ec) {
				b.Fatal("false")
			}
		}
	})
	b.Run("expr_vm", func(b *testing.B) {
		env := map[string]any{"profile": fx.prof, "context": fx.ctx}
		prog, err := expr.Compile(src, expr.Env(env), expr.AsBool())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			v, err := expr.Run(prog, env)
			if err != nil || v != true {
				b.Fatal(v, err)
			}
		}
	})
}

// BenchmarkFlatRule compares, on rules of the flat forms the bench bundle's
// catalog uses, the closures with the flat evaluation scratch.rule takes
// (see bench/RESULTS.md: with warm caches the closures are as fast or
// faster; under load the flat form measured ahead).
func BenchmarkFlatRule(b *testing.B) {
	for name, src := range map[string]string{
		"compare": `profile.age >= 25`,
		"in":      `profile.segment in ["bronze", "gold"]`,
		"not":     `!profile.in_arrears`,
	} {
		c, qs, err := compileFor(src)
		if err != nil || c.flat.op == flatNone {
			b.Fatal(src, err)
		}
		ec := defaultFixture().evalCtx(qs)
		b.Run(name+"/closures", func(b *testing.B) {
			for b.Loop() {
				for i := range ec.counts {
					ec.counts[i] = -1
				}
				c.b(ec)
			}
		})
		b.Run(name+"/flat", func(b *testing.B) {
			for b.Loop() {
				for i := range ec.counts {
					ec.counts[i] = -1
				}
				c.flat.eval(ec)
			}
		})
	}
}

// TestRegressionContextRuleReadsProfileSlice: a flat rule over a context
// field used to index the profile slice first, so a context slot beyond the
// profile's length panicked (a one-field snapshot, a context of two fields
// and `context.page == "checkout"`: every decision answered 500).
func TestRegressionContextRuleReadsProfileSlice(t *testing.T) {
	const cat = `
context: {page: string, basket: number}
actions:
  - id: checkout_offer
    channels: [web]
    rules:
      applicable: ['context.page == "checkout"', 'context.page in ["checkout", "cart"]', 'context.basket > 10']
  - id: other
    channels: [web]
`
	opts := Options{Schema: Schema{Fields: []Field{{"clv", KindNumber}}}}
	prof := newMemProfiles(opts.Schema)
	prof.set("c", map[string]any{"clv": 1.0})
	e := mustEngine(t, mustCatalog(t, cat, opts), prof, nil, nil)
	for _, tt := range []struct {
		name string
		ctx  []ContextValue
		want string
	}{
		{"checkout", []ContextValue{{Key: "page", Str: "checkout"}, {Key: "basket", Num: 20}}, "checkout_offer,other"},
		{"home", []ContextValue{{Key: "page", Str: "home"}, {Key: "basket", Num: 20}}, "other"},
		{"missing", nil, "other"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, customer := range []string{"c", "unknown", ""} {
				var d Decision
				if err := e.Decide(&Request{Customer: customer, Channel: "web", Limit: 2, Context: tt.ctx, Now: monday}, &d); err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(chosenIDs(&d), ","); got != tt.want {
					t.Errorf("customer %q: got %q, want %q", customer, got, tt.want)
				}
			}
		})
	}
}
