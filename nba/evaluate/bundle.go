package evaluate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"

	"github.com/goccy/go-yaml"

	"nba/cache/snapshot"
	"nba/cache/state"
	"nba/cache/wal"
	"nba/model"
	"nba/nba"
	"nba/nba/sidecar"
)

// LoadCatalog compiles the catalog of the bundle in fsys with its models
// against the profile schema the sidecar would build for it (the snapshot's
// declared columns in name order, then the overlay fields of the profile
// mappings), so that its versions and profile slots are those of the
// serving sidecar. It reads neither the snapshot data nor any customer
// state: a replay serves the logged inputs instead.
func LoadCatalog(fsys fs.FS) (*nba.Catalog, error) {
	data, err := fs.ReadFile(fsys, sidecar.ManifestFile)
	if err != nil {
		return nil, fmt.Errorf("cannot load bundle: %w", err)
	}
	var m sidecar.Manifest
	if err := yaml.UnmarshalWithOptions(data, &m, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("cannot load bundle: cannot parse %s: %w", sidecar.ManifestFile, err)
	}
	if m.Catalog == "" {
		m.Catalog = "catalog.yaml"
	}
	scorers := map[string]nba.Scorer{}
	versions := map[string]string{}
	var errs []error
	for name, file := range m.Models {
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			errs = append(errs, fmt.Errorf("models.%s: cannot read %q: %w", name, file, err))
			continue
		}
		mod, err := model.Parse(path.Clean(file), b)
		if err != nil {
			errs = append(errs, fmt.Errorf("models.%s: %w", name, err))
			continue
		}
		scorers[name], versions[name] = mod, mod.Info().Version
	}
	var schema nba.Schema
	cols := make([]string, 0, len(m.Snapshot.Columns))
	for name := range m.Snapshot.Columns {
		cols = append(cols, name)
	}
	slices.Sort(cols)
	for _, name := range cols {
		k, err := snapshot.ParseKind(m.Snapshot.Columns[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("snapshot.columns.%s: %w", name, err))
			continue
		}
		schema.Fields = append(schema.Fields, nba.Field{Name: name, Kind: kindFromSnapshot(k)})
	}
	overlay, err := overlayFields(m.Profile)
	if err != nil {
		errs = append(errs, err)
	}
	for _, f := range overlay {
		if !slices.ContainsFunc(schema.Fields, func(g nba.Field) bool { return g.Name == f.Name }) {
			schema.Fields = append(schema.Fields, f)
		}
	}
	catBytes, err := fs.ReadFile(fsys, m.Catalog)
	if err != nil {
		errs = append(errs, fmt.Errorf("cannot read catalog %q: %w", m.Catalog, err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("cannot load bundle: %w", errors.Join(errs...))
	}
	c, err := nba.CompileCatalog(m.Catalog, catBytes, nba.Options{Schema: schema, Models: scorers, ModelVersions: versions})
	if err != nil {
		return nil, fmt.Errorf("cannot load bundle: %w", err)
	}
	return c, nil
}

// overlayFields returns the live profile fields of the mappings, in the
// order the state store declares them. The store is opened on an empty
// temporary directory only to compile the mappings as the sidecar does.
func overlayFields(mp state.Mappings) ([]nba.Field, error) {
	dir, err := os.MkdirTemp("", "nba-evaluate-")
	if err != nil {
		return nil, fmt.Errorf("cannot compile profile mappings: %w", err)
	}
	defer os.RemoveAll(dir)
	st, err := state.Open(state.Config{Mappings: mp, WAL: wal.Config{Dir: dir}})
	if err != nil {
		return nil, fmt.Errorf("cannot compile profile mappings: %w", err)
	}
	defer st.Close()
	var out []nba.Field
	for _, f := range st.Fields() {
		out = append(out, nba.Field{Name: f.Name, Kind: kindFromOverlay(f.Type)})
	}
	return out, nil
}

func kindFromSnapshot(k snapshot.Kind) nba.Kind {
	switch k {
	case snapshot.KindCategory:
		return nba.KindCategory
	case snapshot.KindTime:
		return nba.KindTime
	case snapshot.KindBool:
		return nba.KindBool
	}
	return nba.KindNumber
}

func kindFromOverlay(t state.FieldType) nba.Kind {
	switch t {
	case state.TypeCategory:
		return nba.KindCategory
	case state.TypeTime:
		return nba.KindTime
	case state.TypeBool:
		return nba.KindBool
	}
	return nba.KindNumber
}
