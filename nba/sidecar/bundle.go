package sidecar

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"nba/cache/snapshot"
	"nba/model"
	"nba/nba"
	"nba/state"
)

// ManifestFile is the name of a bundle's manifest.
const ManifestFile = "bundle.yaml"

// Manifest is a bundle's bundle.yaml: which files hold the catalog, the
// models and the customer snapshot, and which live profile fields events
// change. Paths are relative to the bundle directory.
//
//	catalog: catalog.yaml
//	models: {propensity: model.json}
//	snapshot:
//	  file: customers.csv.zst
//	  as_of: 2026-11-01T00:00:00Z
//	  max_shrink: 0.2
//	  columns: {age: number, segment: category, birth_date: time, email_opt_in: bool}
//	profile:
//	  fields: {open_ticket: bool, cart_value: number}
//	  reset_on_snapshot: [orders_since_snapshot]
//	  events:
//	    ticket_opened: [{set: open_ticket, value: true}]
//	    cart_abandoned: [{set: cart_value, from: value}]
//	    purchase: [{incr: orders_since_snapshot}]
//
// A new snapshot supersedes the live fields it carries (columns of the same
// name) and those listed in profile.reset_on_snapshot; other live fields
// keep their values (see state.Mappings).
type Manifest struct {
	Catalog  string            `yaml:"catalog"`
	Models   map[string]string `yaml:"models"`
	Snapshot SnapshotSpec      `yaml:"snapshot"`
	Profile  state.Mappings    `yaml:"profile"`
	// Identity declares the identifier namespaces of identity stitching
	// (identity.go); absent, every customer_id is its own profile.
	Identity *state.IdentityConfig `yaml:"identity"`
}

// SnapshotSpec says where the customer snapshot is and what it must hold.
type SnapshotSpec struct {
	// File is the snapshot (CSV/TSV, JSON Lines or Parquet, optionally zstd
	// or gzip compressed).
	File string `yaml:"file"`
	// ID names the id column; default "id" (for CSV, the first column).
	ID string `yaml:"id"`
	// AsOf is the time the snapshot's data is current as of. When absent,
	// "<file>.asof" or the file's modification time is used.
	AsOf string `yaml:"as_of"`
	// MaxShrink is the largest fraction of customers a new snapshot may lose
	// before it is rejected as truncated; default 0.2.
	MaxShrink float64 `yaml:"max_shrink"`
	// Columns declares the feature columns and their kinds (number,
	// category, time, bool). A snapshot with other columns is rejected.
	Columns map[string]string `yaml:"columns"`
}

// parts is a loaded and compiled bundle, immutable.
type parts struct {
	consentCols   []consentCol // snapshot columns consent.<channel>.<purpose> (consent.go)
	manifest      Manifest
	catalog       *nba.Catalog
	catalogBytes  []byte
	actionsJSON   []byte // GET /v1/actions
	models        map[string]model.Model
	modelVersions map[string]string
	snapSchema    *snapshot.Schema
	snapAsOf      time.Time
	schema        nba.Schema
	// src maps each schema field to where its value comes from.
	src []fieldSource
	// eventTypes are the event types a profile mapping or a journey
	// names; eventList lists them sorted, for the error that refuses
	// another.
	eventTypes map[string]bool
	eventList  string
	// version hashes the manifest, catalog and model files.
	version  string
	loadedAt time.Time
}

// fieldSource is where a profile field's value comes from: a snapshot
// column (by name; the index is resolved per snapshot) and/or an overlay
// slot.
type fieldSource struct {
	name   string
	kind   nba.Kind
	inSnap bool
	slot   state.Slot // -1 when not an overlay field
}

// readManifest reads and checks bundle.yaml.
func readManifest(fsys fs.FS) (Manifest, []byte, error) {
	var m Manifest
	data, err := fs.ReadFile(fsys, ManifestFile)
	if err != nil {
		return m, nil, fmt.Errorf("cannot read %s: %w", ManifestFile, err)
	}
	// Every unknown key and misshapen value, each with its line and
	// column; the checks below still run on the rest.
	decoded, errs := nba.DecodeYAML(ManifestFile, data, &m)
	if !decoded {
		return m, nil, errors.Join(errs...)
	}
	if m.Catalog == "" {
		m.Catalog = "catalog.yaml"
	}
	if len(m.Models) == 0 {
		errs = append(errs, fmt.Errorf("%s: models: at least one model is required", ManifestFile))
	}
	if m.Snapshot.File == "" {
		errs = append(errs, fmt.Errorf("%s: snapshot.file is required", ManifestFile))
	}
	if len(m.Snapshot.Columns) == 0 {
		errs = append(errs, fmt.Errorf("%s: snapshot.columns must declare the snapshot's feature columns", ManifestFile))
	}
	for _, name := range sortedKeys(m.Snapshot.Columns) {
		if _, err := snapshot.ParseKind(m.Snapshot.Columns[name]); err != nil {
			errs = append(errs, fmt.Errorf("%s: snapshot.columns.%s: %v", ManifestFile, name, err))
		}
	}
	errs = append(errs, checkIdentity(&m, data)...)
	if m.Snapshot.AsOf != "" {
		if _, err := time.Parse(time.RFC3339, m.Snapshot.AsOf); err != nil {
			errs = append(errs, fmt.Errorf("%s: snapshot.as_of: want an RFC 3339 time: %v", ManifestFile, err))
		}
	}
	return m, data, errors.Join(errs...)
}

// loadParts reads and compiles everything of a bundle but the snapshot
// data: manifest, models and catalog. It reports every problem it finds.
func loadParts(fsys fs.FS, st state.Backend) (*parts, error) {
	m, manifestBytes, err := readManifest(fsys)
	if err != nil {
		return nil, err
	}
	p := &parts{manifest: m, models: map[string]model.Model{}, modelVersions: map[string]string{}, loadedAt: time.Now()}
	h := sha256.New()
	h.Write(manifestBytes)
	var errs []error
	for _, name := range sortedKeys(m.Models) {
		file := m.Models[name]
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			errs = append(errs, fmt.Errorf("models.%s: cannot read %q: %w", name, file, err))
			continue
		}
		h.Write(data)
		mod, err := model.Parse(path.Clean(file), data)
		if err != nil {
			errs = append(errs, fmt.Errorf("models.%s: %w", name, err))
			continue
		}
		p.models[name] = mod
		p.modelVersions[name] = mod.Info().Version
	}

	// The profile schema: the snapshot's declared columns, then the overlay
	// fields that are not also snapshot columns.
	p.snapSchema = &snapshot.Schema{ID: m.Snapshot.ID}
	for _, name := range sortedKeys(m.Snapshot.Columns) {
		k, _ := snapshot.ParseKind(m.Snapshot.Columns[name])
		p.snapSchema.Columns = append(p.snapSchema.Columns, snapshot.Column{Name: name, Kind: k})
		if cc, ok, err := parseConsentColumn(name, k); ok || err != nil {
			if err != nil {
				errs = append(errs, err)
			}
			p.consentCols = append(p.consentCols, cc) // not a profile field
			continue
		}
		p.schema.Fields = append(p.schema.Fields, nba.Field{Name: name, Kind: kindFromSnapshot(k)})
		p.src = append(p.src, fieldSource{name: name, kind: kindFromSnapshot(k), inSnap: true, slot: -1})
	}
	if m.Snapshot.AsOf != "" {
		p.snapAsOf, _ = time.Parse(time.RFC3339, m.Snapshot.AsOf)
	}
	if st != nil {
		for _, f := range st.Fields() {
			slot, _, _ := st.Slot(f.Name)
			k := kindFromOverlay(f.Type)
			if i := slices.IndexFunc(p.src, func(s fieldSource) bool { return s.name == f.Name }); i >= 0 {
				if p.src[i].kind != k {
					errs = append(errs, fmt.Errorf("profile.fields.%s: kind %s differs from snapshot column kind %s", f.Name, k, p.src[i].kind))
					continue
				}
				p.src[i].slot = slot
				continue
			}
			p.schema.Fields = append(p.schema.Fields, nba.Field{Name: f.Name, Kind: k})
			p.src = append(p.src, fieldSource{name: f.Name, kind: k, slot: slot})
		}
	}

	catalogBytes, err := fs.ReadFile(fsys, m.Catalog)
	if err != nil {
		errs = append(errs, fmt.Errorf("cannot read catalog %q: %w", m.Catalog, err))
		return nil, errors.Join(errs...)
	}
	h.Write(catalogBytes)
	p.catalogBytes = catalogBytes
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	scorers := make(map[string]nba.Scorer, len(p.models))
	for name, mod := range p.models {
		scorers[name] = mod
	}
	// The catalog may count only as far back as the state does (a bundle
	// validated without one: as far as a default state would).
	maxWindow := state.DefaultMaxWindow
	if st != nil {
		maxWindow = st.MaxWindow()
	}
	cat, err := nba.CompileCatalog(m.Catalog, catalogBytes, nba.Options{Schema: p.schema, Models: scorers, ModelVersions: p.modelVersions,
		MaxWindow: maxWindow})
	if err != nil {
		// Each problem already names the file, line and column.
		errs = append(errs, unjoin(err)...)
		return nil, errors.Join(errs...)
	}
	p.catalog = cat
	if err := errors.Join(checkConsentMappings(m.Profile, cat), checkConsentColumns(p.consentCols, cat)); err != nil {
		return nil, err
	}
	p.eventTypes = map[string]bool{}
	for t := range m.Profile.Events {
		p.eventTypes[t] = true
	}
	for _, t := range cat.JourneyEvents() {
		p.eventTypes[t] = true
	}
	p.eventList = strings.Join(sortedKeys(p.eventTypes), ", ")
	if p.actionsJSON, err = catalogJSON(cat, catalogBytes); err != nil {
		return nil, fmt.Errorf("cannot render catalog %q as JSON: %w", m.Catalog, err)
	}
	p.version = hex.EncodeToString(h.Sum(nil)[:8])
	return p, nil
}

// snapshotConfig is how the bundle's snapshot is loaded.
func (p *parts) snapshotConfig() snapshot.Config {
	return snapshot.Config{Schema: p.snapSchema, IDColumn: p.manifest.Snapshot.ID, MaxShrink: p.manifest.Snapshot.MaxShrink, AsOf: p.snapAsOf}
}

// readSnapshot parses the bundle's snapshot file. It is streamed when the
// file system's files are io.ReaderAt (os.DirFS, fstest.MapFS), so the
// file is never held in memory whole.
func readSnapshot(fsys fs.FS, p *parts) (*snapshot.Snapshot, error) {
	file := p.manifest.Snapshot.File
	f, err := fsys.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read snapshot %q: %w", file, err)
	}
	defer f.Close()
	cfg := p.snapshotConfig()
	if cfg.AsOf.IsZero() {
		if b, err := fs.ReadFile(fsys, file+".asof"); err == nil {
			cfg.AsOf, err = time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
			if err != nil {
				return nil, fmt.Errorf("cannot read snapshot %q: %s.asof: %w", file, file, err)
			}
		} else if fi, err := fs.Stat(fsys, file); err == nil && !fi.ModTime().IsZero() {
			cfg.AsOf = fi.ModTime()
		} else {
			cfg.AsOf = time.Now()
		}
	}
	return snapshot.ParseReader(file, f, cfg)
}

// ValidateBundle loads every part of the bundle in fsys (manifest, models,
// catalog, snapshot) without serving it and returns every problem found.
func ValidateBundle(fsys fs.FS) []error {
	var errs []error
	err := withParts(fsys, func(p *parts) error {
		if _, err := readSnapshot(fsys, p); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		return unjoin(err)
	}
	return errs
}

// LoadCatalog compiles the catalog of the bundle in fsys against the profile
// schema the sidecar would serve it with (snapshot columns, then live profile
// fields), so its versions match the decision log, without reading the
// snapshot or touching any state. It is for offline tools: replay, evaluate.
func LoadCatalog(fsys fs.FS) (*nba.Catalog, error) {
	var cat *nba.Catalog
	err := withParts(fsys, func(p *parts) error {
		cat = p.catalog
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot load bundle: %w", err)
	}
	return cat, nil
}

// withParts loads the bundle's manifest, models and catalog, resolving the
// live profile fields through a throwaway state store, and calls f.
func withParts(fsys fs.FS, f func(*parts) error) error {
	m, _, err := readManifest(fsys)
	if err != nil {
		return err
	}
	var st state.Backend // nil, not a nil *embedded.Store: loadParts tests it
	if len(m.Profile.Events) > 0 || len(m.Profile.Fields) > 0 {
		dir, err := os.MkdirTemp("", "nba-bundle-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		opened, err := openState(dir, m, Config{})
		if err != nil {
			return fmt.Errorf("%s: profile: %w", ManifestFile, err)
		}
		defer opened.Close()
		st = opened
	}
	p, err := loadParts(fsys, st)
	if err != nil {
		return err
	}
	return f(p)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
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

// sortedKeys returns a map's keys in order, so that problems are reported
// in the same order on every load.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return strings.TrimSpace(s)
}
