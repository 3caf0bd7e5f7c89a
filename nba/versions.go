package nba

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// ModelVersion is one model a catalog binds and the version it was loaded
// at (e.g. a hash of its file).
type ModelVersion struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ModelVersions lists the models the catalog binds, by name (allocates; for
// status pages). Decision.ModelVersion is their ModelSetDigest.
func (c *Catalog) ModelVersions() []ModelVersion {
	out := make([]ModelVersion, 0, len(c.models))
	for _, m := range c.models {
		out = append(out, ModelVersion{Name: m.name, Version: m.version})
	}
	slices.SortFunc(out, func(a, b ModelVersion) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// ModelSetDigest returns the digest of a set of models: 16 hex digits of
// the SHA-256 of name, NUL, version, newline per model in name order, "" for no
// model. It is what a decision names its models by (Decision.ModelVersion):
// one short string however many models a bundle has, which changes when
// any model is added, removed or replaced. The full list is on the admin
// status page.
func ModelSetDigest(ms []ModelVersion) string {
	if len(ms) == 0 {
		return ""
	}
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b ModelVersion) int { return cmp.Compare(a.Name, b.Name) })
	h := sha256.New()
	for _, m := range ms {
		h.Write([]byte(m.Name + "\x00" + m.Version + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
