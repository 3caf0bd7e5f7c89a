package stateio

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/klauspost/compress/zstd"

	"nba/state"
	"nba/state/embedded"
	"nba/state/wal"
)

const mappingsYAML = `
fields: {tier: category, vip: bool, birthday: time, spend: number}
events:
  purchase: [{incr: spend, from: amount}]
  upgrade: [{set: tier, from: tier}, {set: vip, from: vip}, {set: birthday, from: dob}]
`

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *embedded.Store {
	t.Helper()
	var m state.Mappings
	if err := yaml.Unmarshal([]byte(mappingsYAML), &m); err != nil {
		t.Fatal(err)
	}
	s, err := embedded.Open(state.Config{Mappings: m, MaxEventsPerCustomer: 4, MaxCustomers: -1, WAL: wal.Config{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// all reads a store's customers keyed by id.
func all(t testing.TB, s *embedded.Store) map[string]state.CustomerDump {
	t.Helper()
	m := map[string]state.CustomerDump{}
	must(t, s.Each(func(c *state.CustomerDump) error { m[c.ID] = *c; return nil }))
	return m
}

// TestExportImportRoundTrip: what Export writes (zstd-compressed here),
// Import reads back into an empty store as the same state.
func TestExportImportRoundTrip(t *testing.T) {
	src := openStore(t)
	for i := range 40 {
		c := fmt.Sprintf("c%d", i%7)
		must(t, src.RecordContact(state.Contact{Customer: c, Action: fmt.Sprintf("a%d", i%3), Group: "g", Channel: "web",
			Outcome: state.Outcome(i % 6), Value: float64(i) / 3, At: t0.Add(time.Duration(i) * 17 * time.Minute), ID: fmt.Sprintf("k%d", i)}))
	}
	must(t, src.ApplyEvent(state.Event{Customer: "c1", Type: "upgrade", At: t0, ID: "e1",
		Attrs:    map[string]any{"tier": "gold \"quoted\" é", "vip": true, "dob": time.Date(1990, 1, 2, 3, 4, 5, 6, time.UTC)},
		Journeys: []state.JourneyMove{{Journey: "welcome", Step: 2}}}))
	must(t, src.ApplyEvent(state.Event{Customer: "c9", Type: "purchase", At: t0, Attrs: map[string]any{"amount": 12.25}}))
	must(t, src.SetJourney(state.JourneyUpdate{Customer: "c2", Journey: "cart", Step: 1, Status: state.JourneyExited, At: t0.Add(time.Hour)}))
	for i, g := range []bool{false, true, false} {
		_, err := src.SetConsent(state.Consent{Customer: "c3", Channel: "email", Purpose: "marketing", Granted: g, At: t0.Add(time.Duration(i) * time.Hour), Source: "pc", ID: fmt.Sprintf("cs%d", i)})
		must(t, err)
	}

	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	n, err := Export(zw, src)
	must(t, err)
	must(t, zw.Close())
	if n.Customers != 8 || n.Fields != 4 || n.Journeys != 2 || n.IDs == 0 {
		t.Fatalf("export counts %+v", n)
	}
	dst := openStore(t)
	got, err := Import(&buf, dst, Options{Refused: func(line int, why error) { t.Errorf("line %d refused: %v", line, why) }})
	must(t, err)
	if got != n {
		t.Errorf("import counts %+v, export counts %+v", got, n)
	}
	if a, b := all(t, dst), all(t, src); !reflect.DeepEqual(a, b) {
		t.Fatalf("imported state differs:\n got %+v\nwant %+v", a, b)
	}
}

// TestImportRefusesBadRows: each bad row is reported with its line and a
// reason that names no value; the good rows around it are imported.
func TestImportRefusesBadRows(t *testing.T) {
	const secret = "SECRET-ID"
	good := `{"customer_id":"c1","action":"a","channel":"web","outcome":"click","at":"2026-03-10T12:00:00Z"}`
	for _, tc := range []struct {
		name, input string
		line        int
		reason      string
	}{
		{"json syntax", good + "\n{\"customer_id\":\"" + secret + "\",\n", 2, "incomplete JSON"},
		{"unknown key", good + "\n" + `{"customer_id":"` + secret + `","acton":"a"}`, 2, `unknown key "acton"`},
		{"wrong type", good + "\n" + `{"customer_id":"` + secret + `","action":"a","outcome":"click","at":"2026-03-10T12:00:00Z","value":"` + secret + `"}`, 2, "key value"},
		{"outcome", "\n" + good + "\n\n" + `{"customer_id":"` + secret + `","action":"a","outcome":"` + secret + `","at":"2026-03-10T12:00:00Z"}`, 4, "outcome: want"},
		{"time", good + "\n" + `{"customer_id":"` + secret + `","action":"a","outcome":"click","at":"` + secret + `"}`, 2, "at: not an RFC 3339 time"},
		{"both shapes", good + "\n" + `{"customer_id":"` + secret + `","customer":"x"}`, 2, "both"},
		{"neither shape", good + "\n{}", 2, "neither"},
		{"state with contact keys", good + "\n" + `{"customer":"` + secret + `","action":"a"}`, 2, "contact's keys"},
		{"trailing data", good + "\n" + `{"customer":"` + secret + `"} {}`, 2, "data after the object"},
		{"field value type", good + "\n" + `{"customer":"` + secret + `","fields":[{"field":"vip","type":"bool","value":"` + secret + `","at":"2026-03-10T12:00:00Z"}]}`, 2, "fields[0].value: want true or false"},
		{"journey status", good + "\n" + `{"customer":"` + secret + `","journeys":[{"journey":"j","step":1,"status":"x","entered_at":"2026-03-10T12:00:00Z","step_at":"2026-03-10T12:00:00Z"}]}`, 2, "journeys[0].status"},
		{"refused by the store", good + "\n" + `{"customer_id":"` + strings.Repeat("x", 300) + `","action":"a","outcome":"click","at":"2026-03-10T12:00:00Z"}`, 2, "customer of 300 bytes exceeds the limit"},
		{"refused by the store: state", good + "\n" + `{"customer":"` + secret + `","counters":[{"kind":"action","key":"a","outcome":"click","seen":2,"recent":[1]}]}`, 2, "counter 0: 1 recent times"},
		{"csv", "customer_id,action,channel,outcome,at\nc1,a,web,click,2026-03-10T12:00:00Z\n" + secret + ",a,web,click,2026-03-10\n", 3, "at: not an RFC 3339 time"},
		{"csv after blank lines", "\n\ncustomer_id,action,channel,outcome,at\nc1,a,web,click,2026-03-10T12:00:00Z\n" + secret + ",a,web,click,2026-03-10\n", 5, "at: not an RFC 3339 time"},
		{"csv quote", "customer_id,action,channel,outcome,at\nc1,a,web,click,2026-03-10T12:00:00Z\n" + secret + ",a\"b,web,click,2026-03-10T12:00:00Z\n", 3, "column 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			var lines []int
			var reasons []string
			n, err := Import(strings.NewReader(tc.input), s, Options{Refused: func(line int, why error) {
				lines, reasons = append(lines, line), append(reasons, why.Error())
			}})
			must(t, err)
			if n.Refused != 1 || len(lines) != 1 || lines[0] != tc.line || !strings.Contains(reasons[0], tc.reason) {
				t.Fatalf("refused %d: lines %v, reasons %q; want line %d, %q", n.Refused, lines, reasons, tc.line, tc.reason)
			}
			if strings.Contains(reasons[0], secret) {
				t.Errorf("the reason echoes a value: %s", reasons[0])
			}
			var v state.View
			if !s.View([]byte("c1"), &v) || v.Count(state.KindAction, "a", state.Click, time.Hour, t0) != 1 {
				t.Error("the good row was not imported")
			}
		})
	}
}

// TestImportLongLine: a line over the limit is refused and the next one
// read.
func TestImportLongLine(t *testing.T) {
	s := openStore(t)
	in := `{"customer":"` + strings.Repeat("x", 1<<20) + `"}` + "\n" + `{"customer":"c2","ids":[{"id":"k"}]}` + "\n"
	var lines []int
	n, err := Import(strings.NewReader(in), s, Options{MaxLineBytes: 1000, Refused: func(line int, _ error) { lines = append(lines, line) }})
	must(t, err)
	if n.Customers != 1 || !reflect.DeepEqual(lines, []int{1}) {
		t.Fatalf("counts %+v, refused lines %v", n, lines)
	}
}

// failing is a Target whose writes fail as unavailable.
type failing struct{ *embedded.Store }

func (failing) RecordContacts([]state.Contact) (int, error) {
	return 0, &state.Error{Kind: state.ErrUnavailable, Err: errors.New("disk full")}
}

// TestImportStopsWhenTheTargetFails: an unavailable store fails the import
// instead of refusing rows.
func TestImportStopsWhenTheTargetFails(t *testing.T) {
	_, err := Import(strings.NewReader("customer_id,action,channel,outcome,at\nc1,a,web,click,2026-03-10T12:00:00Z\n"), failing{openStore(t)}, Options{})
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Import = %v, want ErrUnavailable", err)
	}
}

// FuzzDecodeLine: DecodeLine never panics, and a customer's line it
// accepts encodes back to a line that decodes to the same customer.
func FuzzDecodeLine(f *testing.F) {
	f.Add([]byte(`{"customer_id":"c1","action":"a","group":"g","channel":"web","outcome":"click","value":1.5,"at":"2026-03-10T12:00:00Z","id":"k"}`))
	f.Add([]byte(`{"customer":"c1","contacts":[{"action":"a","outcome":"impression","at":"2026-03-10T12:00:00.5Z"}],` +
		`"fields":[{"field":"tier","type":"category","value":"gold","at":"2026-03-10T12:00:00Z"},{"field":"b","type":"time","value":"1990-01-01T00:00:00+02:00","at":"2026-03-10T12:00:00Z"},` +
		`{"field":"v","type":"bool","value":true,"at":"2026-03-10T12:00:00Z"},{"field":"n","type":"number","value":-0.5e3,"at":"2026-03-10T12:00:00Z"}],` +
		`"journeys":[{"journey":"j","step":1,"status":"active","entered_at":"2026-03-10T12:00:00Z","step_at":"2026-03-10T12:00:00Z"}],` +
		`"ids":[{"id":"k"},{"id":"e","event":true}],"counters":[{"kind":"group","key":"g","outcome":"reject","seen":1,"recent":[5],"hour_top":3,"hours":[1],"day_top":0,"days":[1]}]}`))
	f.Add([]byte(`{"customer":"c1","identifiers":[{"ns":"cookie","value":"c-91","first":"2026-03-10T12:00:00Z","last":"2026-03-10T12:00:00Z","source":"login"}]}`))
	f.Add([]byte(`{"customer":"~cookie:c-91","merged_into":"c1"}`))
	f.Add([]byte(`{"customer":"~cookie:c-91","merged_into":"c1","receipt":"r.1","saved":{"customer":"~cookie:c-91","ids":[{"id":"k"}]}}`))
	f.Add([]byte(`{"customer":"c1","merges":[{"receipt":"r.1","from":"~cookie:c-91","before":{"customer":"c1"},"since":[{"as_of":0,"record":"BQAAAmMxAAFhAAAAAAAAAAAAAAA="}],"full":true}]}`))
	f.Add([]byte(`{"customer":"c1","reservations":[{"decision":"d-7","action":"a","group":"g","channel":"email","at":"2026-03-10T12:00:00Z",` +
		`"expires":"2026-03-10T12:10:00Z","caps":[{"kind":"channel","key":"email","window":"24h0m0s","max":1}]}]}`))
	f.Add([]byte(`{"tombstone":"p-1","until":"2027-01-06T10:00:00Z"}`))
	f.Add([]byte(`{"tombstone":"p-1","until":"2027-01-06T10:00:00Z","customer":"c1"}`))
	f.Add([]byte(`{"identity_key":"hmac-sha256:00"}`))
	f.Add([]byte(`{"customer":""}`))
	f.Add([]byte(`{"customer_id":"c","customer":"c"}`))
	f.Add([]byte(`[1]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		row, err := DecodeLine(line)
		if err != nil {
			return
		}
		if n := btoi(row.Customer != nil) + btoi(row.Tombstone != nil) + btoi(row.IdentityKey != ""); n > 1 {
			t.Fatalf("a line decoded as %d kinds of row: %+v", n, row)
		}
		if row.Tombstone != nil {
			b, err := AppendTombstone(nil, *row.Tombstone)
			if err != nil {
				t.Fatal(err)
			}
			again, err := DecodeLine(bytes.TrimSuffix(b, []byte("\n")))
			if err != nil || again.Tombstone == nil || !again.Tombstone.Until.Equal(row.Tombstone.Until) || again.Tombstone.Pseudonym != row.Tombstone.Pseudonym {
				t.Fatalf("round trip changed the tombstone %+v: %+v %v", row.Tombstone, again.Tombstone, err)
			}
		}
		if row.IdentityKey != "" {
			again, err := DecodeLine(bytes.TrimSuffix(AppendKeyLine(nil, row.IdentityKey), []byte("\n")))
			if err != nil || again.IdentityKey != row.IdentityKey {
				t.Fatalf("round trip changed the key's fingerprint %q: %q %v", row.IdentityKey, again.IdentityKey, err)
			}
		}
		if row.Customer == nil {
			return
		}
		b, err := AppendCustomer(nil, row.Customer)
		if err != nil {
			t.Fatalf("cannot encode a decoded customer: %v", err)
		}
		again, err := DecodeLine(bytes.TrimSuffix(b, []byte("\n")))
		if err != nil {
			t.Fatalf("the encoding of a decoded customer does not decode: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(again.Customer, row.Customer) {
			t.Fatalf("round trip changed the customer:\n got %+v\nwant %+v", again.Customer, row.Customer)
		}
	})
}

// counting is a Target that counts contact writes.
type counting struct {
	*embedded.Store
	writes int
}

func (c *counting) RecordContacts(cs []state.Contact) (int, error) {
	c.writes++
	return c.Store.RecordContacts(cs)
}

// TestImportFindsRowsTheStoreRefuses: rows only the store refuses (an id
// over its length limit), in one batch with good rows, are refused with
// their lines, the good rows recorded, in far fewer writes than one a row.
func TestImportFindsRowsTheStoreRefuses(t *testing.T) {
	var in strings.Builder
	in.WriteString("customer_id,action,channel,outcome,at\n")
	bad := map[int]bool{10: true, 500: true, 501: true, 1001: true}
	for line := 2; line <= 1001; line++ {
		id := fmt.Sprintf("c%d", line)
		if bad[line] {
			id = strings.Repeat("x", 300)
		}
		fmt.Fprintf(&in, "%s,a,web,impression,2026-03-10T12:00:00Z\n", id)
	}
	dst := &counting{Store: openStore(t)}
	var lines []int
	n, err := Import(strings.NewReader(in.String()), dst, Options{Refused: func(line int, _ error) { lines = append(lines, line) }})
	must(t, err)
	if n.Contacts != 996 || !reflect.DeepEqual(lines, []int{10, 500, 501, 1001}) {
		t.Fatalf("%d contacts, refused lines %v", n.Contacts, lines)
	}
	if dst.writes > 100 {
		t.Fatalf("%d writes for 1000 rows with 4 bad ones", dst.writes)
	}
	t.Logf("%d writes", dst.writes)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestDecodeLineKinds: tombstone, identity key and reservation lines
// decode, and mixed or incomplete ones are refused naming the key.
func TestDecodeLineKinds(t *testing.T) {
	f := func(line, wantErr string) {
		t.Helper()
		_, err := DecodeLine([]byte(line))
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("DecodeLine(%s) = %v", line, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("DecodeLine(%s) = %v, want an error with %q", line, err, wantErr)
		}
	}
	f(`{"tombstone":"p","until":"2027-01-06T10:00:00Z"}`, "")
	f(`{"tombstone":"p"}`, `without "until"`)
	f(`{"until":"2027-01-06T10:00:00Z"}`, `without "tombstone"`)
	f(`{"tombstone":"","until":"2027-01-06T10:00:00Z"}`, "tombstone: empty")
	f(`{"tombstone":"p","until":"soon"}`, "until: not an RFC 3339 time")
	f(`{"tombstone":"p","until":"2027-01-06T10:00:00Z","customer_id":"c"}`, "with other keys")
	f(`{"identity_key":"hmac-sha256:00"}`, "")
	f(`{"identity_key":"hmac-sha256:00","customer":"c"}`, "with other keys")
	f(`{"identity_key":""}`, "identity_key: empty")
	res := `{"customer":"c","reservations":[{"decision":"d","action":"a","at":"2026-03-10T12:00:00Z","expires":"2026-03-10T12:10:00Z","caps":[%s]}]}`
	f(fmt.Sprintf(res, `{"kind":"channel","key":"email","window":"1h","max":1}`), "")
	f(fmt.Sprintf(res, `{"kind":"fax","key":"email","window":"1h","max":1}`), "reservations[0].caps[0].kind")
	f(fmt.Sprintf(res, `{"kind":"channel","key":"email","window":"-1h","max":1}`), "reservations[0].caps[0].window")
	f(`{"customer":"c","reservations":[{"action":"a","at":"2026-03-10T12:00:00Z","expires":"2026-03-10T12:10:00Z"}]}`, "reservations[0].decision: empty")
	f(`{"customer_id":"c","action":"a","outcome":"click","at":"2026-03-10T12:00:00Z","reservations":[]}`, "a contact")
}

// TestImportChecksTheIdentityKey: the fingerprint line is checked before
// anything is imported, and a refusal stops the import.
func TestImportChecksTheIdentityKey(t *testing.T) {
	src := openStore(t)
	must(t, src.RecordContact(state.Contact{Customer: "c1", Action: "a", At: t0}))
	var buf bytes.Buffer
	_, err := ExportWith(&buf, src, ExportOptions{IdentityKey: []byte("0123456789abcdef-identity-key")})
	must(t, err)
	fp := KeyFingerprint([]byte("0123456789abcdef-identity-key"))
	if !strings.HasPrefix(buf.String(), `{"identity_key":"`+fp+`"}`+"\n") || fp == KeyFingerprint([]byte("0123456789abcdef-identity-kez")) {
		t.Fatalf("the export does not start with the key's fingerprint %s:\n%s", fp, buf.String())
	}
	var seen string
	dst := openStore(t)
	_, err = Import(bytes.NewReader(buf.Bytes()), dst, Options{CheckIdentityKey: func(got string) error { seen = got; return errors.New("another key") }})
	if err == nil || !strings.Contains(err.Error(), "line 1: another key") || seen != fp {
		t.Fatalf("Import = %v (fingerprint %q), want the check's error at line 1", err, seen)
	}
	if got := all(t, dst); len(got) != 0 {
		t.Fatalf("a refused import restored %d customers", len(got))
	}
	n, err := Import(bytes.NewReader(buf.Bytes()), dst, Options{CheckIdentityKey: func(string) error { return nil }})
	must(t, err)
	if n.Customers != 1 || n.Refused != 0 {
		t.Fatalf("import with the same key counted %+v", n)
	}
}
