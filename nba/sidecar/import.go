package sidecar

import (
	"errors"
	"fmt"
	"io"
	"time"

	"nba/nba"
	"nba/state"
	"nba/state/stateio"
)

// ImportContacts loads contact history (CSV or JSON Lines, as package
// stateio reads and bench/bundlegen writes: customer_id, action, group,
// channel, outcome, at, and optionally value and id) or exported customer
// states into the sidecar's state, for migrating history into a new state
// directory. The records are durable when it returns. It returns how many
// contacts it recorded; any refused row is an error naming the first.
// Contact rows are checked as feedback is (ContactCheck, with the served
// catalog and the default allowance of a day ahead).
func (s *Sidecar) ImportContacts(r io.Reader) (int, error) {
	target, ok := unwrapState(s.state).(stateio.Target)
	if !ok {
		return 0, fmt.Errorf("cannot import contacts: the state backend %T cannot import", s.state)
	}
	var first error
	n, err := stateio.Import(r, target, stateio.Options{Refused: func(line int, why error) {
		if first == nil {
			first = fmt.Errorf("line %d: %w", line, why)
		}
	}, CheckContact: ContactCheck(s.parts.Load().catalog, s.now(), 24*time.Hour)})
	if err != nil {
		return n.Contacts, err
	}
	if first != nil {
		return n.Contacts, fmt.Errorf("cannot import contacts: %d rows refused; %w", n.Refused, first)
	}
	return n.Contacts, nil
}

// MinContactTime is the earliest contact time an import accepts: the
// earliest ts feedback accepts by default (nba serve -http.minTime).
var MinContactTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ContactCheck returns the check of imported contact rows
// (stateio.Options.CheckContact): what HTTP feedback refuses is refused (an
// action not in cat, a group not the action's, a channel cat does not
// configure, a time before MinContactTime or more than ahead after now),
// and a row without a group gets its action's, as feedback records it.
// Each error names the column or key at fault, not its value.
func ContactCheck(cat *nba.Catalog, now time.Time, ahead time.Duration) func(*state.Contact) error {
	latest := now.Add(ahead)
	return func(c *state.Contact) error {
		a := cat.Action(c.Action)
		switch {
		case a == nil:
			return errors.New("action: not in the bundle's catalog")
		case c.Group != "" && c.Group != a.Group:
			return errors.New("group: not the action's group in the catalog")
		case c.Channel != "" && cat.ChannelIndex(c.Channel) < 0:
			return errors.New("channel: not a channel the catalog configures")
		case c.At.Before(MinContactTime):
			return fmt.Errorf("at: before %s, the earliest time feedback accepts", MinContactTime.Format(time.DateOnly))
		case c.At.After(latest):
			return fmt.Errorf("at: more than %v after now, the latest time feedback accepts", ahead)
		}
		c.Group = a.Group
		return nil
	}
}
