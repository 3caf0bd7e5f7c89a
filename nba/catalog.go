package nba

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"

	"nba/model"
)

// DefaultChannels are the channels every catalog knows; a catalog's
// "channels:" list adds more.
var DefaultChannels = []string{"web", "app", "agent", "email", "sms", "push"}

// Limits of a catalog, checked at load.
const (
	// MaxChannels is the number of distinct channels (a bit mask per action).
	MaxChannels = 64
	// MaxActions bounds the actions of one catalog.
	MaxActions = 100_000
	// MaxTier is the largest manual priority tier.
	MaxTier = 99
)

// Options is what a catalog compiles against.
type Options struct {
	// Schema lists the profile fields rules and models may read. Required.
	Schema Schema
	// Models are the bundle's named models. An action's model must be here.
	Models map[string]Scorer
	// ModelVersions names the version of each model (e.g. its file hash)
	// for Decision.ModelVersion; optional.
	ModelVersions map[string]string
	// NoScorePlans scores tree ensembles row by row (model.PredictRows)
	// instead of through a model.Plan; the scores are the same, only slower.
	// It exists to compare the two.
	NoScorePlans bool
	// MaxWindow is the longest contact-history window the History counts
	// (the sidecar passes its state's, state.Model.MaxWindow). A cap,
	// suppression or history count that needs a longer one is refused at
	// load: it would be counted over less history than it says. 0 means no
	// limit.
	MaxWindow time.Duration
}

// MaxPlanBytes bounds the memory of one model's score plan: the masks of
// all its actions' variants (model.Plan.VariantBytes each). A model over it
// is scored row by row (Catalog.PlanFallbacks says so). 64 MiB is 10,000
// actions of a 200-tree depth-8 model.
const MaxPlanBytes = 64 << 20

// Scorer is what the engine needs of a model; every model.Model is one. It
// must be safe for concurrent use and Predict must not allocate.
type Scorer interface {
	// Features returns the input names in column order.
	Features() []string
	// NumOutputs must be 1 for a propensity model.
	NumOutputs() int
	// Predict writes the prediction for row (NaN = missing) into out[0].
	Predict(row, out []float64)
}

// Action is one compiled action. It is immutable and shared by every
// decision that reads it; callers must not modify it.
type Action struct {
	ID, Name string
	Group    string // id of the action's group; "" when none

	index      int
	tier       int
	pinRule    int32 // rule index, -1 = tier always applies
	chanMask   uint64
	placements []string
	start, end int64 // unix seconds; 0 = unbounded
	rules      [3][]int32
	value      numRef
	weight     numRef
	lever      float64
	model      int32 // index into Catalog.models; -1 = no model (propensity 1)
	feats      []featConst
	treatments [][]byte // by channel index; nil when none
	limits     []limit
	exclusion  int32 // exclusive group index, -1 = none
	holdout    float64
	holdSeed   uint64
	journey    int32          // journey this action is a step of; -1 = none
	variant    *model.Variant // the action's features in its model's plan; nil without one

	purpose     int32 // consent purpose index (consent.go)
	purposeName string
}

// Treatment returns the action's pre-encoded JSON payload for a channel, nil
// when it has none.
func (a *Action) Treatment(channel int) []byte {
	if channel < 0 || channel >= len(a.treatments) {
		return nil
	}
	return a.treatments[channel]
}

type numRef struct {
	c    float64
	expr int32 // index into Catalog.nums; -1 = the constant c
}

type featConst struct {
	pos int32
	v   float64
}

// limit removes a candidate when count(q) >= max and, for a suppression
// decided from the contact sequence (sup not nil), the customer's contacts
// put it in a pause (suppression.paused); count(q) >= max is then only the
// cheap necessary condition.
type limit struct {
	q, max int32
	sup    *suppression
	desc   string
	supp   bool   // a suppression (sup may be nil: one outcome pauses), else a cap; for explanations
	exact  bool   // an exact cap: live reservations count too (caps.go)
	from   string // a suppression's group, when the action has it from its group's suppress:
}

type group struct {
	id        string
	parent    int
	file      *groupFile
	path      string
	exclusive int32
}

type boundModel struct {
	name    string
	m       Scorer
	mm      model.Model // m when it is one: scored in batches by model.PredictRows
	nf      int
	prof    []bind
	ctx     []bind
	actPos  []int32
	version string
	cacheID string // score-cache key part: catalog content, model name and version
	// plan scores the model's candidates of a decision together (see
	// Catalog.plans); nil when the model is not a single-output tree
	// ensemble or planErr says why not.
	plan    *model.Plan
	planErr string
}

type bind struct{ pos, slot int32 }

type journey struct {
	id       string
	heldWhy  string // explain reason for actions a lock holds back
	lock     bool
	tier     int
	entryEvt string
	match    map[string]string
	entry    int32 // rule, -1 none
	exitEvts []string
	exit     int32 // rule, -1 none
	timeout  time.Duration
	steps    []int32 // action indices
	waits    []time.Duration
	chanMask uint64
}

// Catalog is a compiled catalog: actions indexed by channel, rules compiled
// to closures, contact policies resolved to history queries, models bound.
// It is immutable and safe for concurrent use.
type Catalog struct {
	name, version string
	contentHash   string // hash of the catalog file's bytes
	modelVersion  string
	channels      []string
	chanIdx       map[string]int
	ctx           []Field
	ctxIdx        map[string]int
	nfields       int
	fields        []Field // the profile schema, slot order
	tzSlot        int

	actions   []Action
	byID      map[string]int
	byChannel [][]int32
	groups    []group

	rules    []boolFn
	flat     []flatRule // per rule: its flat form, op flatNone when it has none
	ruleText []string
	nums     []numFn
	queries  []histQuery

	chanLimits     [][]limit
	exact          bool // some cap or channel limit is exact (caps.go)
	maxPerDecision int
	fallback       int32
	salt           string
	globalHoldout  float64
	globalSeed     uint64
	nexcl          int

	journeys   []journey
	journeyIdx map[string]int
	models     []boundModel
	learn      *learnSpec // nil without a learning section

	// Consent purposes (consent.go): names, index, default per channel.
	purposes       []string
	purposeIdx     map[string]int
	consentDefault [][]bool // [purpose][channel] granted
	// consentStaleDeny: per purpose, denied when the live state is unknown.
	consentStaleDeny []bool
}

// Version is the catalog's "version:" or, when absent, a hash of its bytes.
func (c *Catalog) Version() string { return c.version }

// Channels lists the catalog's channels in index order.
func (c *Catalog) Channels() []string { return c.channels }

// ChannelIndex returns the index of a channel name, -1 when unknown.
func (c *Catalog) ChannelIndex(name string) int {
	if i, ok := c.chanIdx[name]; ok {
		return i
	}
	return -1
}

// ContextFields lists the declared request-context fields in slot order.
func (c *Catalog) ContextFields() []Field { return c.ctx }

// ContextKind returns the declared kind of the request-context field name,
// false when the catalog does not declare it.
func (c *Catalog) ContextKind(name string) (Kind, bool) {
	if i, ok := c.ctxIdx[name]; ok {
		return c.ctx[i].Kind, true
	}
	return 0, false
}

// ProfileFields lists the profile schema the catalog was compiled against,
// in slot order (the order of Profile.Num and Trace.Profile).
func (c *Catalog) ProfileFields() []Field { return c.fields }

// Actions lists the compiled actions in catalog order.
func (c *Catalog) Actions() []Action { return c.actions }

// Action returns the action with the id, nil when unknown.
func (c *Catalog) Action(id string) *Action {
	if i, ok := c.byID[id]; ok {
		return &c.actions[i]
	}
	return nil
}

// Validate compiles a catalog and returns every problem found, each prefixed
// with its path in the file; nil means the catalog loads.
func Validate(name string, data []byte, opts Options) []error {
	_, errs := compileCatalog(name, data, opts)
	return errs
}

// CompileCatalog validates and compiles a catalog. On failure the error is a
// *CatalogError listing every problem.
func CompileCatalog(name string, data []byte, opts Options) (*Catalog, error) {
	c, errs := compileCatalog(name, data, opts)
	if len(errs) > 0 {
		return nil, &CatalogError{Name: name, Errs: errs}
	}
	return c, nil
}

type compiler struct {
	c       *Catalog
	f       *catalogFile
	errs    errList
	env     *exprEnv
	ruleIdx map[string]int32
	numIdx  map[string]int32
	qIdx    map[histQuery]int
	modIdx  map[string]int32
	groupIx map[string]int
	opts    Options
}

func compileCatalog(name string, data []byte, opts Options) (*Catalog, []error) {
	var f catalogFile
	k := &compiler{
		c: &Catalog{name: name, tzSlot: -1, fallback: -1}, f: &f,
		ruleIdx: map[string]int32{}, numIdx: map[string]int32{}, qIdx: map[histQuery]int{},
		modIdx: map[string]int32{}, groupIx: map[string]int{}, opts: opts,
	}
	if !decodeCatalog(data, &f, &k.errs) {
		return nil, k.placed(name, data)
	}
	c := k.c
	sum := sha256.Sum256(data)
	c.contentHash = hex.EncodeToString(sum[:8])
	c.version = f.Version
	if c.version == "" {
		c.version = c.contentHash
	}
	c.nfields = len(opts.Schema.Fields)
	c.fields = slices.Clone(opts.Schema.Fields)
	seen := map[string]bool{}
	for i, fl := range opts.Schema.Fields {
		if fl.Name == "" || seen[fl.Name] || fl.Kind < KindNumber || fl.Kind > KindBool {
			k.errs.add("", "schema field %d (%q): empty, duplicate or without a kind", i, fl.Name)
		}
		seen[fl.Name] = true
	}
	k.channels()
	k.purposes()
	k.context()
	k.env = newExprEnv(opts.Schema, c.ctx, k.query)
	if f.TimezoneField != "" {
		c.tzSlot = -1
		for i, fl := range opts.Schema.Fields {
			if fl.Name == f.TimezoneField && fl.Kind == KindNumber {
				c.tzSlot = i
			}
		}
		if c.tzSlot < 0 {
			k.errs.add("timezone_field", "no number profile field %q", f.TimezoneField)
		}
	}
	if len(f.Actions) > MaxActions {
		k.errs.add("actions", "%d actions, more than the limit of %d", len(f.Actions), MaxActions)
		return nil, k.placed(name, data)
	}
	// Index actions first: rules may name them in history helpers.
	c.byID = map[string]int{}
	for i := range f.Actions {
		id := f.Actions[i].ID
		switch {
		case id == "":
			k.errs.add(fmt.Sprintf("actions[%d].id", i), "missing id")
		case hasKey(c.byID, id):
			k.errs.add(fmt.Sprintf("actions[%d].id", i), "duplicate action id %q", id)
		default:
			c.byID[id] = i
		}
	}
	k.groups()
	k.policies()
	c.actions = make([]Action, len(f.Actions))
	for i := range f.Actions {
		k.action(i)
	}
	k.journeys()
	k.index()
	k.learning()
	if f.Fallback != "" {
		if i, ok := c.byID[f.Fallback]; ok {
			c.fallback = int32(i)
		} else {
			k.errs.add("fallback", "unknown action %q%s", f.Fallback, didYouMean(f.Fallback, sortedKeys(c.byID)))
		}
	}
	c.salt = f.Holdout.Salt
	if f.Holdout.Global < 0 || f.Holdout.Global >= 1 {
		k.errs.add("holdout.global", "share %v must be in [0, 1)", f.Holdout.Global)
	}
	c.globalHoldout = f.Holdout.Global
	c.globalSeed = hashString(fnvOffset, c.salt+"\x00")
	for i := range c.actions {
		c.actions[i].holdSeed = hashString(fnvOffset, c.salt+"\x00"+c.actions[i].ID+"\x00")
	}
	c.modelVersion = ModelSetDigest(c.ModelVersions())
	k.plans()
	c.queries = make([]histQuery, len(k.qIdx))
	for q, i := range k.qIdx {
		c.queries[i] = q
	}
	c.indexExact()
	if len(k.errs.errs) > 0 {
		return nil, k.placed(name, data)
	}
	return c, nil
}

// placed returns the problems found, each with its line and column and
// naming the action, group or journey it is in by id.
func (k *compiler) placed(name string, data []byte) []error {
	k.errs.place(name, data, k.f)
	return k.errs.errs
}

func (k *compiler) channels() {
	c := k.c
	c.chanIdx = map[string]int{}
	for _, ch := range append(slices.Clone(DefaultChannels), k.f.Channels...) {
		if _, ok := c.chanIdx[ch]; ok {
			continue
		}
		if ch == "" {
			k.errs.add("channels", "empty channel name")
			continue
		}
		c.chanIdx[ch] = len(c.channels)
		c.channels = append(c.channels, ch)
	}
	if len(c.channels) > MaxChannels {
		k.errs.add("channels", "%d channels, more than the limit of %d", len(c.channels), MaxChannels)
	}
}

func (k *compiler) context() {
	c := k.c
	c.ctxIdx = map[string]int{}
	names := make([]string, 0, len(k.f.Context))
	for n := range k.f.Context {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		kind, err := ParseKind(k.f.Context[n])
		if err != nil {
			k.errs.add("context."+n, "%v", err)
			continue
		}
		c.ctxIdx[n] = len(c.ctx)
		c.ctx = append(c.ctx, Field{Name: n, Kind: kind})
	}
}

// query interns a history query, checking its key.
func (k *compiler) query(q histQuery) (int, error) {
	switch q.scope {
	case ScopeAction:
		if _, ok := k.c.byID[q.key]; !ok {
			return 0, fmt.Errorf("unknown action %q%s", q.key, didYouMean(q.key, sortedKeys(k.c.byID)))
		}
	case ScopeGroup:
		if _, ok := k.groupIx[q.key]; !ok {
			return 0, fmt.Errorf("unknown group %q%s", q.key, didYouMean(q.key, sortedKeys(k.groupIx)))
		}
	case ScopeChannel:
		if _, ok := k.c.chanIdx[q.key]; !ok {
			return 0, fmt.Errorf("unknown channel %q%s", q.key, didYouMean(q.key, k.c.channels))
		}
	}
	if err := k.countable(q.window); err != nil {
		return 0, err
	}
	if i, ok := k.qIdx[q]; ok {
		return i, nil
	}
	i := len(k.qIdx)
	k.qIdx[q] = i
	return i, nil
}

// countable refuses a window longer than the history the state keeps.
func (k *compiler) countable(w time.Duration) error {
	if m := k.opts.MaxWindow; m > 0 && w > m {
		return fmt.Errorf("window %s exceeds the customer history kept (%s)", fmtWindow(w), fmtWindow(m))
	}
	return nil
}

// fmtWindow prints a window as the catalog writes it: whole days as "30d".
func fmtWindow(d time.Duration) string {
	if day := 24 * time.Hour; d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

func (k *compiler) rule(path, src string) int32 {
	if i, ok := k.ruleIdx[src]; ok {
		return i
	}
	fn, flat, err := k.env.compileBool(src)
	if err != nil {
		k.errs.add(path, "%v", err)
		return -1
	}
	i := int32(len(k.c.rules))
	k.c.rules = append(k.c.rules, fn)
	k.c.flat = append(k.c.flat, flat)
	k.c.ruleText = append(k.c.ruleText, src)
	k.ruleIdx[src] = i
	return i
}

// number reads a constant or an expression; ok is false when absent.
func (k *compiler) number(path string, v any) (numRef, bool) {
	switch v := v.(type) {
	case nil:
		return numRef{expr: -1}, false
	case uint64:
		return numRef{c: float64(v), expr: -1}, true
	case int64:
		return numRef{c: float64(v), expr: -1}, true
	case float64:
		return numRef{c: v, expr: -1}, true
	case int:
		return numRef{c: float64(v), expr: -1}, true
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return numRef{c: f, expr: -1}, true
		}
		if i, ok := k.numIdx[v]; ok {
			return numRef{expr: i}, true
		}
		fn, err := k.env.compileNum(v)
		if err != nil {
			k.errs.add(path, "%v", err)
			return numRef{expr: -1}, false
		}
		i := int32(len(k.c.nums))
		k.c.nums = append(k.c.nums, fn)
		k.numIdx[v] = i
		return numRef{expr: i}, true
	}
	k.errs.add(path, "want a number or an expression, got %s", yamlKind(v))
	return numRef{expr: -1}, false
}

func (k *compiler) groups() {
	c, f := k.c, k.f
	for i := range f.Groups {
		g := &f.Groups[i]
		path := fmt.Sprintf("groups[%d]", i)
		if g.ID == "" {
			k.errs.add(path+".id", "missing id")
			continue
		}
		if _, dup := k.groupIx[g.ID]; dup {
			k.errs.add(path+".id", "duplicate group id %q", g.ID)
			continue
		}
		k.groupIx[g.ID] = len(c.groups)
		c.groups = append(c.groups, group{id: g.ID, parent: -1, file: g, path: path, exclusive: -1})
	}
	for i := range c.groups {
		g := &c.groups[i]
		if g.file.Parent != "" {
			p, ok := k.groupIx[g.file.Parent]
			if !ok {
				k.errs.add(g.path+".parent", "unknown group %q%s", g.file.Parent, didYouMean(g.file.Parent, sortedKeys(k.groupIx)))
				continue
			}
			g.parent = p
		}
		if g.file.Exclusive {
			g.exclusive = int32(c.nexcl)
			c.nexcl++
		}
		if g.file.Holdout < 0 || g.file.Holdout >= 1 {
			k.errs.add(g.path+".holdout", "share %v must be in [0, 1)", g.file.Holdout)
		}
	}
	// Cycles: a walk up from any group must end within len(groups) steps.
	for i := range c.groups {
		j, n := i, 0
		for j >= 0 && n <= len(c.groups) {
			j = c.groups[j].parent
			n++
		}
		if j >= 0 {
			k.errs.add(c.groups[i].path+".parent", "cycle in groups through %q", c.groups[i].id)
			for x := range c.groups { // report once, then cut every cycle
				c.groups[x].parent = -1
			}
			break
		}
	}
}

// chain returns the group indices from the action's group up to the root.
func (k *compiler) chain(g int) []int {
	var out []int
	for g >= 0 {
		out = append(out, g)
		g = k.c.groups[g].parent
	}
	return out
}

func (k *compiler) limits(path string, in []limitFile, scope Scope, key string) []limit {
	var out []limit
	for i, l := range in {
		p := fmt.Sprintf("%s[%d]", path, i)
		if l.Max == nil {
			k.errs.add(p+".max", "missing max")
			continue
		}
		if l.Window == "" {
			k.errs.add(p+".window", "cap without a window")
			continue
		}
		w, err := parseWindow(l.Window)
		if err != nil {
			k.errs.add(p+".window", "%v", err)
			continue
		}
		o := Impression
		if l.Outcome != "" {
			if o, err = parseOutcome(l.Outcome); err != nil {
				k.errs.add(p+".outcome", "%v", err)
				continue
			}
		}
		if l.Exact && o != Impression {
			k.errs.add(p+".exact", "an exact cap counts impressions (a decision reserves the impression it gives), not %ss", o)
			continue
		}
		q, err := k.query(histQuery{scope: scope, key: key, outcome: o, window: w})
		if err != nil {
			k.errs.add(p+".window", "%v", err)
			continue
		}
		out = append(out, limit{q: int32(q), max: int32(*l.Max), exact: l.Exact,
			desc: fmt.Sprintf("%s %s: at most %d %ss in %s%s", scope, key, *l.Max, o, l.Window, exactDesc(l.Exact))})
	}
	return out
}

// suppressions compiles "suppress:" entries. A pause in force now started
// at an `after` outcome in the last `pause` that completed `count` of them
// within `within`, so `count` of them over within+pause (one over pause
// without a `within`) is necessary: that count is the limit's query, and
// only a customer who passes it has their contact sequence read. A single
// `after` with no `without` needs no sequence: every such outcome starts a
// pause, so one in the last `pause` is exactly the rule.
func (k *compiler) suppressions(path string, in []suppressFile, scope Scope, key string) []limit {
	var out []limit
	for i, s := range in {
		p := fmt.Sprintf("%s[%d]", path, i)
		after, err := parseOutcome(s.After)
		if err != nil {
			k.errs.add(p+".after", "%v", err)
			continue
		}
		pause, err := parseWindow(s.Pause)
		if err != nil {
			k.errs.add(p+".pause", "%v", err)
			continue
		}
		if s.Count < 0 || s.Count > MaxSuppressCount {
			k.errs.add(p+".count", "count %d out of range [1, %d]", s.Count, MaxSuppressCount)
			continue
		}
		n := max(s.Count, 1)
		sp := &suppression{key: key, after: after, n: n, pause: pause, unless: -1}
		if s.Without != "" {
			if sp.without, err = parseOutcome(s.Without); err != nil {
				k.errs.add(p+".without", "%v", err)
				continue
			}
			if sp.without == after {
				k.errs.add(p+".without", "the same outcome as after (%s)", after)
				continue
			}
		}
		if s.Within != "" || s.Without != "" {
			if sp.within, err = parseWindow(s.Within); err != nil {
				k.errs.add(p+".within", "%v", err)
				continue
			}
		}
		if n == 1 && sp.without == 0 {
			sp.within = 0 // every such outcome starts a pause
		}
		w, atLeast, what := pause+sp.within, n, "within "+s.Within+" + pause "+s.Pause
		if sp.within == 0 {
			w, atLeast, what = pause, 1, "pause "+s.Pause
		}
		if m := k.opts.MaxWindow; m > 0 && w > m {
			k.errs.add(p, "%s exceeds the customer history kept (%s)", what, fmtWindow(m))
			continue
		}
		q, _ := k.query(histQuery{scope, key, after, w})
		l := limit{q: int32(q), max: int32(atLeast), supp: true}
		switch {
		case n == 1 && sp.without == 0:
			l.desc = fmt.Sprintf("%s %s: paused %s after a %s", scope, key, s.Pause, after)
		case sp.without == 0:
			l.sup = sp
			l.desc = fmt.Sprintf("%s %s: paused %s after %d %ss", scope, key, s.Pause, n, after)
			if s.Within != "" {
				l.desc += " within " + s.Within
			}
		default:
			// The fallback for a History that cannot list contacts.
			u, _ := k.query(histQuery{scope, key, sp.without, w})
			sp.unless = int32(u)
			l.sup = sp
			l.desc = fmt.Sprintf("%s %s: paused %s after %d %ss without a %s within %s", scope, key, s.Pause, n, after, sp.without, s.Within)
		}
		out = append(out, l)
	}
	return out
}

func (k *compiler) policies() {
	c, p := k.c, k.f.Policies
	c.maxPerDecision = p.MaxPerDecision
	if p.MaxPerDecision < 0 {
		k.errs.add("policies.max_per_decision", "must not be negative")
	}
	c.chanLimits = make([][]limit, len(c.channels))
	names := make([]string, 0, len(p.Channels))
	for ch := range p.Channels {
		names = append(names, ch)
	}
	sort.Strings(names)
	for _, ch := range names {
		i, ok := c.chanIdx[ch]
		if !ok {
			k.errs.add("policies.channels."+ch, "unknown channel %q%s", ch, didYouMean(ch, c.channels))
			continue
		}
		c.chanLimits[i] = k.limits("policies.channels."+ch, p.Channels[ch], ScopeChannel, ch)
	}
}

func (k *compiler) action(i int) {
	c, af := k.c, &k.f.Actions[i]
	a := &c.actions[i]
	path := fmt.Sprintf("actions[%d]", i)
	a.ID, a.Name, a.Group, a.index = af.ID, af.Name, af.Group, i
	a.pinRule, a.model, a.exclusion, a.journey = -1, -1, -1, -1
	k.actionPurpose(a, af, path)
	var chain []int
	if af.Group != "" {
		g, ok := k.groupIx[af.Group]
		if !ok {
			k.errs.add(path+".group", "unknown group %q%s", af.Group, didYouMean(af.Group, sortedKeys(k.groupIx)))
		} else {
			chain = k.chain(g)
		}
	}
	// Channels and treatments.
	if len(af.Channels) == 0 {
		k.errs.add(path+".channels", "no channels")
	}
	for j, ch := range af.Channels {
		ci, ok := c.chanIdx[ch]
		if !ok {
			k.errs.add(fmt.Sprintf("%s.channels[%d]", path, j), "unknown channel %q%s", ch, didYouMean(ch, c.channels))
			continue
		}
		a.chanMask |= 1 << uint(ci)
	}
	a.treatments = make([][]byte, len(c.channels))
	for _, ch := range sortedKeys(af.Treatments) {
		t := af.Treatments[ch]
		ci, ok := c.chanIdx[ch]
		if !ok || a.chanMask&(1<<uint(ci)) == 0 {
			k.errs.add(path+".treatments."+ch, "channel %q is not one of the action's channels", ch)
			continue
		}
		b, err := json.Marshal(jsonable(t))
		if err != nil {
			k.errs.add(path+".treatments."+ch, "cannot encode as JSON: %v", err)
			continue
		}
		a.treatments[ci] = b
	}
	a.placements = af.Placements
	a.start = k.date(path+".start", af.Start)
	a.end = k.date(path+".end", af.End)
	if a.start != 0 && a.end != 0 && a.end <= a.start {
		k.errs.add(path+".end", "end is not after start")
	}
	// Tier.
	if af.Tier < 0 || af.Tier > MaxTier {
		k.errs.add(path+".tier", "tier %d out of range [0, %d]", af.Tier, MaxTier)
	}
	a.tier = af.Tier
	if af.PinWhen != "" {
		if af.Tier == 0 {
			k.errs.add(path+".pin_when", "pin_when without a tier")
		}
		a.pinRule = k.rule(path+".pin_when", af.PinWhen)
	}
	// Rules: the groups' from the outermost in, then the action's.
	for gi := len(chain) - 1; gi >= 0; gi-- {
		g := &c.groups[chain[gi]]
		k.stageRules(a, g.path+".rules", &g.file.Rules)
	}
	k.stageRules(a, path+".rules", &af.Rules)
	// Value, weight, lever: the action's, else the nearest group's, else defaults.
	var ok bool
	if a.value, ok = k.number(path+".value", af.Value); !ok {
		if a.value, ok = k.number("defaults.value", k.f.Defaults.Value); !ok {
			a.value = numRef{c: 1, expr: -1}
		}
	}
	a.weight = k.inherit(path+".weight", af.Weight, chain, func(g *groupFile) any { return g.Weight }, nil)
	lever := k.inherit(path+".lever", af.Lever, chain, func(g *groupFile) any { return g.Lever }, k.f.Defaults.Lever)
	if lever.expr >= 0 {
		k.errs.add(path+".lever", "lever must be a constant number")
	}
	a.lever = lever.c
	// Holdout and exclusion from the nearest group that sets them.
	a.holdout = af.Holdout
	if af.Holdout < 0 || af.Holdout >= 1 {
		k.errs.add(path+".holdout", "share %v must be in [0, 1)", af.Holdout)
	}
	for _, g := range chain {
		gf := c.groups[g].file
		if a.holdout == 0 {
			a.holdout = gf.Holdout
		}
		if a.exclusion < 0 && c.groups[g].exclusive >= 0 {
			a.exclusion = c.groups[g].exclusive
		}
	}
	// Contact policies: own caps else the nearest group's action_caps; group
	// caps on every enclosing group.
	caps, capPath := af.Caps, path+".caps"
	sup, supPath, supFrom := af.Suppress, path+".suppress", ""
	for _, g := range chain {
		gf := c.groups[g].file
		if caps == nil && gf.ActionCaps != nil {
			caps, capPath = gf.ActionCaps, c.groups[g].path+".action_caps"
		}
		if sup == nil && gf.Suppress != nil {
			sup, supPath, supFrom = gf.Suppress, c.groups[g].path+".suppress", c.groups[g].id
		}
	}
	a.limits = append(a.limits, k.limits(capPath, caps, ScopeAction, a.ID)...)
	for _, l := range k.suppressions(supPath, sup, ScopeAction, a.ID) {
		l.from = supFrom
		a.limits = append(a.limits, l)
	}
	for _, g := range chain {
		gr := &c.groups[g]
		a.limits = append(a.limits, k.limits(gr.path+".caps", gr.file.Caps, ScopeGroup, gr.id)...)
	}
	k.bindModel(a, af, path)
}

func (k *compiler) inherit(path string, own any, chain []int, get func(*groupFile) any, def any) numRef {
	if r, ok := k.number(path, own); ok {
		return r
	}
	for _, g := range chain {
		if v := get(k.c.groups[g].file); v != nil {
			if r, ok := k.number(k.c.groups[g].path, v); ok {
				return r
			}
		}
	}
	if r, ok := k.number("defaults", def); ok {
		return r
	}
	return numRef{c: 1, expr: -1}
}

func (k *compiler) stageRules(a *Action, path string, r *rulesFile) {
	for s, list := range [3][]string{r.Eligible, r.Applicable, r.Suitable} {
		name := [3]string{"eligible", "applicable", "suitable"}[s]
		for j, src := range list {
			if ri := k.rule(fmt.Sprintf("%s.%s[%d]", path, name, j), src); ri >= 0 {
				a.rules[s] = append(a.rules[s], ri)
			}
		}
	}
}

func (k *compiler) date(path, s string) int64 {
	if s == "" {
		return 0
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix()
		}
	}
	k.errs.add(path, "invalid date %q (want 2006-01-02 or RFC 3339)", s)
	return 0
}

func (k *compiler) bindModel(a *Action, af *actionFile, path string) {
	name := af.Model
	if name == "" {
		name = k.f.Defaults.Model
	}
	if name == "" {
		if len(af.Features) > 0 {
			k.errs.add(path+".features", "features without a model")
		}
		return
	}
	mi, ok := k.modIdx[name]
	if !ok {
		m := k.opts.Models[name]
		if m == nil {
			k.errs.add(path+".model", "unknown model %q", name)
			return
		}
		if m.NumOutputs() != 1 {
			k.errs.add(path+".model", "model %q has %d outputs; a propensity model has one", name, m.NumOutputs())
			return
		}
		mi = int32(len(k.c.models))
		k.modIdx[name] = mi
		k.c.models = append(k.c.models, k.newBoundModel(name, m, path))
	}
	a.model = mi
	bm := &k.c.models[mi]
	pos := map[string]int{}
	for i, fn := range bm.m.Features() {
		pos[fn] = i
	}
	keys := make([]string, 0, len(af.Features))
	for fn := range af.Features {
		keys = append(keys, fn)
	}
	sort.Strings(keys)
	for _, fn := range keys {
		p, ok := pos[fn]
		if !ok {
			k.errs.add(path+".features."+fn, "model %q has no feature %q", name, fn)
			continue
		}
		if !slices.Contains(bm.actPos, int32(p)) {
			k.errs.add(path+".features."+fn, "model %q: feature %q is bound to a profile or context field, not an action feature", name, fn)
			continue
		}
		a.feats = append(a.feats, featConst{pos: int32(p), v: af.Features[fn]})
	}
}

// newBoundModel binds a model's features: action features (named in any
// action's features map), else profile fields, else context fields.
func (k *compiler) newBoundModel(name string, m Scorer, path string) boundModel {
	bm := boundModel{name: name, m: m, nf: len(m.Features()), version: k.opts.ModelVersions[name]}
	// Cached scores are indexed by action position: tie them to this
	// catalog's exact content, not its declared version.
	bm.cacheID = k.c.contentHash + "/" + name + "@" + bm.version
	if mm, ok := m.(model.Model); ok {
		bm.mm = mm
		if bm.version == "" {
			bm.version = mm.Info().Version
		}
	}
	actionFeat := map[string]bool{}
	for i := range k.f.Actions {
		an := k.f.Actions[i].Model
		if an == "" {
			an = k.f.Defaults.Model
		}
		if an == name {
			for fn := range k.f.Actions[i].Features {
				actionFeat[fn] = true
			}
		}
	}
	prof := map[string]int{}
	for i, f := range k.opts.Schema.Fields {
		prof[f.Name] = i
	}
	for i, fn := range m.Features() {
		switch {
		case actionFeat[fn]:
			bm.actPos = append(bm.actPos, int32(i))
		case hasKey(prof, fn):
			bm.prof = append(bm.prof, bind{int32(i), int32(prof[fn])})
		case hasKey(k.c.ctxIdx, fn):
			bm.ctx = append(bm.ctx, bind{int32(i), int32(k.c.ctxIdx[fn])})
		default:
			k.errs.add(path+".model", "model %q: feature %q cannot be bound (not an action feature, profile field or context field)", name, fn)
		}
	}
	return bm
}

// plans prepares a model.Plan for every single-output tree ensemble, with
// the action features varying, and each action's variant. A decision then
// evaluates the shared (profile and context) splits once and each
// candidate's trees with a mask lookup (see model.Plan). A model whose plan
// cannot be built (a tree over model.MaxPlanLeaves leaves, variants over
// MaxPlanBytes) keeps the row-by-row path.
func (k *compiler) plans() {
	if k.opts.NoScorePlans {
		return
	}
	c := k.c
	for mi := range c.models {
		bm := &c.models[mi]
		ens, ok := bm.m.(*model.Ensemble)
		if !ok || ens.NumOutputs() != 1 {
			continue
		}
		varying := make([]int, len(bm.actPos))
		col := map[int32]int{}
		for j, p := range bm.actPos {
			varying[j] = int(p)
			col[p] = j
		}
		p, err := ens.NewPlan(varying)
		if err != nil {
			bm.planErr = err.Error()
			continue
		}
		n := 0
		for i := range c.actions {
			if c.actions[i].model == int32(mi) {
				n++
			}
		}
		if n*p.VariantBytes() > MaxPlanBytes {
			bm.planErr = fmt.Sprintf("cannot plan model: %d actions of %d bytes exceed %d bytes", n, p.VariantBytes(), MaxPlanBytes)
			continue
		}
		vals := make([]float64, len(varying))
		for i := range c.actions {
			a := &c.actions[i]
			if a.model != int32(mi) {
				continue
			}
			for j := range vals {
				vals[j] = math.NaN() // features an action does not set are missing
			}
			for _, f := range a.feats {
				vals[col[f.pos]] = f.v
			}
			if a.variant, err = p.Variant(vals); err != nil {
				bm.planErr = err.Error()
				break
			}
		}
		if bm.planErr != "" {
			for i := range c.actions {
				if c.actions[i].model == int32(mi) {
					c.actions[i].variant = nil
				}
			}
			continue
		}
		bm.plan = p
	}
}

// PlanFallbacks lists the tree models scored row by row because their score
// plan could not be built, as "model: reason"; empty when every single-output
// tree ensemble has one.
func (c *Catalog) PlanFallbacks() []string {
	var out []string
	for _, m := range c.models {
		if m.planErr != "" {
			out = append(out, m.name+": "+m.planErr)
		}
	}
	return out
}

func hasKey(m map[string]int, k string) bool { _, ok := m[k]; return ok }

func (k *compiler) journeys() {
	c := k.c
	c.journeyIdx = map[string]int{}
	for i := range k.f.Journeys {
		jf := &k.f.Journeys[i]
		path := fmt.Sprintf("journeys[%d]", i)
		j := journey{id: jf.ID, heldWhy: "held by locked journey " + jf.ID, tier: jf.Tier, entry: -1, exit: -1, entryEvt: jf.Entry.Event,
			match: jf.Entry.Match, exitEvts: jf.Exit.Events}
		if jf.ID == "" {
			k.errs.add(path+".id", "missing id")
		} else if _, dup := c.journeyIdx[jf.ID]; dup {
			k.errs.add(path+".id", "duplicate journey id %q", jf.ID)
		}
		switch jf.Mode {
		case "lock":
			j.lock = true
		case "free", "":
		default:
			k.errs.add(path+".mode", "unknown mode %q (want lock or free)", jf.Mode)
		}
		if jf.Tier < 0 || jf.Tier > MaxTier {
			k.errs.add(path+".tier", "tier %d out of range [0, %d]", jf.Tier, MaxTier)
		}
		if jf.Entry.Event == "" && jf.Entry.Rule == "" {
			k.errs.add(path+".entry", "no entry event or rule")
		}
		if jf.Entry.Rule != "" {
			j.entry = k.rule(path+".entry.rule", jf.Entry.Rule)
		}
		if jf.Exit.Rule != "" {
			j.exit = k.rule(path+".exit.rule", jf.Exit.Rule)
		}
		if jf.Timeout != "" {
			var err error
			if j.timeout, err = parseWindow(jf.Timeout); err != nil {
				k.errs.add(path+".timeout", "%v", err)
			}
		}
		if len(jf.Steps) == 0 {
			k.errs.add(path+".steps", "no steps")
		}
		ji := int32(len(c.journeys))
		for s, st := range jf.Steps {
			sp := fmt.Sprintf("%s.steps[%d]", path, s)
			ai, ok := c.byID[st.Action]
			if !ok {
				k.errs.add(sp+".action", "unknown action %q%s", st.Action, didYouMean(st.Action, sortedKeys(c.byID)))
				continue
			}
			var w time.Duration
			if st.Wait != "" && st.Wait != "0" {
				var err error
				if w, err = parseWindow(st.Wait); err != nil {
					k.errs.add(sp+".wait", "%v", err)
				}
			}
			a := &c.actions[ai]
			if a.journey >= 0 {
				// The journey being compiled is not in c.journeys yet.
				other := jf.ID
				if int(a.journey) < len(c.journeys) {
					other = c.journeys[a.journey].id
				}
				k.errs.add(sp+".action", "action %q is already a step of journey %q", st.Action, other)
				continue
			}
			a.journey = ji
			j.steps = append(j.steps, int32(ai))
			j.waits = append(j.waits, w)
			j.chanMask |= a.chanMask
		}
		c.journeyIdx[jf.ID] = int(ji)
		c.journeys = append(c.journeys, j)
	}
}

// index builds the per-channel candidate lists in catalog order.
func (k *compiler) index() {
	c := k.c
	c.byChannel = make([][]int32, len(c.channels))
	for i := range c.actions {
		for ch := range c.channels {
			if c.actions[i].chanMask&(1<<uint(ch)) != 0 {
				c.byChannel[ch] = append(c.byChannel[ch], int32(i))
			}
		}
	}
}

// jsonable turns YAML-decoded values into ones encoding/json accepts
// (map[any]any keys become strings).
func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonable(e)
		}
		return out
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil
		}
	}
	return v
}

// Holdouts reports the customer's control-group membership under this
// catalog: in the global holdout, and the actions whose own holdout holds
// the customer out. It is the same salted hash Decide uses, so it is stable
// across requests and restarts (for status pages; allocates).
func (c *Catalog) Holdouts(customer string) (global bool, actions []string) {
	if customer == "" {
		return false, nil
	}
	global = c.globalHoldout > 0 && holdoutFrac(hashString(c.globalSeed, customer)) < c.globalHoldout
	for i := range c.actions {
		a := &c.actions[i]
		if a.holdout > 0 && holdoutFrac(hashString(a.holdSeed, customer)) < a.holdout {
			actions = append(actions, a.ID)
		}
	}
	return global, actions
}
