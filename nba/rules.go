package nba

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
)

// The rule language is expr (github.com/expr-lang/expr): its parser and type
// checker read a rule against a typed environment, so syntax and type errors
// read like expr's; the checked tree is then compiled into Go closures over
// pre-resolved slots, so evaluating a rule neither allocates nor looks
// anything up by name. The supported subset:
//
//	profile.<field>, context.<field>      fields of the schema / declared context
//	numbers, strings, true, false         literals
//	+ - * / and unary -                   arithmetic on numbers
//	== != < <= > >=                       numbers; == and != also on strings and bools
//	and or not (&& || !)                  booleans, short-circuit
//	x in [...]  x not in [...]            constant lists of numbers or strings
//	c ? a : b                             ternary
//	impressions|clicks|accepts|rejects("action"|"group"|"channel", "key", "7d")
//	days_since(t) days_until(t) days_to_birthday(t)   t a time field
//	hour() weekday()                      in the customer's time zone (0 = Sunday)
//
// Everything else (builtins, maps, closures, member calls, let) is rejected at
// load. A missing number (NaN) makes every comparison but != false.

// evalCtx is what compiled rules read. One lives in each pooled scratch.
type evalCtx struct {
	num, cnum []float64 // profile and context numeric slots
	str, cstr []string  // profile and context string slots
	now       int64     // unix seconds
	nowT      time.Time
	tzOff     int64 // customer's offset from UTC, seconds

	hist    CustomerHistory // nil: no contacts
	resv    ReservedHistory // hist when it holds reservations of exact caps, else nil
	queries []histQuery
	counts  []int32 // memo per query; -1 = not yet counted
}

// count returns the memoised history count of query q.
func (c *evalCtx) count(q int) int32 {
	if n := c.counts[q]; n >= 0 {
		return n
	}
	var n int32
	if c.hist != nil {
		h := &c.queries[q]
		n = int32(c.hist.Count(h.scope, h.key, h.outcome, h.window, c.nowT))
	}
	c.counts[q] = n
	return n
}

// histQuery is one distinct contact-history count a catalog needs.
type histQuery struct {
	scope   Scope
	key     string
	outcome Outcome
	window  time.Duration
}

type (
	numFn  func(*evalCtx) float64
	boolFn func(*evalCtx) bool
	strFn  func(*evalCtx) string
)

// kind of a compiled sub-expression.
type vkind uint8

const (
	vNum vkind = iota + 1
	vBool
	vStr
	vTime
)

func (k vkind) String() string {
	return [...]string{"", "number", "bool", "string", "time"}[k]
}

type compiled struct {
	kind vkind
	num  numFn // vNum, vTime
	b    boolFn
	s    strFn
	// constant string value when the node is a literal (for fast compares)
	isConst bool
	cs      string
	cn      float64
	// field is set when the node reads a profile or context field; flat
	// when the whole node is a flatRule.
	field *flatRule
	flat  flatRule
}

// flatRule is a rule simple enough to decide without calling closures: a
// profile or context field against constants, the form most eligibility
// and suitability rules take. scratch.rule evaluates it inline (one switch
// instead of two or three indirect calls); any other rule runs its closure.
// Both give the same answer, NaN included (TestFlatRulesMatchClosures).
type flatRule struct {
	op   flatOp
	ctx  bool     // the field is in the context, else in the profile
	i    int32    // its slot
	k    float64  // the constant of a comparison
	strs []string // the constants of a string field's ==, != or in
}

type flatOp uint8

const (
	flatNone     flatOp = iota // not flat: run the closure
	flatLT                     // x < k
	flatLE                     // x <= k
	flatGT                     // x > k
	flatGE                     // x >= k
	flatEQ                     // x == k
	flatNE                     // !(x == k)
	flatTrue                   // a bool field: x == 1
	flatFalse                  // !(x == 1)
	flatStrIn                  // a string field is one of strs
	flatStrNotIn               // it is none of strs
)

// eval decides the rule (op != flatNone). It picks the slice the field
// lives in before indexing: a context slot may lie beyond the profile's
// length and the other way round.
func (f *flatRule) eval(c *evalCtx) bool {
	if f.op >= flatStrIn {
		strs := c.str
		if f.ctx {
			strs = c.cstr
		}
		return slices.Contains(f.strs, strs[f.i]) == (f.op == flatStrIn)
	}
	nums := c.num
	if f.ctx {
		nums = c.cnum
	}
	x := nums[f.i]
	switch f.op {
	case flatLT:
		return x < f.k
	case flatLE:
		return x <= f.k
	case flatGT:
		return x > f.k
	case flatGE:
		return x >= f.k
	case flatEQ:
		return x == f.k
	case flatNE:
		return !(x == f.k)
	case flatTrue:
		return x == 1
	}
	return !(x == 1) // flatFalse
}

// exprEnv resolves names while compiling rules of one catalog.
type exprEnv struct {
	profile map[string]slot
	context map[string]slot
	cfg     *conf.Config
	// query interns a history query and returns its index; it validates the
	// key against the catalog.
	query func(histQuery) (int, error)
}

type slot struct {
	i    int
	kind Kind
}

var timeType = reflect.TypeOf(time.Time{})

func kindType(k Kind) types.Type {
	switch k {
	case KindNumber:
		return types.Float64
	case KindCategory:
		return types.String
	case KindTime:
		return types.TypeOf(time.Time{})
	case KindBool:
		return types.Bool
	}
	return types.Any
}

func newExprEnv(schema Schema, ctx []Field, query func(histQuery) (int, error)) *exprEnv {
	e := &exprEnv{profile: map[string]slot{}, context: map[string]slot{}, query: query}
	pm, cm := types.Map{}, types.Map{}
	for i, f := range schema.Fields {
		e.profile[f.Name] = slot{i, f.Kind}
		pm[f.Name] = kindType(f.Kind)
	}
	for i, f := range ctx {
		e.context[f.Name] = slot{i, f.Kind}
		cm[f.Name] = kindType(f.Kind)
	}
	cfg := conf.CreateNew()
	cfg.WithEnv(types.Map{"profile": pm, "context": cm})
	cfg.Builtins = map[string]*builtin.Function{}
	cfg.MaxNodes = 1000
	stub := func(...any) (any, error) { return nil, nil }
	hist := reflect.TypeOf(func(string, string, string) float64 { return 0 })
	tfn := reflect.TypeOf(func(time.Time) float64 { return 0 })
	nfn := reflect.TypeOf(func() float64 { return 0 })
	for name, t := range map[string]reflect.Type{
		"impressions": hist, "clicks": hist, "accepts": hist, "rejects": hist,
		"days_since": tfn, "days_until": tfn, "days_to_birthday": tfn,
		"hour": nfn, "weekday": nfn,
	} {
		cfg.Functions[name] = &builtin.Function{Name: name, Func: stub, Types: []reflect.Type{t}}
	}
	e.cfg = cfg
	return e
}

// compileExpr parses, type-checks and compiles one expression.
func (e *exprEnv) compileExpr(src string) (compiled, error) {
	if strings.TrimSpace(src) == "" {
		return compiled{}, errors.New("empty expression")
	}
	tree, err := parser.ParseWithConfig(src, e.cfg)
	if err != nil {
		return compiled{}, exprError(err)
	}
	if err := e.unknownField(&tree.Node); err != nil {
		return compiled{}, err
	}
	if _, err := checker.Check(tree, e.cfg); err != nil {
		return compiled{}, exprError(err)
	}
	return e.node(tree.Node)
}

// unknownField reports the first profile.<field> or context.<field> the
// schema does not have, with the closest known name; the type checker would
// say only "unknown field".
func (e *exprEnv) unknownField(root *ast.Node) error {
	var v fieldVisitor
	v.e = e
	ast.Walk(root, &v)
	return v.err
}

type fieldVisitor struct {
	e   *exprEnv
	err error
}

func (v *fieldVisitor) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok || v.err != nil {
		return
	}
	id, ok1 := m.Node.(*ast.IdentifierNode)
	prop, ok2 := m.Property.(*ast.StringNode)
	if !ok1 || !ok2 {
		return
	}
	var fields map[string]slot
	switch id.Value {
	case "profile":
		fields = v.e.profile
	case "context":
		fields = v.e.context
	default:
		return
	}
	if _, ok := fields[prop.Value]; !ok {
		v.err = posErr(m, "unknown field %q%s", prop.Value, didYouMean(prop.Value, slices.Sorted(maps.Keys(fields))))
	}
}

// compileBool compiles a rule that must yield a boolean, with its flat form
// when it has one (op flatNone otherwise).
func (e *exprEnv) compileBool(src string) (boolFn, flatRule, error) {
	c, err := e.compileExpr(src)
	if err != nil {
		return nil, flatRule{}, err
	}
	if c.kind != vBool {
		return nil, flatRule{}, fmt.Errorf("rule must be a boolean expression, got %s", c.kind)
	}
	return c.b, c.flat, nil
}

// compileNum compiles an expression that must yield a number.
func (e *exprEnv) compileNum(src string) (numFn, error) {
	c, err := e.compileExpr(src)
	if err != nil {
		return nil, err
	}
	if c.kind != vNum {
		return nil, fmt.Errorf("expression must be a number, got %s", c.kind)
	}
	return c.num, nil
}

// ruleError is a problem at a column of an expression's text; the catalog
// loader turns the column into one of the file where it can.
type ruleError struct {
	msg string
	col int // 1-based
}

func (e *ruleError) Error() string { return fmt.Sprintf("%s (column %d)", e.msg, e.col) }

// exprError shortens expr's error to one line with its column.
func exprError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &ruleError{msg: fe.Message, col: fe.Column + 1}
	}
	return err
}

func posErr(n ast.Node, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if loc := n.Location(); loc.From > 0 || loc.To > 0 {
		return &ruleError{msg: msg, col: loc.From + 1}
	}
	return errors.New(msg)
}

func numConst(v float64) compiled {
	return compiled{kind: vNum, num: func(*evalCtx) float64 { return v }, isConst: true, cn: v}
}

func (e *exprEnv) node(n ast.Node) (compiled, error) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return numConst(float64(n.Value)), nil
	case *ast.FloatNode:
		return numConst(n.Value), nil
	case *ast.BoolNode:
		v := n.Value
		return compiled{kind: vBool, b: func(*evalCtx) bool { return v }}, nil
	case *ast.StringNode:
		v := n.Value
		return compiled{kind: vStr, s: func(*evalCtx) string { return v }, isConst: true, cs: v}, nil
	case *ast.MemberNode:
		return e.member(n)
	case *ast.ChainNode:
		return compiled{}, posErr(n, "optional chaining is not supported")
	case *ast.UnaryNode:
		return e.unary(n)
	case *ast.BinaryNode:
		return e.binary(n)
	case *ast.ConditionalNode:
		return e.conditional(n)
	case *ast.CallNode:
		return e.call(n)
	case *ast.IdentifierNode:
		return compiled{}, posErr(n, "%s must be followed by a field (profile.x or context.x)", n.Value)
	}
	return compiled{}, posErr(n, "%s is not supported in rules", nodeName(n))
}

func nodeName(n ast.Node) string {
	switch n := n.(type) {
	case *ast.BuiltinNode:
		return "function " + n.Name
	case *ast.ArrayNode:
		return "an array outside \"in\""
	case *ast.MapNode:
		return "a map"
	case *ast.PredicateNode, *ast.PointerNode:
		return "a predicate"
	case *ast.VariableDeclaratorNode:
		return "let"
	case *ast.SequenceNode:
		return "a sequence"
	case *ast.SliceNode:
		return "slicing"
	case *ast.NilNode:
		return "nil"
	}
	return strings.TrimPrefix(reflect.TypeOf(n).String(), "*ast.")
}

func (e *exprEnv) member(n *ast.MemberNode) (compiled, error) {
	id, ok1 := n.Node.(*ast.IdentifierNode)
	prop, ok2 := n.Property.(*ast.StringNode)
	if !ok1 || !ok2 || n.Method || n.Optional {
		return compiled{}, posErr(n, "only profile.<field> and context.<field> are supported")
	}
	var s slot
	var ok, isCtx bool
	switch id.Value {
	case "profile":
		s, ok = e.profile[prop.Value]
	case "context":
		s, ok = e.context[prop.Value]
		isCtx = true
	}
	if !ok {
		return compiled{}, posErr(n, "unknown field %s.%s", id.Value, prop.Value)
	}
	i := s.i
	field := &flatRule{ctx: isCtx, i: int32(i)}
	switch s.kind {
	case KindNumber, KindTime:
		k := vNum
		if s.kind == KindTime {
			k = vTime
		}
		if isCtx {
			return compiled{kind: k, num: func(c *evalCtx) float64 { return c.cnum[i] }, field: field}, nil
		}
		return compiled{kind: k, num: func(c *evalCtx) float64 { return c.num[i] }, field: field}, nil
	case KindBool:
		flat := *field
		flat.op = flatTrue
		if isCtx {
			return compiled{kind: vBool, b: func(c *evalCtx) bool { return c.cnum[i] == 1 }, flat: flat}, nil
		}
		return compiled{kind: vBool, b: func(c *evalCtx) bool { return c.num[i] == 1 }, flat: flat}, nil
	default:
		if isCtx {
			return compiled{kind: vStr, s: func(c *evalCtx) string { return c.cstr[i] }, field: field}, nil
		}
		return compiled{kind: vStr, s: func(c *evalCtx) string { return c.str[i] }, field: field}, nil
	}
}

// flatOf returns the flat form of field op constants (op flatNone when
// field is nil: the operand is not a plain field).
func flatOf(field *flatRule, op flatOp, k float64, strs []string) flatRule {
	if field == nil {
		return flatRule{}
	}
	return flatRule{op: op, ctx: field.ctx, i: field.i, k: k, strs: strs}
}

func (e *exprEnv) unary(n *ast.UnaryNode) (compiled, error) {
	x, err := e.node(n.Node)
	if err != nil {
		return compiled{}, err
	}
	switch n.Operator {
	case "!", "not":
		if x.kind != vBool {
			return compiled{}, posErr(n, "invalid operation: %s (mismatched type %s)", n.Operator, x.kind)
		}
		f := x.b
		out := compiled{kind: vBool, b: func(c *evalCtx) bool { return !f(c) }}
		// Negations that stay exact (a comparison's would not: !(x < k)
		// is not x >= k for NaN).
		if neg, ok := map[flatOp]flatOp{flatTrue: flatFalse, flatFalse: flatTrue, flatStrIn: flatStrNotIn, flatStrNotIn: flatStrIn}[x.flat.op]; ok {
			out.flat = x.flat
			out.flat.op = neg
		}
		return out, nil
	case "-", "+":
		if x.kind != vNum {
			return compiled{}, posErr(n, "invalid operation: %s (mismatched type %s)", n.Operator, x.kind)
		}
		if n.Operator == "+" {
			return x, nil
		}
		if x.isConst {
			return numConst(-x.cn), nil
		}
		f := x.num
		return compiled{kind: vNum, num: func(c *evalCtx) float64 { return -f(c) }}, nil
	}
	return compiled{}, posErr(n, "operator %s is not supported", n.Operator)
}

func (e *exprEnv) binary(n *ast.BinaryNode) (compiled, error) {
	switch n.Operator {
	case "in":
		return e.in(n)
	case "??", "..", "matches", "contains", "startsWith", "endsWith", "**", "^", "%":
		return compiled{}, posErr(n, "operator %s is not supported in rules", n.Operator)
	}
	l, err := e.node(n.Left)
	if err != nil {
		return compiled{}, err
	}
	r, err := e.node(n.Right)
	if err != nil {
		return compiled{}, err
	}
	bad := func() (compiled, error) {
		return compiled{}, posErr(n, "invalid operation: %s (mismatched types %s and %s)", n.Operator, l.kind, r.kind)
	}
	switch n.Operator {
	case "and", "&&", "or", "||":
		if l.kind != vBool || r.kind != vBool {
			return bad()
		}
		a, b := l.b, r.b
		if n.Operator == "and" || n.Operator == "&&" {
			return compiled{kind: vBool, b: func(c *evalCtx) bool { return a(c) && b(c) }}, nil
		}
		return compiled{kind: vBool, b: func(c *evalCtx) bool { return a(c) || b(c) }}, nil
	case "+", "-", "*", "/":
		if l.kind != vNum || r.kind != vNum {
			return bad()
		}
		a, b := l.num, r.num
		if l.isConst && r.isConst {
			return numConst(arith(n.Operator, l.cn, r.cn)), nil
		}
		var f numFn
		switch n.Operator {
		case "+":
			f = func(c *evalCtx) float64 { return a(c) + b(c) }
		case "-":
			f = func(c *evalCtx) float64 { return a(c) - b(c) }
		case "*":
			f = func(c *evalCtx) float64 { return a(c) * b(c) }
		default:
			f = func(c *evalCtx) float64 { return a(c) / b(c) }
		}
		return compiled{kind: vNum, num: f}, nil
	case "==", "!=":
		neg := n.Operator == "!="
		var f boolFn
		var flat flatRule
		switch {
		case l.kind == vNum && r.kind == vNum:
			a, b := l.num, r.num
			if r.isConst {
				k := r.cn
				f = func(c *evalCtx) bool { return a(c) == k }
				flat = flatOf(l.field, map[bool]flatOp{false: flatEQ, true: flatNE}[neg], k, nil)
			} else {
				f = func(c *evalCtx) bool { return a(c) == b(c) }
			}
		case l.kind == vStr && r.kind == vStr:
			a, b := l.s, r.s
			switch {
			case r.isConst:
				k := r.cs
				f = func(c *evalCtx) bool { return a(c) == k }
				flat = flatOf(l.field, map[bool]flatOp{false: flatStrIn, true: flatStrNotIn}[neg], 0, []string{k})
			case l.isConst:
				k := l.cs
				f = func(c *evalCtx) bool { return b(c) == k }
			default:
				f = func(c *evalCtx) bool { return a(c) == b(c) }
			}
		case l.kind == vBool && r.kind == vBool:
			a, b := l.b, r.b
			f = func(c *evalCtx) bool { return a(c) == b(c) }
		default:
			return bad()
		}
		if neg {
			g := f
			f = func(c *evalCtx) bool { return !g(c) }
		}
		return compiled{kind: vBool, b: f, flat: flat}, nil
	case "<", "<=", ">", ">=":
		if l.kind != vNum || r.kind != vNum {
			return bad()
		}
		a, b := l.num, r.num
		var f boolFn
		if r.isConst {
			k := r.cn
			var op flatOp
			switch n.Operator {
			case "<":
				f, op = func(c *evalCtx) bool { return a(c) < k }, flatLT
			case "<=":
				f, op = func(c *evalCtx) bool { return a(c) <= k }, flatLE
			case ">":
				f, op = func(c *evalCtx) bool { return a(c) > k }, flatGT
			default:
				f, op = func(c *evalCtx) bool { return a(c) >= k }, flatGE
			}
			return compiled{kind: vBool, b: f, flat: flatOf(l.field, op, k, nil)}, nil
		}
		switch n.Operator {
		case "<":
			f = func(c *evalCtx) bool { return a(c) < b(c) }
		case "<=":
			f = func(c *evalCtx) bool { return a(c) <= b(c) }
		case ">":
			f = func(c *evalCtx) bool { return a(c) > b(c) }
		default:
			f = func(c *evalCtx) bool { return a(c) >= b(c) }
		}
		return compiled{kind: vBool, b: f}, nil
	}
	return compiled{}, posErr(n, "operator %s is not supported in rules", n.Operator)
}

func arith(op string, a, b float64) float64 {
	switch op {
	case "+":
		return a + b
	case "-":
		return a - b
	case "*":
		return a * b
	}
	return a / b
}

func (e *exprEnv) in(n *ast.BinaryNode) (compiled, error) {
	arr, ok := n.Right.(*ast.ArrayNode)
	if !ok {
		return compiled{}, posErr(n, "the right side of \"in\" must be a constant list like [\"a\", \"b\"]")
	}
	l, err := e.node(n.Left)
	if err != nil {
		return compiled{}, err
	}
	var nums []float64
	var strs []string
	for _, el := range arr.Nodes {
		v, err := e.node(el)
		if err != nil {
			return compiled{}, err
		}
		if !v.isConst || v.kind != l.kind {
			return compiled{}, posErr(el, "\"in\" needs a list of %s constants", l.kind)
		}
		if v.kind == vNum {
			nums = append(nums, v.cn)
		} else {
			strs = append(strs, v.cs)
		}
	}
	switch l.kind {
	case vNum:
		a := l.num
		return compiled{kind: vBool, b: func(c *evalCtx) bool {
			x := a(c)
			for _, v := range nums {
				if x == v {
					return true
				}
			}
			return false
		}}, nil
	case vStr:
		a := l.s
		return compiled{kind: vBool, b: func(c *evalCtx) bool {
			x := a(c)
			for _, v := range strs {
				if x == v {
					return true
				}
			}
			return false
		}, flat: flatOf(l.field, flatStrIn, 0, strs)}, nil
	}
	return compiled{}, posErr(n, "\"in\" is not supported on %s", l.kind)
}

func (e *exprEnv) conditional(n *ast.ConditionalNode) (compiled, error) {
	cond, err := e.node(n.Cond)
	if err != nil {
		return compiled{}, err
	}
	a, err := e.node(n.Exp1)
	if err != nil {
		return compiled{}, err
	}
	b, err := e.node(n.Exp2)
	if err != nil {
		return compiled{}, err
	}
	if cond.kind != vBool {
		return compiled{}, posErr(n, "non-bool condition (%s) in ternary", cond.kind)
	}
	if a.kind != b.kind {
		return compiled{}, posErr(n, "ternary branches have different types %s and %s", a.kind, b.kind)
	}
	p := cond.b
	switch a.kind {
	case vNum, vTime:
		x, y := a.num, b.num
		return compiled{kind: a.kind, num: func(c *evalCtx) float64 {
			if p(c) {
				return x(c)
			}
			return y(c)
		}}, nil
	case vBool:
		x, y := a.b, b.b
		return compiled{kind: vBool, b: func(c *evalCtx) bool {
			if p(c) {
				return x(c)
			}
			return y(c)
		}}, nil
	default:
		x, y := a.s, b.s
		return compiled{kind: vStr, s: func(c *evalCtx) string {
			if p(c) {
				return x(c)
			}
			return y(c)
		}}, nil
	}
}

func (e *exprEnv) call(n *ast.CallNode) (compiled, error) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok {
		return compiled{}, posErr(n, "only the rule helpers can be called")
	}
	switch id.Value {
	case "impressions", "clicks", "accepts", "rejects":
		return e.histCall(id.Value, n)
	case "hour", "weekday":
		if len(n.Arguments) != 0 {
			return compiled{}, posErr(n, "%s takes no arguments", id.Value)
		}
		if id.Value == "hour" {
			return compiled{kind: vNum, num: func(c *evalCtx) float64 {
				return float64(floorMod(c.now+c.tzOff, 86400) / 3600)
			}}, nil
		}
		// 1970-01-01 was a Thursday (4).
		return compiled{kind: vNum, num: func(c *evalCtx) float64 {
			return float64(floorMod(floorDiv(c.now+c.tzOff, 86400)+4, 7))
		}}, nil
	case "days_since", "days_until", "days_to_birthday":
		if len(n.Arguments) != 1 {
			return compiled{}, posErr(n, "%s takes one time argument", id.Value)
		}
		a, err := e.node(n.Arguments[0])
		if err != nil {
			return compiled{}, err
		}
		if a.kind != vTime {
			return compiled{}, posErr(n, "%s needs a time field, got %s", id.Value, a.kind)
		}
		t := a.num
		switch id.Value {
		case "days_since":
			return compiled{kind: vNum, num: func(c *evalCtx) float64 { return (float64(c.now) - t(c)) / 86400 }}, nil
		case "days_until":
			return compiled{kind: vNum, num: func(c *evalCtx) float64 { return (t(c) - float64(c.now)) / 86400 }}, nil
		}
		return compiled{kind: vNum, num: func(c *evalCtx) float64 {
			v := t(c)
			if math.IsNaN(v) {
				return v
			}
			return float64(daysToBirthday(int64(v), c.now+c.tzOff))
		}}, nil
	}
	return compiled{}, posErr(n, "unknown function %s", id.Value)
}

func (e *exprEnv) histCall(name string, n *ast.CallNode) (compiled, error) {
	var args [3]string
	if len(n.Arguments) != 3 {
		return compiled{}, posErr(n, "%s takes (scope, key, window)", name)
	}
	for i, a := range n.Arguments {
		s, ok := a.(*ast.StringNode)
		if !ok {
			return compiled{}, posErr(a, "%s: argument %d must be a constant string", name, i+1)
		}
		args[i] = s.Value
	}
	var q histQuery
	switch args[0] {
	case "action":
		q.scope = ScopeAction
	case "group":
		q.scope = ScopeGroup
	case "channel":
		q.scope = ScopeChannel
	default:
		return compiled{}, posErr(n, "%s: unknown scope %q (want action, group or channel)", name, args[0])
	}
	q.key = args[1]
	q.outcome, _ = parseOutcome(name)
	w, err := parseWindow(args[2])
	if err != nil {
		return compiled{}, posErr(n, "%s: %v", name, err)
	}
	q.window = w
	idx, err := e.query(q)
	if err != nil {
		return compiled{}, posErr(n, "%s: %v", name, err)
	}
	return compiled{kind: vNum, num: func(c *evalCtx) float64 { return float64(c.count(idx)) }}, nil
}

// parseWindow reads a duration with a day or week unit as well as Go's:
// "7d", "2w", "36h", "90m".
func parseWindow(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("missing window")
	}
	var d time.Duration
	switch last := s[len(s)-1]; last {
	case 'd', 'w':
		n, err := strconv.ParseFloat(s[:len(s)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid window %q", s)
		}
		unit := 24 * time.Hour
		if last == 'w' {
			unit *= 7
		}
		d = time.Duration(n * float64(unit))
	default:
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid window %q (want e.g. 7d, 2w, 36h)", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("window %q must be positive", s)
	}
	return d, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// daysToBirthday returns the whole days from the local day of now to the next
// anniversary (month and day) of birth; 0 on the day itself. 29 February
// falls on 1 March in other years.
func daysToBirthday(birth, now int64) int {
	b := time.Unix(birth, 0).UTC()
	n := time.Unix(now, 0).UTC()
	today := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, time.UTC)
	next := time.Date(n.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
	if next.Before(today) {
		next = time.Date(n.Year()+1, b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
	}
	return int(next.Sub(today).Hours()/24 + 0.5)
}
