package nba

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// The catalog file, as written by marketers (YAML; JSON is accepted since it
// is YAML). Field names are snake_case; unknown fields are errors.

type catalogFile struct {
	Version  string            `yaml:"version"`
	Channels []string          `yaml:"channels"`
	Context  map[string]string `yaml:"context"`
	// TimezoneField names a number profile field holding the customer's UTC
	// offset in minutes, used by hour(), weekday() and days_to_birthday().
	TimezoneField string        `yaml:"timezone_field"`
	Defaults      defaultsFile  `yaml:"defaults"`
	Fallback      string        `yaml:"fallback"`
	Holdout       holdoutFile   `yaml:"holdout"`
	Policies      policiesFile  `yaml:"policies"`
	Groups        []groupFile   `yaml:"groups"`
	Actions       []actionFile  `yaml:"actions"`
	Journeys      []journeyFile `yaml:"journeys"`
	Learning      *learningFile `yaml:"learning"`
	// Purposes are the consent purposes with their defaults (consent.go).
	Purposes map[string]purposeFile `yaml:"purposes"`
}

// learningFile is the "learning:" section: online correction of the
// models and exploration per channel (see learn.go).
type learningFile struct {
	Features         []string               `yaml:"features"`
	PriorVariance    float64                `yaml:"prior_variance"`
	GroupPriorWeight float64                `yaml:"group_prior_weight"`
	Decay            float64                `yaml:"decay"`
	HalfLife         string                 `yaml:"half_life"`
	Explore          map[string]exploreFile `yaml:"explore"`
}

type exploreFile struct {
	Method      string  `yaml:"method"`
	Epsilon     float64 `yaml:"epsilon"`
	Temperature float64 `yaml:"temperature"`
	Draws       int     `yaml:"draws"`
}

type defaultsFile struct {
	Model string `yaml:"model"`
	Value any    `yaml:"value"`
	Lever any    `yaml:"lever"`
}

type holdoutFile struct {
	Salt   string  `yaml:"salt"`
	Global float64 `yaml:"global"`
}

type policiesFile struct {
	MaxPerDecision int                    `yaml:"max_per_decision"`
	Channels       map[string][]limitFile `yaml:"channels"`
}

type limitFile struct {
	Max     *int   `yaml:"max"`
	Window  string `yaml:"window"`
	Outcome string `yaml:"outcome"`
	// Exact reserves the slot when a decision gives the action, in the
	// shared state, so that no replica gives it past the cap (caps.go).
	Exact bool `yaml:"exact"`
}

type suppressFile struct {
	After   string `yaml:"after"`
	Count   int    `yaml:"count"`
	Within  string `yaml:"within"`
	Without string `yaml:"without"`
	Pause   string `yaml:"pause"`
}

type rulesFile struct {
	Eligible   []string `yaml:"eligible"`
	Applicable []string `yaml:"applicable"`
	Suitable   []string `yaml:"suitable"`
}

type groupFile struct {
	ID        string    `yaml:"id"`
	Parent    string    `yaml:"parent"`
	Lever     any       `yaml:"lever"`
	Weight    any       `yaml:"weight"`
	Exclusive bool      `yaml:"exclusive"`
	Holdout   float64   `yaml:"holdout"`
	Rules     rulesFile `yaml:"rules"`
	// Caps count contacts of the whole group.
	Caps []limitFile `yaml:"caps"`
	// ActionCaps and Suppress apply to each action of the group, unless the
	// action sets its own.
	ActionCaps []limitFile    `yaml:"action_caps"`
	Suppress   []suppressFile `yaml:"suppress"`
}

type actionFile struct {
	ID         string             `yaml:"id"`
	Name       string             `yaml:"name"`
	Group      string             `yaml:"group"`
	Channels   []string           `yaml:"channels"`
	Placements []string           `yaml:"placements"`
	Start      string             `yaml:"start"`
	End        string             `yaml:"end"`
	Tier       int                `yaml:"tier"`
	PinWhen    string             `yaml:"pin_when"`
	Value      any                `yaml:"value"`
	Lever      any                `yaml:"lever"`
	Weight     any                `yaml:"weight"`
	Model      string             `yaml:"model"`
	Features   map[string]float64 `yaml:"features"`
	Treatments map[string]any     `yaml:"treatments"`
	Holdout    float64            `yaml:"holdout"`
	Rules      rulesFile          `yaml:"rules"`
	Caps       []limitFile        `yaml:"caps"`
	Suppress   []suppressFile     `yaml:"suppress"`
	Purpose    string             `yaml:"purpose"` // consent purpose (consent.go); default marketing
}

type journeyFile struct {
	ID      string            `yaml:"id"`
	Mode    string            `yaml:"mode"`
	Tier    int               `yaml:"tier"`
	Entry   journeyEntryFile  `yaml:"entry"`
	Exit    journeyExitFile   `yaml:"exit"`
	Timeout string            `yaml:"timeout"`
	Steps   []journeyStepFile `yaml:"steps"`
}

type journeyEntryFile struct {
	Event string            `yaml:"event"`
	Match map[string]string `yaml:"match"`
	Rule  string            `yaml:"rule"`
}

type journeyExitFile struct {
	Events []string `yaml:"events"`
	Rule   string   `yaml:"rule"`
}

type journeyStepFile struct {
	Action string `yaml:"action"`
	Wait   string `yaml:"wait"`
}

// decodeCatalog parses data into f and appends every structural problem
// (syntax, unknown fields, wrong types) to errs, with paths. Decoding is
// lenient so that one misspelt key does not hide the other mistakes of the
// file: unknown keys are reported and skipped, values of the wrong shape are
// reported and left at their zero value, and the caller goes on to check
// the meaning of the rest. It returns false when nothing could be decoded.
func decodeCatalog(data []byte, f *catalogFile, errs *errList) bool {
	return decodeYAML(data, f, "catalog", errs)
}

// DecodeYAML decodes data (YAML or JSON) into the struct v points to as the
// catalog is decoded: leniently, returning every unknown key (with the
// closest known name) and every value of the wrong shape as a *PathError
// with its line and column in the file called name. Values of the wrong
// shape are left at their zero value; the rest is decoded. decoded is false
// when nothing could be (a syntax error, an empty file, not a mapping).
func DecodeYAML(name string, data []byte, v any) (decoded bool, errs []error) {
	var l errList
	decoded = decodeYAML(data, v, "file", &l)
	l.place(name, data, nil)
	return decoded, l.errs
}

func decodeYAML(data []byte, v any, what string, errs *errList) bool {
	var tree any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			p := ye.GetToken().Position
			errs.addAt(p.Line, p.Column, "cannot parse: %s", oneLine(ye.GetMessage()))
		} else {
			errs.add("", "cannot parse: %s", oneLine(err.Error()))
		}
		return false
	}
	if tree == nil {
		errs.add("", "empty %s", what)
		return false
	}
	clean, ok := checkKeys(tree, reflect.TypeOf(v).Elem(), "", errs)
	if !ok {
		return false
	}
	src := data
	if len(errs.muted) > 0 {
		// Some values had the wrong shape: decode the tree without them.
		b, err := yaml.Marshal(clean)
		if err != nil {
			errs.add("", "cannot decode: %s", oneLine(err.Error()))
			return false
		}
		src = b
	}
	if err := yaml.Unmarshal(src, v); err != nil {
		errs.add("", "cannot decode: %s", oneLine(err.Error()))
		return false
	}
	return true
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// checkKeys walks a decoded YAML tree beside the Go type it will decode into
// and reports unknown keys and mismatched shapes, all at once. It returns
// the tree without unknown keys and with values of the wrong shape removed
// (nil in lists, so that indices keep their meaning), and false when v
// itself has the wrong shape; the paths of removed values are muted so
// that the checks of meaning do not report them again.
func checkKeys(v any, t reflect.Type, path string, errs *errList) (any, bool) {
	if v == nil {
		return nil, true
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	bad := func(format string, args ...any) (any, bool) {
		errs.add(path, format, args...)
		errs.mute(path)
		return nil, false
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("want a mapping, got %s", yamlKind(v))
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			fields[tag] = t.Field(i).Type
			names = append(names, tag)
		}
		out := make(map[string]any, len(m))
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				errs.addKey(path, k, "unknown field %q%s", k, didYouMean(k, names))
				continue
			}
			if c, ok := checkKeys(m[k], ft, join(path, k), errs); ok {
				out[k] = c
			}
		}
		return out, true
	case reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			return bad("want a list, got %s", yamlKind(v))
		}
		out := make([]any, len(s))
		for i, e := range s {
			out[i], _ = checkKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
		return out, true
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return bad("want a mapping, got %s", yamlKind(v))
		}
		out := make(map[string]any, len(m))
		for _, k := range sortedKeys(m) {
			if c, ok := checkKeys(m[k], t.Elem(), join(path, k), errs); ok {
				out[k] = c
			}
		}
		return out, true
	case reflect.String:
		switch v.(type) {
		case string:
		case uint64, int64, float64, bool:
			// scalars are accepted where strings are expected (e.g. a date)
		default:
			return bad("want a string, got %s", yamlKind(v))
		}
	case reflect.Int:
		switch n := v.(type) {
		case int64:
		case uint64:
			if n > math.MaxInt64 {
				return bad("number %d is too large", n)
			}
		case float64:
			if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
				return bad("want a whole number, got %v", n)
			}
		default:
			return bad("want a number, got %s", yamlKind(v))
		}
	case reflect.Float64:
		switch v.(type) {
		case uint64, int64, float64:
		default:
			return bad("want a number, got %s", yamlKind(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return bad("want true or false, got %s", yamlKind(v))
		}
	}
	return v, true
}

func yamlKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case uint64, int64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// errList collects load errors with their paths.
// A problem found again (a group's rule compiled for each of its actions)
// is reported once.
type errList struct {
	errs []error
	seen map[string]bool
	// muted are the paths of values dropped for their shape: their problem
	// is reported once, and checks of meaning below them are not.
	muted map[string]bool
	// unlisted counts the problems beyond MaxProblems.
	unlisted int
}

// MaxProblems is the most problems listed for one file; the rest are
// counted. It bounds the work a file of thousands of mistakes costs.
const MaxProblems = 200

func (e *errList) add(path, format string, args ...any) {
	var re *ruleError
	if len(args) == 1 && format == "%v" {
		if err, ok := args[0].(error); ok && errors.As(err, &re) && re.Error() == err.Error() {
			// A rule's problem at a column of its text: placed in the
			// file when the rule is a one-line scalar (see place).
			e.push(&PathError{Path: path, problem: re.msg, ruleCol: re.col})
			return
		}
	}
	e.push(&PathError{Path: path, problem: fmt.Sprintf(format, args...)})
}

// addKey reports a problem with the key of a mapping at path, such as an
// unknown field: its position is the key's.
func (e *errList) addKey(path, key, format string, args ...any) {
	e.push(&PathError{Path: path, key: key, problem: fmt.Sprintf(format, args...)})
}

// addAt reports a problem at a known line and column of the file.
func (e *errList) addAt(line, col int, format string, args ...any) {
	e.push(&PathError{Line: line, Column: col, problem: fmt.Sprintf(format, args...)})
}

func (e *errList) push(pe *PathError) {
	if e.isMuted(pe.Path) {
		return // a consequence of a problem reported already
	}
	pe.Msg = pe.problem
	if pe.Path != "" {
		pe.Msg = pe.Path + ": " + pe.problem
	}
	id := fmt.Sprintf("%s\x00%s\x00%d", pe.Msg, pe.key, pe.ruleCol)
	if e.seen[id] {
		return
	}
	if e.seen == nil {
		e.seen = map[string]bool{}
	}
	e.seen[id] = true
	if len(e.errs) >= MaxProblems {
		e.unlisted++
		return
	}
	e.errs = append(e.errs, pe)
}

func (e *errList) mute(path string) {
	if e.muted == nil {
		e.muted = map[string]bool{}
	}
	e.muted[path] = true
}

// isMuted reports whether path or one of its ancestors is muted.
func (e *errList) isMuted(path string) bool {
	if len(e.muted) == 0 {
		return false
	}
	for {
		if e.muted[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return e.muted[""]
		}
		path = path[:i]
	}
}

// PathError is one catalog problem; Path locates it in the file
// ("actions[12].rules.eligible[0]"), empty for the whole file; Line and
// Column (1-based, 0 when unknown) locate it in the text.
type PathError struct {
	Path   string
	Line   int
	Column int
	// Msg is the problem as Error returns it: the file, line and column,
	// the action, group or journey by id and the path inside it, e.g.
	//   catalog.yaml:212:9: action "xs_kids": rules.eligible[0]: unknown field "tenure_dayz" (did you mean "tenure_days"?)
	Msg string

	problem string // the problem without its place
	key     string // the key of the mapping at Path the problem is about
	ruleCol int    // the column in the rule's text, 0 if none
}

// Error returns the place and the problem.
func (e *PathError) Error() string { return e.Msg }

// place fills in the errors' lines and columns from the catalog's syntax
// tree, names actions, groups and journeys by id, and orders the errors as
// they appear in the file (problems of the whole file first).
func (e *errList) place(name string, data []byte, f *catalogFile) {
	place(name, data, f, e.errs)
	if e.unlisted > 0 {
		msg := fmt.Sprintf("%d more problems not listed", e.unlisted)
		if name != "" {
			msg = name + ": " + msg
		}
		e.errs = append(e.errs, &PathError{Msg: msg, problem: msg})
		e.unlisted = 0
	}
}

func place(name string, data []byte, f *catalogFile, errs []error) {
	file, err := parser.ParseBytes(data, 0)
	var root ast.Node
	if err == nil && len(file.Docs) > 0 {
		root = file.Docs[0].Body
	}
	for _, err := range errs {
		pe := err.(*PathError)
		problem := pe.problem
		if pe.Line == 0 && root != nil {
			if n := locate(root, pe.Path, pe.key); n != nil {
				pe.Line, pe.Column = position(n)
				if pe.ruleCol > 0 {
					if off, ok := textOffset(n, pe.ruleCol); ok {
						pe.Column += off
					} else {
						problem = fmt.Sprintf("%s (column %d of the rule)", problem, pe.ruleCol)
					}
				}
			}
		}
		var b strings.Builder
		if name != "" {
			b.WriteString(name)
			if pe.Line > 0 {
				fmt.Fprintf(&b, ":%d:%d", pe.Line, pe.Column)
			}
			b.WriteString(": ")
		}
		if s := subject(pe.Path, f); s != "" {
			b.WriteString(s)
			b.WriteString(": ")
		}
		b.WriteString(problem)
		pe.Msg = b.String()
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		pa, pb := a.(*PathError), b.(*PathError)
		if c := cmp.Compare(pa.Line, pb.Line); c != 0 {
			return c
		}
		return cmp.Compare(pa.Column, pb.Column)
	})
}

// subject renders a path for people: the action, group or journey it lies
// in by id ("action \"xs_kids\": rules.eligible[0]"), else the path.
func subject(path string, f *catalogFile) string {
	if f == nil {
		return path
	}
	for _, s := range []struct {
		list, what string
		id         func(i int) (string, bool)
	}{
		{"actions", "action", func(i int) (string, bool) { return idAt(f.Actions, i, func(a *actionFile) string { return a.ID }) }},
		{"groups", "group", func(i int) (string, bool) { return idAt(f.Groups, i, func(g *groupFile) string { return g.ID }) }},
		{"journeys", "journey", func(i int) (string, bool) { return idAt(f.Journeys, i, func(j *journeyFile) string { return j.ID }) }},
	} {
		rest, ok := strings.CutPrefix(path, s.list+"[")
		if !ok {
			continue
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			break
		}
		i, err := strconv.Atoi(rest[:end])
		if err != nil {
			break
		}
		id, ok := s.id(i)
		if !ok {
			break
		}
		inner := strings.TrimPrefix(rest[end+1:], ".")
		if inner == "" {
			return fmt.Sprintf("%s %q", s.what, id)
		}
		return fmt.Sprintf("%s %q: %s", s.what, id, inner)
	}
	return path
}

func idAt[T any](list []T, i int, id func(*T) string) (string, bool) {
	if i < 0 || i >= len(list) || id(&list[i]) == "" {
		return "", false
	}
	return id(&list[i]), true
}

// locate finds the node a path names, or its nearest ancestor when the
// path leads nowhere (a missing field is placed at its mapping); with key
// set, the key of that name in the mapping at path (an unknown field is
// placed on itself).
func locate(n ast.Node, path, key string) ast.Node {
	for _, s := range splitPath(path) {
		next := child(n, s)
		if next == nil {
			return n
		}
		n = next
	}
	if key != "" {
		for _, kv := range pairs(unwrap(n)) {
			if kv.Key != nil && keyString(kv.Key) == key {
				return kv.Key
			}
		}
	}
	return n
}

// splitPath splits "actions[3].rules.eligible[0]" into its keys and
// indices ("[3]" stays a segment of its own).
func splitPath(path string) []string {
	var segs []string
	for path != "" {
		switch i := strings.IndexAny(path, ".["); {
		case i < 0:
			segs, path = append(segs, path), ""
		case path[i] == '.':
			if i > 0 {
				segs = append(segs, path[:i])
			}
			path = path[i+1:]
		default:
			if i > 0 {
				segs = append(segs, path[:i])
			}
			j := strings.IndexByte(path[i:], ']')
			if j < 0 {
				return append(segs, path[i:])
			}
			segs, path = append(segs, path[i:i+j+1]), path[i+j+1:]
		}
	}
	return segs
}

// child returns the value under the key seg, or the list element when
// seg is "[i]"; the key itself when its value is empty; nil if none.
func child(n ast.Node, seg string) ast.Node {
	n = unwrap(n)
	if strings.HasPrefix(seg, "[") {
		i, err := strconv.Atoi(strings.Trim(seg, "[]"))
		if sq, ok := n.(*ast.SequenceNode); ok && err == nil && i >= 0 && i < len(sq.Values) {
			return sq.Values[i]
		}
		return nil
	}
	for _, kv := range pairs(n) {
		if kv.Key != nil && keyString(kv.Key) == seg {
			if kv.Value == nil || isNull(kv.Value) {
				return kv.Key
			}
			return kv.Value
		}
	}
	return nil
}

func pairs(n ast.Node) []*ast.MappingValueNode {
	switch n := n.(type) {
	case *ast.MappingNode:
		return n.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{n}
	}
	return nil
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

func isNull(n ast.Node) bool {
	_, ok := unwrap(n).(*ast.NullNode)
	return ok
}

func keyString(k ast.MapKeyNode) string {
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	if tk := k.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

// textOffset is how far right of a scalar's start column the col'th byte
// of its text is, when the text is written as is on one line (plain, or
// quoted without escapes); false otherwise.
func textOffset(n ast.Node, col int) (int, bool) {
	s, ok := unwrap(n).(*ast.StringNode)
	if !ok || s.Token == nil || s.Token.Position == nil || col < 1 || col > len(s.Value) {
		return 0, false
	}
	tk := s.Token
	switch origin := strings.TrimSpace(tk.Origin); origin {
	case s.Value:
		return col - 1, true
	case `"` + s.Value + `"`, "'" + s.Value + "'":
		return col, true
	}
	return 0, false
}

// position is where a node starts: a block mapping starts at its first key.
func position(n ast.Node) (line, col int) {
	n = unwrap(n)
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 {
		n = m.Values[0].Key
	}
	if kv, ok := n.(*ast.MappingValueNode); ok && kv.Key != nil {
		n = kv.Key
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}

// didYouMean suggests the closest of names to a misspelt one, or "".
func didYouMean(s string, names []string) string {
	best, bestD := "", 0
	for _, n := range names {
		d := editDistance(strings.ToLower(s), strings.ToLower(n))
		if s != n && d <= 2 && 2*d < len(s) && (best == "" || d < bestD) {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b (in bytes; the
// names compared are ASCII).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99 // not a misspelling worth suggesting for
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// CatalogError is every problem found while loading one catalog.
type CatalogError struct {
	Name string
	Errs []error
}

// Error lists the problems, one per line.
func (e *CatalogError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot load catalog %q: %d problem(s)", e.Name, len(e.Errs))
	for _, err := range e.Errs {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *CatalogError) Unwrap() []error { return e.Errs }

// sortedKeys returns a map's keys in order, so problems are reported in the
// same order on every load.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
