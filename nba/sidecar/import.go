package sidecar

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"nba/state"
)

// importBatch is how many contacts one durable write carries on import.
const importBatch = 4096

// ImportContacts records contact history from CSV with the header
// customer_id,action,group,channel,outcome,at (at in RFC 3339; outcome
// impression, click, accept, reject, convert or dismiss; an optional value
// column). It is for migrating history into a new state directory; the
// records are durable when it returns. It returns how many it recorded.
func (s *Sidecar) ImportContacts(r io.Reader) (int, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return 0, fmt.Errorf("cannot import contacts: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, need := range []string{"customer_id", "action", "channel", "outcome", "at"} {
		if _, ok := col[need]; !ok {
			return 0, fmt.Errorf("cannot import contacts: header has no %q column", need)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	batch := make([]state.Contact, 0, importBatch)
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := s.state.RecordContact(batch...); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("cannot import contacts: %w", err)
		}
		o, err := state.ParseOutcome(get(rec, "outcome"))
		if err != nil {
			return n, fmt.Errorf("cannot import contacts: line %d: %w", line, err)
		}
		at, err := time.Parse(time.RFC3339, get(rec, "at"))
		if err != nil {
			return n, fmt.Errorf("cannot import contacts: line %d: at: %w", line, err)
		}
		c := state.Contact{Customer: get(rec, "customer_id"), Action: get(rec, "action"), Group: get(rec, "group"),
			Channel: get(rec, "channel"), Outcome: o, At: at}
		if v := get(rec, "value"); v != "" {
			if c.Value, err = strconv.ParseFloat(v, 64); err != nil {
				return n, fmt.Errorf("cannot import contacts: line %d: value: %w", line, err)
			}
		}
		batch = append(batch, c)
		if len(batch) == importBatch {
			if err := flush(); err != nil {
				return n, fmt.Errorf("cannot import contacts: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return n, fmt.Errorf("cannot import contacts: %w", err)
	}
	return n, nil
}
