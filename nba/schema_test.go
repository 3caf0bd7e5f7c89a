package nba

import (
	"fmt"
	"testing"
)

func TestEnumString(t *testing.T) {
	f := func(v fmt.Stringer, want string) {
		t.Helper()
		if got := v.String(); got != want {
			t.Errorf("%T(%#v).String() = %q, want %q", v, v, got, want)
		}
	}
	f(KindNumber, "number")
	f(KindCategory, "category")
	f(KindTime, "time")
	f(KindBool, "bool")
	f(Kind(0), "kind(0)")
	f(Kind(255), "kind(255)")

	f(ScopeAction, "action")
	f(ScopeGroup, "group")
	f(ScopeChannel, "channel")
	f(Scope(0), "scope(0)")
	f(Scope(4), "scope(4)")

	f(Impression, "impression")
	f(Click, "click")
	f(Accept, "accept")
	f(Reject, "reject")
	f(Outcome(0), "outcome(0)")
	f(Outcome(5), "outcome(5)")

	f(JourneyActive, "active")
	f(JourneyCompleted, "completed")
	f(JourneyExited, "exited")
	f(JourneyStatus(0), "status(0)")
	f(JourneyStatus(200), "status(200)")

	// Every name a catalog uses must read back as its value.
	for k := KindNumber; k <= KindBool; k++ {
		if got, err := ParseKind(k.String()); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v; want %v", k.String(), got, err, k)
		}
	}
	for o := Impression; o <= Reject; o++ {
		if got, err := parseOutcome(o.String()); err != nil || got != o {
			t.Errorf("parseOutcome(%q) = %v, %v; want %v", o.String(), got, err, o)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = JourneyExited.String() }); n != 0 {
		t.Errorf("JourneyStatus.String allocates %v times, want 0", n)
	}
}
