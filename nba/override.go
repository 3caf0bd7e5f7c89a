package nba

import (
	"errors"
	"fmt"
	"math"
)

// What-if overrides: the studio's explorer asks how a decision would rank
// if an action's lever, weight or tier were different. An Overrides is
// compiled against one catalog into a table by action index and applied by
// one dry-run decision as it builds its candidates; the catalog itself is
// never changed, so nothing of an override outlives its request and no
// other decision sees it. A decision without overrides pays one nil check
// per candidate.

// MaxOverrideFactor bounds an overridden lever or weight: a what-if is a
// business weight, not a way to push a score to infinity.
const MaxOverrideFactor = 1e6

// ActionOverride changes how one action ranks in one decision; a nil field
// keeps the catalog's value.
type ActionOverride struct {
	Action string
	// Lever replaces the action's lever (a constant factor of its score).
	Lever *float64
	// Weight replaces the action's weight (C in P × C × V × L), which the
	// catalog may compute per customer.
	Weight *float64
	// Tier replaces the action's tier: 1..MaxTier pins it there whatever
	// its pin_when; 0 ranks it by its score.
	Tier *int
}

// Overrides is a set of ActionOverrides compiled against one catalog
// (Catalog.CompileOverrides). It is immutable and safe for concurrent use.
type Overrides struct {
	cat *Catalog
	by  []actionOverride // by action index; set false when not overridden
}

type actionOverride struct {
	set                          bool
	hasLever, hasWeight, hasTier bool
	lever, weight                float64
	tier                         int
}

// ErrStaleOverrides is returned by a decision whose Overrides were compiled
// against another catalog than the one serving (a reload came between):
// compile them again.
var ErrStaleOverrides = errors.New("cannot decide: overrides compiled against another catalog")

// CompileOverrides checks list against the catalog: every action must
// exist, appear once and change something; levers and weights must be
// finite, from 0 to MaxOverrideFactor; tiers from 0 to MaxTier.
func (c *Catalog) CompileOverrides(list []ActionOverride) (*Overrides, error) {
	ov := &Overrides{cat: c, by: make([]actionOverride, len(c.actions))}
	factor := func(what, id string, x *float64) (float64, error) {
		if x == nil {
			return 0, nil
		}
		if math.IsNaN(*x) || *x < 0 || *x > MaxOverrideFactor {
			return 0, fmt.Errorf("action %q: %s %v out of range [0, %g]", id, what, *x, float64(MaxOverrideFactor))
		}
		return *x, nil
	}
	for _, o := range list {
		i, ok := c.byID[o.Action]
		if !ok {
			return nil, fmt.Errorf("action %q is not in catalog %s%s", o.Action, c.version, didYouMean(o.Action, actionIDs(c)))
		}
		x := &ov.by[i]
		if x.set {
			return nil, fmt.Errorf("action %q is overridden twice", o.Action)
		}
		if o.Lever == nil && o.Weight == nil && o.Tier == nil {
			return nil, fmt.Errorf("action %q: an override needs lever, weight or tier", o.Action)
		}
		var err error
		x.set = true
		x.hasLever, x.hasWeight, x.hasTier = o.Lever != nil, o.Weight != nil, o.Tier != nil
		if x.lever, err = factor("lever", o.Action, o.Lever); err != nil {
			return nil, err
		}
		if x.weight, err = factor("weight", o.Action, o.Weight); err != nil {
			return nil, err
		}
		if o.Tier != nil {
			if *o.Tier < 0 || *o.Tier > MaxTier {
				return nil, fmt.Errorf("action %q: tier %d out of range [0, %d]", o.Action, *o.Tier, MaxTier)
			}
			x.tier = *o.Tier
		}
	}
	return ov, nil
}

// override returns the override of action ai, nil when none.
func (o *Overrides) override(ai int32) *actionOverride {
	if o == nil {
		return nil
	}
	if x := &o.by[ai]; x.set {
		return x
	}
	return nil
}
