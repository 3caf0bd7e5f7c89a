package evaluate

import (
	"io/fs"

	"nba/nba"
	"nba/nba/sidecar"
)

// LoadCatalog compiles the catalog of the bundle in fsys exactly as the
// sidecar serves it (same profile schema, hence the same versions as in the
// decision log). See sidecar.LoadCatalog.
func LoadCatalog(fsys fs.FS) (*nba.Catalog, error) { return sidecar.LoadCatalog(fsys) }
