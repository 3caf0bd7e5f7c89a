// Package nba is the decision engine: it compiles a catalog of actions, rules,
// contact policies and journeys once, and decides per customer and request which
// actions to show. It does no I/O.
//
// # Compile once
//
// CompileCatalog reads a catalog (YAML, or JSON) against a profile Schema and
// the bundle's models, and reports every problem at once with its line,
// column and path in the file (catalog.yaml:212:9: action "xs_kids":
// rules.eligible[0]: unknown field "tenure_dayz" (did you mean
// "tenure_days"?)); a misspelt key is skipped and reported, not a reason to
// stop before the other checks. Validate
// returns the same list for "nba validate". Rules are expr expressions
// (github.com/expr-lang/expr): expr's parser and type checker read them, then
// the checked tree is compiled into Go closures over pre-resolved profile and
// context slots (see rules.go for the supported subset). Identical rule texts
// compile once and are evaluated at most once per decision. Contact policies
// become a table of distinct contact-history counts, also counted at most once
// per decision. Model features are bound to action constants, profile fields
// or context fields at load. The compiled Catalog is immutable.
// testdata/catalog.yaml is a commented example of every catalog section
// (channels, context, defaults, fallback, holdout, policies, groups, actions,
// journeys).
//
// # Decide
//
// Engine.Decide takes the actions offered on the request's channel (in
// catalog order) and removes, in this order: other placements, actions out
// of their start/end, journey steps that are not due, actions held by a
// locked journey, failed eligibility, applicability and suitability rules
// (an action's groups' rules first), and contact policies (action and group
// caps counted across channels, suppressions after outcomes). Channel-wide
// limits end the decision early. The survivors are scored by their model in
// one batch per model, ranked by manual tier (1 first; 0 = ranked) and then
// by priority = propensity × weight × value × lever, ties broken by catalog
// order, and taken up to the limit with at most one action per exclusive
// group. Holdouts (a hash of salt and customer id) withhold the actions that
// would have been given; a fallback action answers when nothing survives.
//
// The engine reads a customer once per decision through Customers.Load
// (a state backend plugs in there; in-memory sources can give separate
// Profiles, History and Journeys through SplitCustomers) and returns
// journey state changes as Decision.Effects and from OnEvent/EventMoves
// for the caller to persist, each saying the state it was decided from
// (JourneyUpdate.FromStep) so that a store can write it conditionally: it
// keeps no per-customer state. When Load fails, the decision is made from
// the profile as read, with no contacts or journeys, and marked Stale.
//
// # Learn
//
// A catalog's "learning:" section (learn.go) gives every action an online
// Bayesian logistic regression (model.Online) over the listed profile and
// context fields whose offset is the action's offline logit, so it learns a
// correction to the trained model from Engine.Observe (reward 1 for a
// click, accept or conversion; 0 for a reject, dismissal or an impression
// left without response). With learning on, actions rank by the posterior
// predictive propensity; a channel may explore (nba/explore: epsilon,
// softmax, thompson) and each chosen action then carries in Chosen.Prob the
// probability with which the policy put it at its rank (Chosen.Samples > 0
// when that is a Monte-Carlo estimate). Request.Seed makes exploration
// replayable. The engine owns the online state: Swap carries it to the new
// catalog by action and group id, and MarshalLearner/UnmarshalLearner
// checkpoint it. Without the section decisions are exactly those of the
// offline models.
//
// # Guarantees and limits
//
// Engine is safe for concurrent use; Swap replaces the catalog atomically.
// Decide does not allocate (Request.Explain aside) once its pooled scratch
// is warm for the catalog, with or without learning; Observe allocates one
// posterior. A decision returns at most MaxLimit actions and
// reads at most MaxJourneysPerCustomer journey states. Catalogs hold at most
// MaxActions actions over MaxChannels channels. A suppression ("pause P
// after N impressions without a click within W") is decided exactly from
// the customer's contacts when the loaded CustomerHistory lists them (from
// the contacts it keeps); from counts over within+pause otherwise, when the
// pause can last up to W longer. Options.MaxWindow refuses at load the
// windows the History cannot count.
package nba
