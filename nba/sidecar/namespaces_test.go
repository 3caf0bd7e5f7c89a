package sidecar

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// TestStatusListsIdentityNamespaces: /admin/status lists the bundle's
// identity namespaces, the primary first, for the studio's customer
// search; without identity: it lists none.
func TestStatusListsIdentityNamespaces(t *testing.T) {
	now := time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	namespaces := func(s *Sidecar) (names []string, hashed []string, present bool) {
		b, err := s.AppendStatus(nil)
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			NS *[]struct {
				NS   string `json:"ns"`
				Hash bool   `json:"hash"`
			} `json:"identity_namespaces"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if st.NS == nil {
			return nil, nil, false
		}
		for _, n := range *st.NS {
			names = append(names, n.NS)
			if n.Hash {
				hashed = append(hashed, n.NS)
			}
		}
		return names, hashed, true
	}
	fsys := demoFS(t)
	editManifest(t, fsys, "catalog: catalog.yaml", identitySection)
	names, hashed, _ := namespaces(openFS(t, fsys, now))
	if want := []string{"crm_id", "cookie", "device", "email"}; !slices.Equal(names, want) || !slices.Equal(hashed, []string{"email"}) {
		t.Errorf("namespaces %v (hashed %v), want %v (hashed [email])", names, hashed, want)
	}
	if _, _, present := namespaces(openDemo(t, now)); present {
		t.Errorf("the demo without identity: lists namespaces")
	}
}
