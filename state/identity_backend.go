package state

import (
	"context"
	"errors"
)

// Stitched is a Backend whose reads and writes follow merged profiles: a
// read of a profile merged into another reads the other; a write refused
// because its profile is being merged (MovedError) finishes the merge and
// is made on the profile that kept the state, so no write is lost to a
// merge. Without identity configured it adds one branch per read.
type Stitched struct {
	IdentityBackend
	x *Identities
}

// Stitched returns the backend that follows merges.
func (x *Identities) Stitched() *Stitched { return &Stitched{IdentityBackend: x.b, x: x} }

// Identities returns the identity layer.
func (s *Stitched) Identities() *Identities { return s.x }

// View implements Reader.
func (s *Stitched) View(customer []byte, v *View) bool {
	ok := s.IdentityBackend.View(customer, v)
	for range 4 {
		if !ok || v.c.ident == nil {
			return ok
		}
		to, merging := v.c.Moved()
		if to == "" || merging {
			return ok // during a merge the frozen state is still right
		}
		ok = s.IdentityBackend.View([]byte(to), v)
	}
	return ok
}

// Load implements Backend.
func (s *Stitched) Load(ctx context.Context, customer []byte, v *View) (bool, error) {
	ok, err := s.IdentityBackend.Load(ctx, customer, v)
	for range 4 {
		if err != nil || !ok || v.c.ident == nil {
			return ok, err
		}
		to, merging := v.c.Moved()
		if to == "" || merging {
			return ok, err
		}
		ok, err = s.IdentityBackend.Load(ctx, []byte(to), v)
	}
	return ok, err
}

// redirect runs write until it is not refused by a merge, finishing the
// merge and moving the items of the merged profile (rename) each time.
func (s *Stitched) redirect(write func() error, rename func(from, to string)) error {
	for range 8 {
		err := write()
		var mv *MovedError
		if !errors.As(err, &mv) {
			return err
		}
		s.x.moved.Add(1)
		if !mv.Merging {
			rename(mv.From, mv.To)
			continue
		}
		ctx := context.Background()
		err = s.x.finish(ctx, mv.From, mv.To, mv.Receipt)
		if err != nil && !errors.Is(err, errRetry) && !errors.Is(err, ErrIdentityConflict) {
			return err
		}
		// Finished (by this call or another): the write follows the
		// forward; refused and unmarked: it goes where it was sent.
		c, err := s.x.b.Get(ctx, mv.From)
		if err != nil {
			return err
		}
		if to, merging := c.Moved(); to != "" && !merging {
			rename(mv.From, to)
		}
	}
	return &Error{Kind: ErrConflict, Err: errors.New("cannot write: the customer's profile keeps moving")}
}

// RecordContact implements Writer.
func (s *Stitched) RecordContact(cs ...Contact) error {
	renamed := false
	return s.redirect(func() error { return s.IdentityBackend.RecordContact(cs...) }, func(from, to string) {
		if !renamed {
			cs, renamed = append([]Contact(nil), cs...), true
		}
		for i := range cs {
			if cs[i].Customer == from {
				cs[i].Customer = to
			}
		}
	})
}

// RecordContactOnce implements Backend.
func (s *Stitched) RecordContactOnce(c Contact) (dup bool, err error) {
	err = s.redirect(func() (err error) { dup, err = s.IdentityBackend.RecordContactOnce(c); return err }, func(from, to string) { c.Customer = to })
	return dup, err
}

// ApplyEvent implements Writer.
func (s *Stitched) ApplyEvent(es ...Event) error {
	renamed := false
	return s.redirect(func() error { return s.IdentityBackend.ApplyEvent(es...) }, func(from, to string) {
		if !renamed {
			es, renamed = append([]Event(nil), es...), true
		}
		for i := range es {
			if es[i].Customer == from {
				es[i].Customer = to
			}
		}
	})
}

// ApplyEventOnce implements Backend.
func (s *Stitched) ApplyEventOnce(e Event) (dup bool, err error) {
	err = s.redirect(func() (err error) { dup, err = s.IdentityBackend.ApplyEventOnce(e); return err }, func(from, to string) { e.Customer = to })
	return dup, err
}

// SetJourney implements Writer.
func (s *Stitched) SetJourney(us ...JourneyUpdate) error {
	renamed := false
	return s.redirect(func() error { return s.IdentityBackend.SetJourney(us...) }, func(from, to string) {
		if !renamed {
			us, renamed = append([]JourneyUpdate(nil), us...), true
		}
		for i := range us {
			if us[i].Customer == from {
				us[i].Customer = to
			}
		}
	})
}

// SetConsent implements ConsentWriter: a consent change follows the
// profile its customer was merged into, as contacts do.
func (s *Stitched) SetConsent(cs ...Consent) (dups int, err error) {
	renamed := false
	err = s.redirect(func() (err error) { dups, err = s.IdentityBackend.SetConsent(cs...); return err }, func(from, to string) {
		if !renamed {
			cs, renamed = append([]Consent(nil), cs...), true
		}
		for i := range cs {
			if cs[i].Customer == from {
				cs[i].Customer = to
			}
		}
	})
	return dups, err
}

// Reserve implements Backend: a reservation of an exact cap is made on the
// profile its customer was merged into, where the caps count.
func (s *Stitched) Reserve(rs ...Reservation) error {
	renamed := false
	return s.redirect(func() error { return s.IdentityBackend.Reserve(rs...) }, func(from, to string) {
		if !renamed {
			rs, renamed = append([]Reservation(nil), rs...), true
		}
		for i := range rs {
			if rs[i].Customer == from {
				rs[i].Customer = to
			}
		}
	})
}
