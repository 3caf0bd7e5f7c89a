package sidecar

import (
	"errors"
	"strings"
	"time"

	"nba/nba"
	"nba/nba/server"
	"nba/state"
	redisstate "nba/state/redis"
)

// maxMoveAttempts bounds the decisions made for one request whose journey
// moves lost to another decision's: the first and two more, each from the
// state as the lost move found it.
const maxMoveAttempts = 3

// commit makes, before the decision d is answered, the writes its answer
// depends on: the reservations of its exact caps (reserve.go, when
// reserve) and then its journey changes (d.Effects), as one conditional
// write made only if the customer is still where the decision found it in
// each journey (state.JourneyUpdate.Conditional). A journey step is so
// delivered by one decision only, whether the others run in this process
// or on another replica of the same state: a decision whose move loses
// (ErrConflict) is decided again from the state that refused it, which
// gives the journey's next state (the step already given: not due, or the
// next one), at most maxMoveAttempts times in all. When the move cannot be
// written (the state unavailable, or still conflicting on the last
// attempt), the journey steps are removed from d: a step fails closed,
// never given twice. A step whose action the reservation removed is not
// moved: it stays due. A dry run writes nothing.
//
// A reservation made for an action that the decision made again no longer
// gives keeps its slot until it expires (Config.ReserveTTL): an exact cap
// then errs on the safe side.
func (s *Sidecar) commit(eng *nba.Engine, sc *scratch, req *server.DecideRequest, d *nba.Decision, now time.Time, reserve bool) error {
	var customer string
	for attempt := 1; ; attempt++ {
		if reserve {
			if err := s.reserve(sc, req, d, now); err != nil {
				return err
			}
		}
		if req.DryRun || len(d.Effects) == 0 || s.erasedCached(req.CustomerID) {
			// An erased customer is decided as anonymous: nothing of
			// its decisions is written back.
			return nil
		}
		if customer == "" {
			customer = strings.Clone(req.CustomerID) // borrowed from the request; the store may keep it
		}
		sc.effects = sc.effects[:0]
		for _, e := range d.Effects {
			if (e.Reason == "step" || e.Reason == "complete") && !givesStep(d, e.Journey) {
				continue // its action was removed (an exact cap not reserved): the step is still due
			}
			at := e.LastStepAt
			if at.IsZero() {
				at = now
			}
			sc.effects = append(sc.effects, state.JourneyUpdate{Customer: customer, Journey: e.Journey, Step: e.Step, Status: state.JourneyStatus(e.Status),
				At: at, Conditional: true, FromStep: e.FromStep, FromStatus: state.JourneyStatus(e.FromStatus)})
		}
		if len(sc.effects) == 0 {
			return nil
		}
		err := s.state.SetJourney(sc.effects...)
		if err == nil {
			return nil
		}
		if errors.Is(err, redisstate.ErrReplicasShort) {
			// The move is on the primary, only not yet on enough
			// replicas: the step is this decision's. Withholding it
			// would leave the journey past a step no one sent. Not a
			// failed move: logged only.
			if s.stateLogDue() {
				s.log.Warn("journey change written on the primary but not confirmed by enough replicas; its steps are given", "error", err)
			}
			return nil
		}
		conflict := state.KindOf(err) == state.ErrConflict
		if conflict {
			s.effectsConflicts.Add(1)
		} else {
			s.effectsFailed.Add(1)
			if state.KindOf(err) != state.ErrUnavailable || s.stateLogDue() {
				s.log.Warn("cannot write journey change; its steps are not given", "error", err)
			}
		}
		if !conflict || attempt == maxMoveAttempts {
			s.dropSteps(d, conflict)
			return nil
		}
		if err := eng.Decide(&sc.req, d); err != nil {
			return err
		}
	}
}

// givesStep reports whether d gives an action as a step of journey j.
func givesStep(d *nba.Decision, j string) bool {
	for i := range d.Actions {
		if d.Actions[i].Journey == j {
			return true
		}
	}
	return false
}

// dropSteps removes from d the actions given as journey steps, whose move
// could not be written, and its journey changes, and explains why.
func (s *Sidecar) dropSteps(d *nba.Decision, conflict bool) {
	why := "journey step not recorded: customer state unavailable"
	if conflict {
		why = "journey step not recorded: concurrent decisions moved the journey"
	}
	out := d.Actions[:0]
	for _, c := range d.Actions {
		if c.Journey == "" {
			out = append(out, c)
			continue
		}
		s.effectsDropped.Add(1)
		for i := range d.Explain {
			if e := &d.Explain[i]; e.Action == c.Action.ID && e.Stage == nba.StageChosen {
				e.Stage, e.Reason, e.Rank = nba.StageJourney, why, 0
			}
		}
	}
	clear(d.Actions[len(out):])
	d.Actions = out
	d.Effects = d.Effects[:0]
}
