package sidecar

import (
	"fmt"
	"io"

	"nba/state/stateio"
)

// ImportContacts loads contact history (CSV or JSON Lines, as package
// stateio reads and bench/bundlegen writes: customer_id, action, group,
// channel, outcome, at, and optionally value and id) or exported customer
// states into the sidecar's state, for migrating history into a new state
// directory. The records are durable when it returns. It returns how many
// contacts it recorded; any refused row is an error naming the first.
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
	}})
	if err != nil {
		return n.Contacts, err
	}
	if first != nil {
		return n.Contacts, fmt.Errorf("cannot import contacts: %d rows refused; %w", n.Refused, first)
	}
	return n.Contacts, nil
}
