package state

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// FieldType is the type of a profile overlay field.
type FieldType uint8

// Overlay field types.
const (
	TypeNumber   FieldType = iota + 1 // float64
	TypeTime                          // a point in time (unix seconds in configs and attributes)
	TypeBool                          // true or false
	TypeCategory                      // a string, interned
)

var typeNames = [...]string{"", "number", "time", "bool", "category"}

// String returns the type's name as written in Mappings.
func (t FieldType) String() string {
	if t != 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

func parseFieldType(s string) (FieldType, bool) {
	for i, n := range typeNames[1:] {
		if n == s {
			return FieldType(i + 1), true
		}
	}
	return 0, false
}

// Mappings declare how events change profile fields, e.g. in YAML:
//
//	fields: {last_order_value: number, tier: category}
//	events:
//	  purchase:
//	    - {set: last_order_value, from: amount}
//	    - {incr: orders_30d}
//	    - {incr: spend_30d, from: amount}
//	    - {stamp: last_purchase_at}
//	  signup:
//	    - {set: tier, value: bronze}
//
// A field's type is declared in Fields or inferred from its operations
// (incr: number, stamp: time, set with a constant value: the constant's
// type); set from an attribute needs a declared or inferable type.
//
// A new feature snapshot (Backend.Compact) supersedes the overlay values of
// the fields it carries (Config.SnapshotFields) stamped at or before its
// as-of time. Other fields keep their values across snapshots unless they
// are listed in ResetOnSnapshot, e.g. a counter of the orders since the
// snapshot:
//
//	reset_on_snapshot: [orders_since_snapshot]
type Mappings struct {
	Fields map[string]string `yaml:"fields,omitempty" json:"fields,omitempty"`
	Events map[string][]Op   `yaml:"events" json:"events"`
	// ResetOnSnapshot lists fields that a new snapshot resets even though
	// it does not carry them: their values stamped at or before the
	// snapshot's as-of time are hidden, and an incr counts again from 0.
	ResetOnSnapshot []string `yaml:"reset_on_snapshot,omitempty" json:"reset_on_snapshot,omitempty"`
}

// Equal reports whether m and o compile to the same fields (names, types,
// slots, reset rules) and the same operations per event type, in order,
// with the same attributes and constants. It compares meaning, not
// spelling: a constant written 2 or 2.0, or a by given through a different
// pointer, is the same. A mapping that does not compile equals nothing.
func (m Mappings) Equal(o Mappings) bool {
	a, err := compile(m, nil)
	if err != nil {
		return false
	}
	b, err := compile(o, nil)
	if err != nil {
		return false
	}
	return a.equal(b)
}

// equal reports whether c and d are the same compiled mappings.
func (c *compiled) equal(d *compiled) bool {
	if !slices.Equal(c.fields, d.fields) || len(c.events) != len(d.events) || !consentOpsEqual(c.consents, d.consents) {
		return false
	}
	for ev, ops := range c.events {
		other, ok := d.events[ev]
		if !ok || !slices.Equal(ops, other) {
			return false
		}
	}
	return true
}

// Op is one field operation of an event mapping. Exactly one of Set, Incr
// and Stamp names the field.
type Op struct {
	// Set assigns the field from the attribute From or the constant Value.
	Set string `yaml:"set,omitempty" json:"set,omitempty"`
	// Incr adds to a number field: the attribute From, else By, else 1.
	Incr string `yaml:"incr,omitempty" json:"incr,omitempty"`
	// Stamp sets a time field to the event's time.
	Stamp string   `yaml:"stamp,omitempty" json:"stamp,omitempty"`
	From  string   `yaml:"from,omitempty" json:"from,omitempty"`
	Value any      `yaml:"value,omitempty" json:"value,omitempty"`
	By    *float64 `yaml:"by,omitempty" json:"by,omitempty"`
	// Consent, "channel.purpose", sets the customer's consent for the
	// purpose on the channel (consent.go: EventConsents) to Status
	// ("granted" or "denied") or to the attribute From (a string
	// "granted"/"denied" or a bool, true granted), at the event's time,
	// with source "event:<type>".
	Consent string `yaml:"consent,omitempty" json:"consent,omitempty"`
	Status  string `yaml:"status,omitempty" json:"status,omitempty"`
}

// Slot indexes an overlay field; resolve it once with Model.Slot.
type Slot int

// FieldInfo describes one overlay field.
type FieldInfo struct {
	Name string
	Type FieldType
	Slot Slot
	// ResetOnSnapshot is set when a new snapshot hides the field's values
	// stamped at or before its as-of time: the snapshot carries the field
	// (Config.SnapshotFields) or Mappings.ResetOnSnapshot lists it.
	ResetOnSnapshot bool
}

type opKind uint8

const (
	opSet opKind = iota + 1
	opIncr
	opStamp
)

type compiledOp struct {
	kind  opKind
	slot  Slot
	typ   FieldType
	attr  string // "" for a constant
	konst value  // the constant of set, or the amount of incr
}

// compiled is the validated, immutable form of Mappings.
type compiled struct {
	fields   []FieldInfo
	slots    map[string]Slot
	events   map[string][]compiledOp
	consents map[string][]consentOp // consent.go
}

const maxFields = 1 << 12

// compile validates m. Errors name the path of the offending entry.
// snapshotFields are the fields a feature snapshot carries: those that are
// overlay fields reset on a new snapshot; the others are ignored.
func compile(m Mappings, snapshotFields []string) (*compiled, error) {
	c := &compiled{slots: map[string]Slot{}, events: map[string][]compiledOp{}, consents: map[string][]consentOp{}}
	types := map[string]FieldType{}
	for _, name := range slices.Sorted(mapsKeys(m.Fields)) {
		t, ok := parseFieldType(m.Fields[name])
		if !ok {
			return nil, fmt.Errorf("fields.%s: unknown type %q (want number, time, bool or category)", name, m.Fields[name])
		}
		if name == "" {
			return nil, fmt.Errorf("fields: empty field name")
		}
		types[name] = t
	}
	infer := func(path, field string, t FieldType) error {
		if prev, ok := types[field]; ok && prev != t {
			return fmt.Errorf("%s: field %q is %s, not %s", path, field, prev, t)
		}
		types[field] = t
		return nil
	}
	// First pass: validate shapes and infer types, in a stable order.
	evNames := slices.Sorted(mapsKeys(m.Events))
	for _, ev := range evNames {
		if ev == "" {
			return nil, fmt.Errorf("events: empty event type")
		}
		for i, op := range m.Events[ev] {
			path := fmt.Sprintf("events.%s[%d]", ev, i)
			if op.Consent != "" || op.Status != "" {
				co, err := compileConsentOp(path, op)
				if err != nil {
					return nil, err
				}
				c.consents[ev] = append(c.consents[ev], co)
				continue
			}
			n := 0
			for _, f := range []string{op.Set, op.Incr, op.Stamp} {
				if f != "" {
					n++
				}
			}
			if n != 1 {
				return nil, fmt.Errorf("%s: want exactly one of set, incr, stamp", path)
			}
			switch {
			case op.Set != "":
				if (op.From == "") == (op.Value == nil) {
					return nil, fmt.Errorf("%s: set %q needs exactly one of from, value", path, op.Set)
				}
				if op.By != nil {
					return nil, fmt.Errorf("%s: by is only for incr", path)
				}
				if op.Value != nil {
					v, t, err := constant(op.Value)
					if err != nil {
						return nil, fmt.Errorf("%s: value: %w", path, err)
					}
					_ = v
					if err := infer(path, op.Set, t); err != nil {
						return nil, err
					}
				}
			case op.Incr != "":
				if op.Value != nil {
					return nil, fmt.Errorf("%s: incr takes from or by, not value", path)
				}
				if op.From != "" && op.By != nil {
					return nil, fmt.Errorf("%s: incr %q needs at most one of from, by", path, op.Incr)
				}
				if op.By != nil && (math.IsNaN(*op.By) || math.IsInf(*op.By, 0)) {
					return nil, fmt.Errorf("%s: by must be finite", path)
				}
				if err := infer(path, op.Incr, TypeNumber); err != nil {
					return nil, err
				}
			case op.Stamp != "":
				if op.From != "" || op.Value != nil || op.By != nil {
					return nil, fmt.Errorf("%s: stamp takes no from, value or by", path)
				}
				if err := infer(path, op.Stamp, TypeTime); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, name := range slices.Sorted(mapsKeys(types)) {
		if len(c.fields) == maxFields {
			return nil, fmt.Errorf("fields: more than %d fields", maxFields)
		}
		s := Slot(len(c.fields))
		c.fields = append(c.fields, FieldInfo{Name: name, Type: types[name], Slot: s,
			ResetOnSnapshot: slices.Contains(snapshotFields, name) || slices.Contains(m.ResetOnSnapshot, name)})
		c.slots[name] = s
	}
	for i, name := range m.ResetOnSnapshot {
		if _, ok := types[name]; !ok {
			return nil, fmt.Errorf("reset_on_snapshot[%d]: unknown field %q", i, name)
		}
	}
	// Second pass: compile.
	for _, ev := range evNames {
		var ops []compiledOp
		for i, op := range m.Events[ev] {
			if op.Consent != "" || op.Status != "" {
				continue // compiled in the first pass
			}
			path := fmt.Sprintf("events.%s[%d]", ev, i)
			var co compiledOp
			field := op.Set + op.Incr + op.Stamp
			t, ok := types[field]
			if !ok {
				return nil, fmt.Errorf("%s: set %q from attribute %q: declare the field's type under fields", path, field, op.From)
			}
			co.slot, co.typ, co.attr = c.slots[field], t, op.From
			switch {
			case op.Set != "":
				co.kind = opSet
				if op.Value != nil {
					co.konst, _, _ = constant(op.Value)
				}
			case op.Incr != "":
				co.kind = opIncr
				co.konst.num = 1
				if op.By != nil {
					co.konst.num = *op.By
				}
			default:
				co.kind = opStamp
			}
			ops = append(ops, co)
		}
		c.events[ev] = ops
	}
	return c, nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// constant converts a configured constant. Time constants are not supported:
// a time field is stamped or set from an attribute.
func constant(x any) (value, FieldType, error) {
	switch v := x.(type) {
	case bool:
		return boolValue(v), TypeBool, nil
	case string:
		return value{str: v}, TypeCategory, nil
	}
	if f, ok := toFloat(x); ok {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return value{}, 0, fmt.Errorf("number %v is not finite", f)
		}
		return value{num: f}, TypeNumber, nil
	}
	return value{}, 0, fmt.Errorf("unsupported constant %T (want number, bool or string)", x)
}

func boolValue(b bool) value {
	if b {
		return value{num: 1}
	}
	return value{}
}

func toFloat(x any) (float64, bool) {
	switch v := x.(type) {
	case float64:
		return v, true
	case float32:
		return float64(v), true
	case int:
		return float64(v), true
	case int8:
		return float64(v), true
	case int16:
		return float64(v), true
	case int32:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint:
		return float64(v), true
	case uint8:
		return float64(v), true
	case uint16:
		return float64(v), true
	case uint32:
		return float64(v), true
	case uint64:
		return float64(v), true
	}
	return 0, false
}

// attrValue converts an event attribute to a value of type t.
func attrValue(x any, t FieldType) (value, error) {
	switch t {
	case TypeNumber:
		if f, ok := toFloat(x); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return value{num: f}, nil
		}
	case TypeBool:
		if b, ok := x.(bool); ok {
			return boolValue(b), nil
		}
	case TypeCategory:
		if s, ok := x.(string); ok {
			return value{str: s}, nil
		}
	case TypeTime:
		switch v := x.(type) {
		case time.Time:
			return value{unix: v.UnixNano()}, nil
		case string:
			tm, err := time.Parse(time.RFC3339Nano, v)
			if err == nil {
				return value{unix: tm.UnixNano()}, nil
			}
		default:
			if f, ok := toFloat(x); ok && math.Abs(f) < 1e11 {
				return value{unix: int64(f * 1e9)}, nil
			}
		}
	}
	return value{}, fmt.Errorf("cannot use %T %v as %s", x, x, t)
}
