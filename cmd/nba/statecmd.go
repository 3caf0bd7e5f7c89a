package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"nba/nba/sidecar"
	"nba/state"
	"nba/state/stateio"
)

func init() {
	register(command{name: "state", summary: "export a state directory's customer state as JSON Lines, or import state and contact history into one", run: runState})
}

const stateHelp = `Usage: nba state export (-state DIR | -state.redis URL) [-bundle DIR] [-out FILE]
       nba state import (-state DIR | -state.redis URL) [-bundle DIR] [FILE|-]

export writes every customer's live state in DIR (contact history, profile
field values with the time they were set, journey positions, remembered
idempotency keys, cap-window counters, reservations of exact caps and
identity links) as JSON Lines, one customer a line, then the tombstones of
erased customers (pseudonyms, never ids), to -out (stdout by default; a
.zst suffix compresses with zstd). When it knows the identity key
($NBA_IDENTITY_KEY, else DIR/identity.key) the first line names it by a
fingerprint, never the key.

import reads such a file back into DIR (created if missing): a customer's
line replaces that customer's state, so importing an export gives the same
state, counts and caps. It also loads contact history, one contact a row,
as CSV with a header or as JSON Lines, with the columns bench/bundlegen's
contacts.csv has (customer_id, action, group, channel, outcome, at; value
and id optional), so that caps hold from the first day. Input may be
zstd-compressed (told by its content). A file naming an identity key is
refused, before anything is written, when the target's key differs or is
missing (copy identity.key from the exported directory, or set
$NBA_IDENTITY_KEY). Contact rows get the checks feedback makes against the
bundle's catalog (known action and channel, the action's group, at no more
than -contacts.maxTimeAhead ahead). Rows that do not decode or are
invalid are refused, listed on stderr with their line and reason (never
their values), and the rest imported; the exit status is then 1. Importing
again is harmless for customers' lines and for contacts with an id;
contacts without an id are recorded again.

With -state.redis URL instead of -state DIR, both work on the customer
state sidecars share on Redis (nba serve -state.redis): export reads every
customer on every master (SCAN), import writes each customer and contact
as a feedback would (acknowledged by Redis). So an embedded state moves to
Redis and back with a pipe, and contact history loads into either.

With -state, both take the state directory's lock: they refuse to run
while a sidecar (or nba batch -state) has DIR open. Redis takes no lock:
an import into a Redis that sidecars serve from changes their state as it
goes (a customer's line replaces that customer, contacts add as
feedback), and an export sees each customer as it was when read. -bundle
must be the bundle DIR (or the sidecars on Redis) is served with: its
profile mappings say what the fields are (fields it does not map are
dropped on import and counted; on Redis a customer written with other
mappings is refused).

Examples:
  nba state export -state /var/lib/nba -out state.jsonl.zst
  nba state import -state /var/lib/nba-new state.jsonl.zst
  nba state export -state old | nba state import -state new -
  nba state import -bundle ./bundle -state /var/lib/nba ./bundle/contacts.csv
  nba state export -state /var/lib/nba | nba state import -state.redis redis://10.0.0.5:6379 -
  nba state import -bundle ./bundle -state.redis redis://10.0.0.5:6379 ./bundle/contacts.csv
`

func runState(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		stateUsage(os.Stderr)
		if len(args) == 0 {
			return errors.New("want export or import")
		}
		return nil
	}
	switch args[0] {
	case "export":
		return runStateExport(args[1:])
	case "import":
		return runStateImport(args[1:])
	}
	return fmt.Errorf("unknown sub-command %q: want export or import", args[0])
}

// stateOpts are the flags export and import share.
type stateOpts struct {
	fset          *flag.FlagSet
	bundle, state string
	redisURL      string
	allowVolatile bool
	out           string
	maxErrors     int
	maxTimeAhead  time.Duration
}

func stateFlags(name string) *stateOpts {
	o := &stateOpts{fset: flag.NewFlagSet("state "+name, flag.ContinueOnError)}
	o.fset.Usage = func() { stateUsage(o.fset.Output()) }
	o.fset.StringVar(&o.bundle, "bundle", "", "bundle the state directory is served with; empty: the embedded demo")
	o.fset.StringVar(&o.state, "state", "", "state directory, as nba serve -state (this or -state.redis is required)")
	o.fset.StringVar(&o.redisURL, "state.redis", "", "the customer state on Redis, as nba serve -state.redis: redis://[user:pass@]host:port, rediss://..., several ?addr=host:port for a Cluster, ?master_set=name for Sentinel")
	o.fset.BoolVar(&o.allowVolatile, "state.redis.allowVolatile", false, "work on a Redis without an append-only file")
	if name == "export" {
		o.fset.StringVar(&o.out, "out", "-", "output file (- for stdout); a .zst suffix compresses with zstd")
	} else {
		o.fset.IntVar(&o.maxErrors, "errors.max", 100, "most refused rows listed on stderr (all are counted)")
		o.fset.DurationVar(&o.maxTimeAhead, "contacts.maxTimeAhead", 24*time.Hour, "how far past now a contact row's at may be, as nba serve -http.maxTimeAhead allows feedback")
	}
	return o
}

// stateUsage prints the help and the flags of export and import.
func stateUsage(w io.Writer) {
	fmt.Fprint(w, stateHelp)
	for _, name := range []string{"export", "import"} {
		fmt.Fprintf(w, "\nFlags of %s:\n", name)
		f := stateFlags(name).fset
		f.SetOutput(w)
		f.PrintDefaults()
	}
}

func (o *stateOpts) parse(args []string) (bool, error) {
	if err := o.fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, nil
		}
		return false, err
	}
	switch {
	case o.state == "" && o.redisURL == "":
		return false, errors.New("-state or -state.redis is required: the state directory, or the Redis the state is on")
	case o.state != "" && o.redisURL != "":
		return false, errors.New("give -state or -state.redis, not both")
	case o.redisURL == "" && flagSet(o.fset, "state.redis.allowVolatile"):
		// As serve refuses it: it would be ignored on a directory.
		return false, errors.New("-state.redis.allowVolatile needs -state.redis: it applies only to customer state on Redis")
	}
	return true, nil
}

// open opens the state the flags name: the directory (created if missing
// when create) or Redis.
func (o *stateOpts) open(bundle fs.FS, create bool) (st portable, where string, close func() error, err error) {
	if o.redisURL != "" {
		key, _, kerr := o.identityKey()
		if kerr != nil {
			return nil, "", nil, kerr
		}
		st, close, err = sidecar.OpenStateRedis(o.redisURL, bundle, o.allowVolatile, key)
		return st, "the Redis state", close, err
	}
	st, close, err = sidecar.OpenStateDir(o.state, bundle, create)
	return st, o.state, close, err
}

// portable is a state export reads and import writes.
type portable interface {
	Stats() state.Stats
	stateio.Source
	stateio.Target
}

func runStateExport(args []string) (err error) {
	o := stateFlags("export")
	if ok, err := o.parse(args); !ok {
		return err
	}
	if o.fset.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", o.fset.Arg(0))
	}
	bundle, _, err := openBundle(o.bundle)
	if err != nil {
		return err
	}
	st, where, closeState, err := o.open(bundle, false)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeState()) }()
	var out io.Writer = os.Stdout
	var f *os.File
	if o.out != "-" {
		if f, err = os.Create(o.out); err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(o.out)
			}
		}()
		out = f
	}
	var zw *zstd.Encoder
	if strings.HasSuffix(o.out, ".zst") {
		if zw, err = zstd.NewWriter(out); err != nil {
			return err
		}
		out = zw
	}
	if dropped := st.Stats().ReplayDropped; dropped > 0 {
		fmt.Fprintf(os.Stderr, "warning: %d field values in %s are of fields the bundle's profile mappings do not have, and are not exported: give the -bundle the state is served with\n", dropped, where)
	}
	key, _, err := o.identityKey()
	if err != nil {
		return err
	}
	n, err := stateio.ExportWith(out, st, stateio.ExportOptions{IdentityKey: key})
	if zw != nil {
		err = errors.Join(err, zw.Close())
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "exported %d customers: %d contacts, %d field values, %d journeys, %d idempotency keys; %d tombstones of erased customers\n",
		n.Customers, n.Contacts, n.Fields, n.Journeys, n.IDs, n.Tombstones)
	return nil
}

func runStateImport(args []string) (err error) {
	o := stateFlags("import")
	if ok, err := o.parse(args); !ok {
		return err
	}
	if o.fset.NArg() > 1 {
		return fmt.Errorf("unexpected argument %q", o.fset.Arg(1))
	}
	var in io.Reader = os.Stdin
	if p := o.fset.Arg(0); p != "" && p != "-" {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	bundle, _, err := openBundle(o.bundle)
	if err != nil {
		return err
	}
	st, _, closeState, err := o.open(bundle, true)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeState()) }()
	shown := 0
	n, err := stateio.Import(in, st, stateio.Options{Refused: func(line int, why error) {
		if shown < o.maxErrors {
			fmt.Fprintf(os.Stderr, "line %d: refused: %v\n", line, why)
		}
		shown++
	}, CheckContact: contactCheck(bundle, time.Now(), o.maxTimeAhead), CheckIdentityKey: o.checkIdentityKey})
	if shown > o.maxErrors {
		fmt.Fprintf(os.Stderr, "(%d more refused rows not listed)\n", shown-o.maxErrors)
	}
	fmt.Fprintf(os.Stderr, "imported %d customers: %d contacts (%d duplicates not recorded again), %d field values, %d journeys, %d idempotency keys, %d tombstones; %d rows refused\n",
		n.Customers, n.Contacts, n.Duplicates, n.Fields, n.Journeys, n.IDs, n.Tombstones, n.Refused)
	if dropped := st.Stats().ReplayDropped; dropped > 0 {
		fmt.Fprintf(os.Stderr, "dropped %d field values of fields the bundle's profile mappings do not have\n", dropped)
	}
	if err != nil {
		return err
	}
	if n.Refused > 0 {
		return fmt.Errorf("%d rows refused", n.Refused)
	}
	return nil
}

// contactCheck returns the check of contact rows import applies
// (sidecar.ContactCheck), against the bundle's catalog, loaded at the first
// contact row: a file of customers' lines does not need it.
func contactCheck(bundle fs.FS, now time.Time, ahead time.Duration) func(*state.Contact) error {
	var (
		once  sync.Once
		check func(*state.Contact) error
	)
	return func(c *state.Contact) error {
		once.Do(func() {
			cat, err := sidecar.LoadCatalog(bundle)
			if err != nil {
				check = func(*state.Contact) error { return err }
				return
			}
			check = sidecar.ContactCheck(cat, now, ahead)
		})
		return check(c)
	}
}

// identityKey returns the identity key the state is served with, as nba
// serve finds it: $NBA_IDENTITY_KEY, else (a state directory) its
// identity.key; nil when there is none yet. from says where it was.
func (o *stateOpts) identityKey() (key []byte, from string, err error) {
	if k := os.Getenv(sidecar.IdentityKeyEnv); k != "" {
		return []byte(k), "$" + sidecar.IdentityKeyEnv, nil
	}
	if o.state == "" {
		return nil, "", nil
	}
	path := filepath.Join(o.state, "identity.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("cannot read the identity key: %w", err)
	}
	if key, err = hex.DecodeString(strings.TrimSpace(string(b))); err != nil || len(key) < 16 {
		return nil, "", fmt.Errorf("cannot read the identity key %q: want at least 16 hex-encoded bytes", path)
	}
	return key, path, nil
}

// checkIdentityKey refuses an import file whose hashed identifiers were
// hashed with another identity key than the target's (fingerprint, from
// the file): they would resolve to no one, and the person's identifier
// could never be linked again.
func (o *stateOpts) checkIdentityKey(fingerprint string) error {
	key, from, err := o.identityKey()
	if err != nil {
		return err
	}
	switch {
	case key == nil && o.redisURL != "":
		return fmt.Errorf("the file's hashed identifiers were hashed with an identity key (%s) and $%s is not set: set it to the key the exported state is served with, as every sidecar on this Redis must",
			fingerprint, sidecar.IdentityKeyEnv)
	case key == nil:
		return fmt.Errorf("the file's hashed identifiers were hashed with an identity key (%s) and %s has none yet: copy identity.key from the exported state directory to %s, or set $%s to the key the exported state is served with",
			fingerprint, o.state, filepath.Join(o.state, "identity.key"), sidecar.IdentityKeyEnv)
	case stateio.KeyFingerprint(key) != fingerprint:
		return fmt.Errorf("the file's hashed identifiers were hashed with another identity key (%s) than this state's (%s, from %s): they would resolve to no one; import into a state served with the exported state's key",
			fingerprint, stateio.KeyFingerprint(key), from)
	}
	return nil
}
