package stateio

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"nba/state"
	"nba/state/embedded"
)

// TestExportImportKeepsIdentity: the export file carries the profiles'
// identifiers and forwards, and the import points the identifier index at
// them again, so links survive a move between stores. Before, the lines
// had no identifiers: after the import, a linked identifier named no one.
func TestExportImportKeepsIdentity(t *testing.T) {
	ctx := context.Background()
	ic := &state.IdentityConfig{Namespaces: map[string]state.Namespace{"crm_id": {Primary: true, Unique: true}, "cookie": {}, "email": {Unique: true, Hash: true}}}
	key := []byte("0123456789abcdef-identity-key")
	stitch := func(s *embedded.Store) *state.Identities {
		x := state.NewIdentities(s, key)
		must(t, x.Configure(ic))
		return x
	}
	src := openStore(t)
	x := stitch(src)
	must(t, src.ApplyEvent(state.Event{Customer: state.AnonymousID("cookie:c-91"), Type: "purchase", At: t0, Attrs: map[string]any{"amount": 3.0}}))
	for _, ids := range []map[string]string{{"cookie": "c-91", "crm_id": "c00042", "email": "a@example.com"}, {"cookie": "c-7", "crm_id": "c00043"}} {
		_, err := x.Identify(ctx, ids, t0.Add(time.Minute), "login")
		must(t, err)
	}
	var buf bytes.Buffer
	_, err := Export(&buf, src)
	must(t, err)
	if !strings.Contains(buf.String(), `"identifiers":[`) || !strings.Contains(buf.String(), `"merged_into":"c00042"`) {
		t.Fatalf("the export carries no identifiers or forward:\n%s", buf.String())
	}
	dst := openStore(t)
	_, err = Import(&buf, dst, Options{Refused: func(line int, why error) { t.Errorf("line %d refused: %v", line, why) }})
	must(t, err)
	if a, b := all(t, dst), all(t, src); !reflect.DeepEqual(a, b) {
		t.Fatalf("imported state differs:\n got %+v\nwant %+v", a, b)
	}
	y := stitch(dst)
	for _, c := range []struct{ ns, v, want string }{{"cookie", "c-91", "c00042"}, {"email", "a@example.com", "c00042"}, {"cookie", "c-7", "c00043"}} {
		id, ok, err := y.ResolveID(ctx, c.ns, c.v)
		if err == nil && ok {
			id, err = y.Canonical(ctx, id)
		}
		if err != nil || id != c.want {
			t.Errorf("after the import %s %s resolves to %q %v, want %q", c.ns, c.v, id, err, c.want)
		}
	}
}

// TestExportImportKeepsMergeReceipts: the export carries open merge
// receipts (the survivor's state before the merge, the writes logged since)
// and the absorbed profile's saved state, so an unmerge after the import
// gives each side what an unmerge before the export gives. Before, the
// receipts were not exported: the merge could not be undone after a move.
func TestExportImportKeepsMergeReceipts(t *testing.T) {
	ctx := context.Background()
	ic := &state.IdentityConfig{Namespaces: map[string]state.Namespace{"crm_id": {Primary: true, Unique: true}, "cookie": {}}}
	key := []byte("0123456789abcdef-identity-key")
	stitch := func(s *embedded.Store) *state.Identities {
		x := state.NewIdentities(s, key)
		must(t, x.Configure(ic))
		return x
	}
	src := openStore(t)
	x := stitch(src)
	anon := state.AnonymousID("cookie:c-91")
	must(t, src.ApplyEvent(state.Event{Customer: anon, Type: "purchase", At: t0, Attrs: map[string]any{"amount": 3.0}}))
	must(t, src.RecordContact(state.Contact{Customer: "c00042", Action: "a", Channel: "web", At: t0}))
	l, err := x.Identify(ctx, map[string]string{"cookie": "c-91", "crm_id": "c00042"}, t0.Add(time.Minute), "login")
	must(t, err)
	// Writes after the merge, by the cookie and by the crm id.
	for i, via := range []string{"cookie:c-91", "crm_id:c00042", "cookie:c-91"} {
		must(t, x.Stitched().ApplyEvent(state.Event{Customer: "c00042", Type: "purchase", At: t0.Add(time.Duration(2+i) * time.Minute),
			Attrs: map[string]any{"amount": float64(10 * (i + 1))}, ID: fmt.Sprintf("e%d", i), Via: via}))
	}
	var buf bytes.Buffer
	_, err = Export(&buf, src)
	must(t, err)
	for _, k := range []string{`"merges":[`, `"since":[`, `"saved":{`, `"receipt":"` + l.Receipts[0]} {
		if !strings.Contains(buf.String(), k) {
			t.Fatalf("the export lacks %s:\n%s", k, buf.String())
		}
	}
	dst := openStore(t)
	_, err = Import(&buf, dst, Options{Refused: func(line int, why error) { t.Errorf("line %d refused: %v", line, why) }})
	must(t, err)
	y := stitch(dst)
	for _, z := range []*state.Identities{x, y} {
		u, err := z.Unmerge(ctx, l.Receipts[0])
		if err != nil || u.Customer != anon {
			t.Fatalf("unmerge: %+v %v", u, err)
		}
	}
	a, b := all(t, dst), all(t, src)
	for _, id := range []string{anon, "c00042"} {
		if !reflect.DeepEqual(a[id], b[id]) {
			t.Errorf("%s after unmerge, imported:\n%+v\nnot imported:\n%+v", id, a[id], b[id])
		}
	}
	spend := func(c state.CustomerDump) float64 {
		for _, f := range c.Fields {
			if f.Field == "spend" {
				return f.Num
			}
		}
		return 0
	}
	if s1, s2 := spend(a[anon]), spend(a["c00042"]); s1 != 3+10+30 || s2 != 20 {
		t.Errorf("spend after the imported unmerge: cookie %v, crm %v; want 43 and 20", s1, s2)
	}
}
