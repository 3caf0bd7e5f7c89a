package server

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Backend is everything the server needs from the rest of the sidecar: the
// decision engine, the feedback and event log, customer state and the
// loaded bundle. The server decodes and validates requests, calls exactly
// one Backend method per request, and encodes the answer.
//
// Implementations must be safe for concurrent use. Requests and responses
// passed to them are pooled: their strings and slices are valid only until
// the method returns, and must be copied to be kept (strings.Clone,
// bytes.Clone). Decide should not allocate: it fills resp by appending to
// the slices it is given, which keep their capacity from request to request.
//
// Errors: return an *Error (see Invalidf, NotFoundf, NotReadyf,
// StateUnavailablef, Conflictf) to choose the
// status and code the caller sees; any other error is answered 500 internal
// and logged, so it must not contain customer ids or features.
type Backend interface {
	// Decide decides req into resp, which the server has reset. An unknown
	// customer is decided as anonymous, not refused. A backend that is not
	// ready returns NotReadyf.
	Decide(req *DecideRequest, resp *DecideResponse) error
	// Feedback records one response to a decision and returns only once the
	// event is durable: the server acknowledges it to the caller after.
	Feedback(fb *Feedback) error
	// Event records one customer event (a page view, a purchase, ...).
	Event(ev *Event) error
	// AppendCustomer appends the JSON object describing customer id
	// (profile, contact history, journey state, holdout membership) to dst.
	// An unknown customer is NotFoundf.
	AppendCustomer(dst []byte, id string) ([]byte, error)
	// AppendActions appends the catalog as served, a JSON value, to dst.
	AppendActions(dst []byte) ([]byte, error)
	// AppendStatus appends a JSON object for operators to dst: versions,
	// ages and last errors of what is loaded.
	AppendStatus(dst []byte) ([]byte, error)
	// Ready returns nil once catalog, model and snapshot are loaded and the
	// log replayed, and otherwise an error saying what is missing (an
	// *Error with status 503 chooses the code, e.g. state_unavailable). It
	// is called on every /readyz, so it must be cheap.
	Ready() error
	// Reload loads the bundle again; the last good one keeps serving if it
	// fails. ctx bounds how long it may take.
	Reload(ctx context.Context) error
}

// DecideRequest is one decoded POST /v1/decide request.
type DecideRequest struct {
	// DecisionID is assigned by the server, unique within the process and
	// across restarts with overwhelming probability (a random 64-bit prefix
	// chosen at start and a counter).
	DecisionID string
	CustomerID string // required, at most Config.MaxIDBytes
	Channel    string // required, at most Config.MaxIDBytes
	Placement  string // optional
	Limit      int    // 0 means the backend's default; at most Config.MaxLimit
	// Context holds the request's context fields in request order, keys
	// unique, at most Config.MaxFields of them. JSON nulls are left out.
	Context []Field
	Explain bool // the caller wants DecideResponse.Candidates
	DryRun  bool // decide but record nothing (no contact history, no log)
	// At, when not zero, decides as of that moment instead of now
	// (schedules, waits, windows, hour()); only with DryRun.
	At time.Time
	// Seed, when not 0, makes the channel's exploration draws
	// deterministic (nba.Request.Seed). Never decoded from a request: only
	// in-process callers set it, such as Funnel, whose dry runs must count
	// the same in the studio as on the command line.
	Seed uint64
	// IDs are the customer's identifiers by namespace ("ids", string
	// values, at most MaxIDs), resolved by an IdentityBackend when
	// CustomerID is empty (identify.go).
	IDs []Field

	idBuf [32]byte
}

// Kind is the type of a Field's value.
type Kind uint8

// The kinds of a Field.
const (
	KindString Kind = iota + 1
	KindNumber
	KindBool
)

// Field is one scalar of a request's context or an event's attributes.
type Field struct {
	Key  string
	Kind Kind
	Str  string  // when Kind is KindString
	Num  float64 // when Kind is KindNumber; always finite
	Bool bool    // when Kind is KindBool
}

// DecideResponse is what the backend answers to one DecideRequest. The
// server resets it (lengths to zero, capacity kept) before each Decide.
type DecideResponse struct {
	Actions []Action // ranked, best first
	Control bool     // the customer is in a control group: Actions is empty by design
	// Withheld are the actions a control-group customer would have been
	// given, so uplift can be measured; only written when Control is set.
	Withheld []Action
	Versions Versions
	// Stopped is set when a channel-wide contact policy (StoppedBy) stopped
	// the decision before any action was considered.
	Stopped   bool
	StoppedBy ContactPolicy
	// Limit is the number of actions the decision could give (the
	// request's limit after the backend's clipping); explanations say
	// "not among the best Limit".
	Limit int
	// Stale is set when the decision was made without the customer's live
	// state (the state store could not be read): answered as
	// "state":"stale".
	Stale bool
	// Candidates explains the decision when the request asked for it: every
	// action considered and why it was or was not chosen.
	Candidates []Candidate
}

// Action is one chosen action.
type Action struct {
	ID         string
	Name       string
	Score      float64 // the ranking value, propensity × value after adjustments
	Propensity float64
	Value      float64
	Lever      float64 // business weight of the action
	Tier       int     // manual priority tier, 1 first; 0 = ranked by the model
	// Treatment is the pre-encoded JSON object describing how to present the
	// action; it is written verbatim, so it must be valid JSON (the catalog
	// validates it at load). Empty is written as {}.
	Treatment []byte
}

// Versions names what decided: the bundle, and the catalog, model set and
// snapshot in it. Model is one digest of the whole model set (however many
// models the bundle has); GET /admin/status lists the models one by one.
type Versions struct {
	Bundle, Catalog, Model, Snapshot string
}

// The stages of an explained candidate (Candidate.Stage): where it left the
// decision, in the order the decision runs them; StageChosen when it was
// selected.
const (
	StagePlacement     = "placement"      // not offered on the request's placement
	StageSchedule      = "schedule"       // before its start or after its end
	StageConsent       = "consent"        // the customer's consent for the action's purpose on the channel is denied
	StageJourney       = "journey"        // a journey step not due, or held by a locked journey
	StageEligibility   = "eligibility"    // an eligible rule is false
	StageApplicability = "applicability"  // an applicable rule is false
	StageSuitability   = "suitability"    // a suitable rule is false
	StageContactPolicy = "contact_policy" // a cap or suppression held
	StageExclusion     = "exclusion"      // another action of its exclusive group ranked higher
	StageHoldout       = "holdout"        // withheld: the customer is in a holdout
	StageRank          = "rank"           // ranked below the limit
	StageChosen        = "chosen"
)

// Candidate is one action considered by an explained decision. Its fields
// are structured; the encoder phrases them as what happened (see
// AppendReason), so that filling them allocates nothing.
type Candidate struct {
	ID       string
	Score    float64
	Selected bool
	Stage    string // one of the Stage* names
	// Detail is what the stage found, without the stage's verb: the failing
	// rule's text ("!profile.in_arrears"), the journey or holdout reason,
	// "before its start" or "after its end"; empty when the stage says it
	// all.
	Detail string
	// Policy is the contact policy that removed the candidate
	// (StageContactPolicy).
	Policy ContactPolicy
	// Consent is the denied consent that removed the candidate
	// (StageConsent).
	Consent ConsentDenial
	// Exploration says how the channel's exploration ranked the candidate;
	// Method is empty when it did not.
	Exploration Exploration
	// Rank is the candidate's 1-based place in the final ranking; 0 when
	// it left before the ranking. Only ranked candidates carry the factors
	// below (written as "rank", "propensity", "weight", "value", "lever",
	// "tier").
	Rank                             int
	Propensity, Weight, Value, Lever float64
	Tier                             int
}

// ConsentDenial is a denied consent: by the customer's change (Source, At),
// by the catalog's default (Default) or because the customer's state was
// unavailable (Stale).
type ConsentDenial struct {
	Channel, Purpose, Source string
	At                       time.Time
	Default                  bool
	// Stale: denied because the customer's state could not be read (the
	// purpose's stale: deny; a withdrawal may be there).
	Stale bool
}

// ContactPolicy is a cap or suppression that held, and the count that made
// it hold.
type ContactPolicy struct {
	Suppression bool   // a suppression ("pause after"); else a cap
	Scope       string // "action", "group" or "channel"
	Key         string // the action, group or channel id
	Outcome     string // the outcome counted, e.g. "impression"
	Window      time.Duration
	Max         int    // the cap, or the suppression's count
	Count       int    // the count that hit Max; -1: an exact cap whose reservation could not be made
	Desc        string // the policy as the catalog states it
	// Reserved is, for an exact cap, how much of Count are reservations
	// of decisions awaiting their impression (on any replica).
	Reserved int
}

// Exploration is how a channel's exploration method ranked a candidate.
type Exploration struct {
	Method string  // "thompson", "softmax" or "epsilon"; "" when none
	Mean   float64 // the candidate's score without exploration
	// Drawn is the score it was ranked by: its thompson draw or its
	// softmax-perturbed score; not written for epsilon.
	Drawn float64
	// RandomSlate is set when epsilon showed a random slate.
	RandomSlate bool
}

func (r *DecideResponse) reset() {
	clear(r.Actions) // drop references to treatments and names
	r.Actions = r.Actions[:0]
	clear(r.Withheld)
	r.Withheld = r.Withheld[:0]
	clear(r.Candidates)
	r.Candidates = r.Candidates[:0]
	r.Control, r.Stopped, r.StoppedBy, r.Limit, r.Stale = false, false, ContactPolicy{}, 0, false
	r.Versions = Versions{}
}

// Outcome is the caller's observed response to an action.
type Outcome uint8

// The outcomes accepted by POST /v1/feedback.
const (
	OutcomeImpression Outcome = iota + 1
	OutcomeClick
	OutcomeAccept
	OutcomeReject
	OutcomeConvert
	OutcomeDismiss
)

var outcomeNames = [...]string{"", "impression", "click", "accept", "reject", "convert", "dismiss"}

// String returns the outcome's wire name.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && o != 0 {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// ParseOutcome returns the outcome named s, or false.
func ParseOutcome(s string) (Outcome, bool) {
	for i := 1; i < len(outcomeNames); i++ {
		if outcomeNames[i] == s {
			return Outcome(i), true
		}
	}
	return 0, false
}

// Feedback is one decoded POST /v1/feedback request.
type Feedback struct {
	DecisionID string // optional: outcomes observed outside a decision have none
	CustomerID string // required
	ActionID   string // required
	Channel    string // optional
	Outcome    Outcome
	Value      float64   // optional, finite; 0 when absent
	TS         time.Time // the request's ts, or the time it was received
	// EventID is the caller's optional idempotency key, 1 to
	// MaxEventIDBytes bytes; empty when absent. A retry with the same key
	// for the same customer must be acknowledged without being recorded
	// again.
	EventID string
	IDs     []Field // as DecideRequest.IDs
}

// MaxEventIDBytes bounds the event_id of feedback and events: a fixed limit
// (not Config.MaxIDBytes) because the backend remembers recent ids per
// customer and sizes that memory by it.
const MaxEventIDBytes = 128

// Event is one decoded POST /v1/events request.
type Event struct {
	CustomerID string // required
	Type       string // required
	TS         time.Time
	Attrs      []Field // at most Config.MaxFields, keys unique
	// EventID is the caller's optional idempotency key, as in Feedback.
	EventID string
	IDs     []Field // as DecideRequest.IDs
}

// Error codes: stable strings in error bodies that callers may switch on.
const (
	CodeMalformedJSON    = "malformed_json"     // 400: the body is not the JSON expected
	CodeInvalidRequest   = "invalid_request"    // 400: well-formed but not acceptable
	CodeUnknownEventType = "unknown_event_type" // 400: no profile mapping or journey names the event's type
	CodeUnauthorized     = "unauthorized"       // 401: admin token missing or wrong
	CodeReloadDisabled   = "reload_disabled"    // 403: no admin token configured, asked to reload
	CodeAdminDisabled    = "admin_disabled"     // 403: no admin token configured, asked to erase or unmerge
	CodeHostNotAllowed   = "host_not_allowed"   // 403: admin API asked under a Host it does not answer to
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeConflict         = "conflict"           // 409: the write conflicts with the state as it stands; retry
	CodeTimeout          = "timeout"            // 408: the request was not read in time
	CodePayloadTooLarge  = "payload_too_large"  // 413
	CodeHeaderTooLarge   = "header_too_large"   // 431
	CodeInternal         = "internal"           // 500
	CodeReloadFailed     = "reload_failed"      // 500: the last good bundle keeps serving
	CodeNotReady         = "not_ready"          // 503
	// CodeStateUnavailable (503): customer state cannot be written now (a
	// full disk, an I/O error; Redis out of reach, full or short of
	// replicas); retry later with the same event_id. The message says
	// whether the write may have been recorded all the same (on Redis it
	// may).
	CodeStateUnavailable = "state_unavailable"
	// CodeStateMismatch (500; 503 on /readyz): the customer's shared state
	// was written with other profile mappings (another bundle's fields or
	// event mappings); nothing was recorded, and retrying never helps
	// until the bundle or the state changes.
	CodeStateMismatch = "state_mismatch"
)

// Error is an error with the HTTP status and code the caller sees. Its
// message is shown to the caller.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Invalidf returns a 400 invalid_request error, for requests the backend
// cannot accept: an unknown channel, an unknown action.
func Invalidf(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf returns a 404 not_found error.
func NotFoundf(format string, args ...any) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

// NotReadyf returns a 503 not_ready error.
func NotReadyf(format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeNotReady, Message: fmt.Sprintf(format, args...)}
}

// StateUnavailablef returns a 503 state_unavailable error: the write was
// not recorded because customer state cannot be written now.
func StateUnavailablef(format string, args ...any) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeStateUnavailable, Message: fmt.Sprintf(format, args...)}
}

// StateMismatchf returns a 500 state_mismatch error: the customer's state
// was written with other profile mappings.
func StateMismatchf(format string, args ...any) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeStateMismatch, Message: fmt.Sprintf(format, args...)}
}

// Conflictf returns a 409 conflict error: the write conflicts with the
// state as it stands and was not recorded.
func Conflictf(format string, args ...any) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: fmt.Sprintf(format, args...)}
}
