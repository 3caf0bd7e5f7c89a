package nba

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
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
// (syntax, unknown fields, wrong types) to errs, with paths.
func decodeCatalog(data []byte, f *catalogFile, errs *errList) {
	var tree any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		errs.add("", "cannot parse: %s", oneLine(err.Error()))
		return
	}
	if tree == nil {
		errs.add("", "empty catalog")
		return
	}
	before := len(errs.errs)
	checkKeys(tree, reflect.TypeOf(*f), "", errs)
	if len(errs.errs) > before {
		return
	}
	if err := yaml.Unmarshal(data, f); err != nil {
		errs.add("", "cannot decode: %s", oneLine(err.Error()))
	}
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// checkKeys walks a decoded YAML tree beside the Go type it will decode into
// and reports unknown keys and mismatched shapes, all at once.
func checkKeys(v any, t reflect.Type, path string, errs *errList) {
	if v == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			errs.add(path, "want a mapping, got %s", yamlKind(v))
			return
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			fields[tag] = t.Field(i).Type
		}
		for _, k := range sortedKeys(m) {
			ft, ok := fields[k]
			if !ok {
				errs.add(path, "unknown field %q", k)
				continue
			}
			checkKeys(m[k], ft, join(path, k), errs)
		}
	case reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			errs.add(path, "want a list, got %s", yamlKind(v))
			return
		}
		for i, e := range s {
			checkKeys(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			errs.add(path, "want a mapping, got %s", yamlKind(v))
			return
		}
		for _, k := range sortedKeys(m) {
			checkKeys(m[k], t.Elem(), join(path, k), errs)
		}
	case reflect.String:
		switch v.(type) {
		case string:
		case uint64, int64, float64, bool:
			// scalars are accepted where strings are expected (e.g. a date)
		default:
			errs.add(path, "want a string, got %s", yamlKind(v))
		}
	case reflect.Int, reflect.Float64:
		switch v.(type) {
		case uint64, int64, float64:
		default:
			errs.add(path, "want a number, got %s", yamlKind(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			errs.add(path, "want true or false, got %s", yamlKind(v))
		}
	}
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
}

func (e *errList) add(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	if e.seen[msg] {
		return
	}
	if e.seen == nil {
		e.seen = map[string]bool{}
	}
	e.seen[msg] = true
	e.errs = append(e.errs, &PathError{Path: path, Msg: msg})
}

// PathError is one catalog problem; Path locates it in the file
// ("actions[12].rules.eligible[0]"), empty for the whole file.
type PathError struct {
	Path string
	Msg  string // includes the path
}

// Error returns the path and the problem.
func (e *PathError) Error() string { return e.Msg }

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
