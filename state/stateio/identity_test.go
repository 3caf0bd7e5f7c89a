package stateio

import (
	"bytes"
	"context"
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
