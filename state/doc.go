// Package state is live customer state: the contract every state backend
// implements and the customer model every backend applies. A customer's
// state is a profile overlay changed by events through declarative
// mappings, contact history with cap-window aggregates, journey positions,
// idempotency keys, consent and linked identifiers. The backends are
// sub-packages: state/embedded (in this process's memory, durable through
// the write-ahead log state/wal; the default) and state/redis (shared by
// replicas).
//
// Guarantees every backend keeps (Backend), per customer: a write returns
// after it is durable as the backend defines it; it is atomic per
// customer and fails with an error of one kind (ErrInvalid, ErrUnavailable, ErrConflict: see KindOf) after which
// nothing of it is applied; a contact, event or consent change with an
// idempotency key the customer's state still remembers is acknowledged
// without being applied again, the keys kept with the state; a View holds
// one consistent customer value, unaffected by later writes, and its
// accessors do not allocate.
//
// The model (Model) is pure: it computes a customer's next value from its
// value before and a Record (Model.Apply), with no clock, no I/O and no
// store, so every backend applies the same rules; a value is immutable once
// built, the next one sharing what did not change. Limits per customer come
// from Config, each counted: contacts kept in History, aggregate keys,
// journeys, idempotency keys remembered (MaxIDsPerCustomer, default 64).
// Cap-window counts are exact for the latest 8 events of a key and
// otherwise rounded out to whole hours (windows up to a day) or whole UTC
// days; see Config.MaxWindow. Strings (ids, keys, categories) are limited
// to Config.MaxStringBytes.
//
// Layout: backend.go is the contract (Backend, Reader, Writer, Porter) and
// errors.go its error kinds; model.go (Model: records built from contacts,
// events and journey moves, Apply, one customer's value codec), types.go,
// customer.go (the customer's representation), config.go, agg.go,
// mapping.go, view.go, the record codec in codec.go, consent.go, reserve.go,
// erase.go, dump.go (export and import as plain values) and the identity
// files (identity_model.go: a customer's identifiers and the merge
// protocol; identity.go, identity_graph.go, identity_backend.go: Identities
// over any IdentityBackend) are the model; store_api.go is the part of it
// only a backend with its own log and checkpoints needs (state/embedded).
// Package statetest is the behaviour table every backend passes,
// identitytest the identity one.
package state
