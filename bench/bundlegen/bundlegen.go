// Package bundlegen generates a synthetic decision bundle for benchmarks:
// customers with 32 model features and a few rule-only fields, a catalog of
// actions over four channels with rules on profile and context, caps and
// suppressions, contact history for a share of the customers, and an XGBoost
// JSON propensity model (random splits and leaves, in XGBoost's own schema)
// over the customer and action features.
//
// Everything is derived from Config.Seed, so a bundle is reproducible. The
// bundle is held in memory (Generate) and can be written to a directory
// (Write). Profiles and History serve the generated customers to the
// decision engine from memory. Limits: at most 10,000,000 customers and
// 10,000 actions; customers are held as float64 columns (8 bytes per field
// and customer).
package bundlegen

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"nba/nba"
)

// Config sizes a bundle. Zero fields take the defaults in brackets.
type Config struct {
	Customers        int     // [1000] number of customers
	Actions          int     // [200] number of actions
	Trees            int     // [200] model trees
	Depth            int     // [6] depth of every tree (2^depth leaves)
	CustomerFeatures int     // [32] profile fields the model reads (at least 6)
	ActionFeatures   int     // [8] per-action constants the model reads
	HistoryShare     float64 // [0.1] share of customers with contact history
	Seed             uint64  // [1] seed of every random choice
	// Now is the time contact history is generated back from [2026-11-23 10:00 UTC].
	Now time.Time
}

func (c *Config) defaults() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Customers, 1000)
	def(&c.Actions, 200)
	def(&c.Trees, 200)
	def(&c.Depth, 6)
	def(&c.CustomerFeatures, 32)
	def(&c.ActionFeatures, 8)
	if c.HistoryShare == 0 {
		c.HistoryShare = 0.1
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Now.IsZero() {
		c.Now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	}
	switch {
	case c.Customers < 1 || c.Customers > 10_000_000:
		return fmt.Errorf("customers %d out of range [1, 10000000]", c.Customers)
	case c.Actions < 1 || c.Actions > 10_000:
		return fmt.Errorf("actions %d out of range [1, 10000]", c.Actions)
	case c.Trees < 1 || c.Depth < 1 || c.Depth > 16:
		return fmt.Errorf("trees %d and depth %d must be positive (depth at most 16)", c.Trees, c.Depth)
	case c.CustomerFeatures < len(namedFeatures):
		return fmt.Errorf("customer features %d: at least %d", c.CustomerFeatures, len(namedFeatures))
	case c.ActionFeatures < 1:
		return fmt.Errorf("action features %d: at least 1", c.ActionFeatures)
	case c.HistoryShare < 0 || c.HistoryShare > 1:
		return fmt.Errorf("history share %v out of range [0, 1]", c.HistoryShare)
	}
	return nil
}

// Channels are the bundle's channels.
var Channels = []string{"web", "app", "email", "sms"}

// Placements per channel.
var Placements = map[string][]string{
	"web": {"home_hero", "account", "checkout"}, "app": {"home_card", "inbox", "offers"},
	"email": {"newsletter"}, "sms": {"alert"},
}

// Pages are the values of the "page" context field.
var Pages = []string{"home", "cards", "loans", "travel", "support", "checkout"}

// Segments are the values of the "segment" category field.
var Segments = []string{"bronze", "silver", "gold", "platinum"}

// named model features at the head of the customer features; the rest are x00, x01, ...
var namedFeatures = []string{"age", "clv", "tenure", "segment", "in_arrears", "ticket_open"}

// Contact is one generated contact-history record.
type Contact struct {
	Customer int32
	Action   int32 // index into the catalog's actions
	Channel  int8  // index into Channels
	Outcome  nba.Outcome
	At       int64 // unix seconds
}

// Bundle is a generated bundle. It is not modified after Generate, so it is
// safe for concurrent reads.
type Bundle struct {
	Config Config
	// Schema lists the profile fields: the model's customer features, then
	// birth_date, signup (time) and tz_offset (minutes).
	Schema nba.Schema
	// Columns hold one value per customer for each schema field (category
	// codes for "segment", unix seconds for times, NaN = missing).
	Columns [][]float64
	// Catalog is the catalog YAML; ModelName the name its actions use.
	Catalog   []byte
	ModelName string
	// Model is the propensity model in XGBoost's JSON schema.
	Model []byte
	// ModelFeatures are the model's inputs: customer features, then a0..a7.
	ModelFeatures []string
	// ActionIDs and ActionGroups index the catalog's actions.
	ActionIDs, ActionGroups []string
	// Contacts are sorted by customer.
	Contacts []Contact
	// contactStart[i] is the first contact of customer i; len = Customers+1.
	contactStart []int32
}

// CustomerID names customer i.
func CustomerID(i int) string { return fmt.Sprintf(IDFormat, i) }

// IDFormat is the format of customer ids: CustomerID(i) is
// fmt.Sprintf(IDFormat, i), for i from 0 to Config.Customers-1.
const IDFormat = "c%08d"

// IDFormatFile is the file of a written bundle that holds IDFormat, for
// load generators (bench/load) to address the bundle's customers.
const IDFormatFile = "customer.format"

// parseCustomerID returns the index of a CustomerID, or -1.
func parseCustomerID(s string) int {
	if len(s) != 9 || s[0] != 'c' {
		return -1
	}
	n := 0
	for i := 1; i < 9; i++ {
		d := s[i] - '0'
		if d > 9 {
			return -1
		}
		n = n*10 + int(d)
	}
	return n
}

// Generate builds a bundle in memory.
func Generate(cfg Config) (*Bundle, error) {
	if err := cfg.defaults(); err != nil {
		return nil, fmt.Errorf("cannot generate bundle: %w", err)
	}
	b := &Bundle{Config: cfg, ModelName: "propensity"}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x6e6261))
	b.schema()
	b.customers(r)
	b.catalog(r)
	b.model(r)
	b.history(r)
	return b, nil
}

func (b *Bundle) schema() {
	f := b.Schema.Fields[:0]
	for i := 0; i < b.Config.CustomerFeatures; i++ {
		name, kind := fmt.Sprintf("x%02d", i-len(namedFeatures)), nba.KindNumber
		if i < len(namedFeatures) {
			name = namedFeatures[i]
		}
		switch name {
		case "segment":
			kind = nba.KindCategory
		case "in_arrears", "ticket_open":
			kind = nba.KindBool
		}
		f = append(f, nba.Field{Name: name, Kind: kind})
		b.ModelFeatures = append(b.ModelFeatures, name)
	}
	for i := 0; i < b.Config.ActionFeatures; i++ {
		b.ModelFeatures = append(b.ModelFeatures, fmt.Sprintf("a%d", i))
	}
	f = append(f, nba.Field{Name: "birth_date", Kind: nba.KindTime}, nba.Field{Name: "signup", Kind: nba.KindTime},
		nba.Field{Name: "tz_offset", Kind: nba.KindNumber})
	b.Schema.Fields = f
}

func (b *Bundle) customers(r *rand.Rand) {
	n := b.Config.Customers
	now := b.Config.Now.Unix()
	b.Columns = make([][]float64, len(b.Schema.Fields))
	for fi, f := range b.Schema.Fields {
		col := make([]float64, n)
		for i := range col {
			var v float64
			switch f.Name {
			case "age":
				v = float64(18 + r.IntN(70))
			case "clv":
				v = math.Round(math.Exp(r.NormFloat64()+5)*100) / 100
			case "tenure":
				v = float64(r.IntN(3650))
			case "segment":
				v = float64(r.IntN(len(Segments)))
			case "in_arrears":
				v = b2f(r.Float64() < 0.05)
			case "ticket_open":
				v = b2f(r.Float64() < 0.08)
			case "birth_date":
				v = float64(time.Date(1940+r.IntN(65), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Unix())
			case "signup":
				v = float64(now - int64(r.IntN(3650*86400)))
			case "tz_offset":
				v = float64(60 * (r.IntN(5) - 1))
			default:
				v = r.Float64()
				if r.IntN(20) == 0 {
					v = math.NaN()
				}
			}
			col[i] = v
		}
		b.Columns[fi] = col
	}
}

func b2f(x bool) float64 {
	if x {
		return 1
	}
	return 0
}

// groups: issue -> group; the sales groups are mutually exclusive.
var groupTree = []struct{ id, parent string }{
	{"sales", ""}, {"retention", ""}, {"service", ""},
	{"cards", "sales"}, {"loans", "sales"}, {"insurance", "sales"}, {"travel", "sales"},
	{"loyalty", "retention"}, {"winback", "retention"},
	{"care", "service"}, {"education", "service"},
}

func (b *Bundle) catalog(r *rand.Rand) {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	p("version: synthetic-%d\n", b.Config.Seed)
	p("channels: [%s]\n", strings.Join(Channels, ", "))
	p("context: {page: category, basket: number}\n")
	p("timezone_field: tz_offset\n")
	p("defaults: {model: %s}\n", b.ModelName)
	p("fallback: fallback_service\n")
	p("holdout: {salt: bench, global: 0.02}\n")
	p("policies:\n  max_per_decision: 5\n  channels:\n")
	p("    email: [{max: 1, window: 1d}, {max: 3, window: 7d}]\n")
	p("    sms: [{max: 1, window: 7d}]\n")
	p("groups:\n")
	for _, g := range groupTree {
		p("  - id: %s\n", g.id)
		if g.parent != "" {
			p("    parent: %s\n", g.parent)
		}
		switch g.id {
		case "sales":
			p("    exclusive: true\n    lever: 1.2\n")
			p("    rules: {suitable: [\"!profile.in_arrears\", \"!profile.ticket_open\"]}\n")
			p("    caps: [{max: 6, window: 7d}]\n")
			p("    suppress: [{after: reject, pause: 30d}, {after: impression, count: 3, without: click, within: 7d, pause: 14d}]\n")
		case "service":
			p("    lever: 0.8\n")
		case "care":
			p("    rules: {applicable: [\"profile.ticket_open || context.page == \\\"support\\\"\"]}\n")
		}
		if g.parent != "" {
			p("    action_caps: [{max: 3, window: 7d}]\n")
		}
	}
	leaves := []string{"cards", "loans", "insurance", "travel", "loyalty", "winback", "care", "education"}
	p("actions:\n")
	for i := 0; i < b.Config.Actions; i++ {
		id := fmt.Sprintf("act_%03d", i)
		g := leaves[r.IntN(len(leaves))]
		b.ActionIDs, b.ActionGroups = append(b.ActionIDs, id), append(b.ActionGroups, g)
		ch := []string{Channels[r.IntN(len(Channels))]}
		if r.IntN(2) == 0 {
			if c2 := Channels[r.IntN(len(Channels))]; c2 != ch[0] {
				ch = append(ch, c2)
			}
		}
		p("  - id: %s\n    name: Action %d\n    group: %s\n    channels: [%s]\n", id, i, g, strings.Join(ch, ", "))
		var pl []string
		for _, c := range ch {
			pl = append(pl, Placements[c][r.IntN(len(Placements[c]))])
		}
		p("    placements: [%s]\n", strings.Join(pl, ", "))
		if i%40 == 7 {
			p("    tier: 1\n    pin_when: \"days_to_birthday(profile.birth_date) == 0\"\n")
		}
		switch r.IntN(3) {
		case 0:
			p("    value: %.2f\n", 1+r.Float64()*20)
		case 1:
			p("    value: \"profile.clv * %.3f + 1\"\n", 0.005+r.Float64()*0.02)
		default:
			p("    value: \"context.basket > 50 ? %.1f : %.1f\"\n", 5+r.Float64()*10, 1+r.Float64()*4)
		}
		p("    features: {")
		for k := 0; k < b.Config.ActionFeatures; k++ {
			if k > 0 {
				p(", ")
			}
			p("a%d: %.3f", k, r.Float64())
		}
		p("}\n    rules:\n")
		p("      eligible: [\"profile.age >= %d\", \"profile.tenure > %d\"]\n", 18+r.IntN(30), r.IntN(365))
		page := Pages[r.IntN(len(Pages))]
		p("      applicable: [\"context.page in [\\\"%s\\\", \\\"home\\\"] || impressions(\\\"action\\\", \\\"%s\\\", \\\"30d\\\") == 0\"]\n", page, id)
		p("      suitable: [\"profile.segment %s [\\\"%s\\\"]\"]\n", []string{"in", "not in"}[r.IntN(2)], Segments[r.IntN(len(Segments))])
		p("    treatments:\n")
		for _, c := range ch {
			p("      %s: {headline: \"Offer %d\", image: \"/img/%s.png\", cta: \"Learn more\"}\n", c, i, id)
		}
	}
	p("  - id: fallback_service\n    group: education\n    channels: [%s]\n    rules: {eligible: [\"false\"]}\n", strings.Join(Channels, ", "))
	p("    treatments: {web: {headline: \"How can we help?\"}}\n")
	b.Catalog = []byte(w.String())
}

// model writes full binary trees of the configured depth in XGBoost's JSON
// schema, with random split features, thresholds in the features' range and
// small random leaves.
func (b *Bundle) model(r *rand.Rand) {
	nf := len(b.ModelFeatures)
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	p(`{"learner":{"attributes":{},"feature_names":[`)
	for i, f := range b.ModelFeatures {
		if i > 0 {
			p(",")
		}
		p("%q", f)
	}
	p(`],"feature_types":[`)
	for i := range b.ModelFeatures {
		if i > 0 {
			p(",")
		}
		p(`"float"`)
	}
	p(`],"gradient_booster":{"model":{"gbtree_model_param":{"num_parallel_tree":"1","num_trees":"%d"},"iteration_indptr":[`, b.Config.Trees)
	for i := 0; i <= b.Config.Trees; i++ {
		if i > 0 {
			p(",")
		}
		p("%d", i)
	}
	p(`],"tree_info":[`)
	for i := 0; i < b.Config.Trees; i++ {
		if i > 0 {
			p(",")
		}
		p("0")
	}
	p(`],"trees":[`)
	nn := 1<<(b.Config.Depth+1) - 1
	inner := 1<<b.Config.Depth - 1
	for t := 0; t < b.Config.Trees; t++ {
		if t > 0 {
			p(",")
		}
		left, right, parents, split, cond, defl, zeros, fzeros := make([]string, nn), make([]string, nn), make([]string, nn),
			make([]string, nn), make([]string, nn), make([]string, nn), make([]string, nn), make([]string, nn)
		for i := 0; i < nn; i++ {
			zeros[i], fzeros[i] = "0", "0.0"
			parents[i] = strconv.Itoa((i - 1) / 2)
			if i == 0 {
				parents[i] = "2147483647"
			}
			if i < inner {
				left[i], right[i] = strconv.Itoa(2*i+1), strconv.Itoa(2*i+2)
				f := r.IntN(nf)
				split[i] = strconv.Itoa(f)
				cond[i] = b.threshold(f, r)
				defl[i] = strconv.Itoa(r.IntN(2))
			} else {
				left[i], right[i], split[i], defl[i] = "-1", "-1", "0", "0"
				cond[i] = jsonFloat32((r.Float64() - 0.5) * 0.2)
			}
		}
		j := func(s []string) string { return strings.Join(s, ",") }
		p(`{"base_weights":[%s],"categories":[],"categories_nodes":[],"categories_segments":[],"categories_sizes":[],`, j(cond))
		p(`"default_left":[%s],"id":%d,"left_children":[%s],"loss_changes":[%s],"parents":[%s],"right_children":[%s],`,
			j(defl), t, j(left), j(fzeros), j(parents), j(right))
		p(`"split_conditions":[%s],"split_indices":[%s],"split_type":[%s],"sum_hessian":[%s],`, j(cond), j(split), j(zeros), j(fzeros))
		p(`"tree_param":{"num_deleted":"0","num_feature":"%d","num_nodes":"%d","size_leaf_vector":"1"}}`, nf, nn)
	}
	p(`]},"name":"gbtree"},"learner_model_param":{"base_score":"5E-1","boost_from_average":"1","num_class":"0","num_feature":"%d","num_target":"1"},`, nf)
	p(`"objective":{"name":"binary:logistic","reg_loss_param":{"scale_pos_weight":"1"}}},"version":[1,7,4]}`)
	b.Model = []byte(w.String())
}

// threshold draws a split value inside feature f's range.
func (b *Bundle) threshold(f int, r *rand.Rand) string {
	v := r.Float64()
	if f < len(b.Schema.Fields) {
		switch b.Schema.Fields[f].Name {
		case "age":
			v = float64(18 + r.IntN(70))
		case "clv":
			v = math.Exp(r.NormFloat64() + 5)
		case "tenure":
			v = float64(r.IntN(3650))
		case "segment":
			v = float64(r.IntN(len(Segments))) + 0.5
		case "in_arrears", "ticket_open":
			v = 0.5
		}
	}
	return jsonFloat32(v)
}

// jsonFloat32 formats v as XGBoost writes its float32 numbers: always with
// a fraction or an exponent (XGBoost's JSON reader tells integers from
// numbers by their text).
func jsonFloat32(v float64) string {
	s := strconv.FormatFloat(float64(float32(v)), 'g', -1, 32)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

func (b *Bundle) history(r *rand.Rand) {
	now := b.Config.Now.Unix()
	n := b.Config.Customers
	b.contactStart = make([]int32, n+1)
	for c := 0; c < n; c++ {
		b.contactStart[c] = int32(len(b.Contacts))
		if r.Float64() >= b.Config.HistoryShare {
			continue
		}
		k := 1 + r.IntN(20)
		for range k {
			a := r.IntN(len(b.ActionIDs))
			o := nba.Impression
			switch x := r.IntN(10); {
			case x == 0:
				o = nba.Reject
			case x < 3:
				o = nba.Click
			}
			b.Contacts = append(b.Contacts, Contact{Customer: int32(c), Action: int32(a),
				Channel: int8(r.IntN(len(Channels))), Outcome: o, At: now - int64(r.IntN(30*86400))})
		}
	}
	b.contactStart[n] = int32(len(b.Contacts))
}

// Write stores the bundle under dir: bundle.yaml (the manifest nba serve
// reads), catalog.yaml, models/<name>.json, schema.txt (one "name kind" a line), customers.csv, contacts.csv
// and customer.format (IDFormat, one line).
func (b *Bundle) Write(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "models"), 0o755); err != nil {
		return fmt.Errorf("cannot write bundle: %w", err)
	}
	files := map[string][]byte{
		"catalog.yaml": b.Catalog,
		filepath.Join("models", b.ModelName+".json"): b.Model,
	}
	var schema, manifest strings.Builder
	fmt.Fprintf(&manifest, "# A synthetic benchmark bundle (bench/bundlegen, seed %d).\n", b.Config.Seed)
	fmt.Fprintf(&manifest, "catalog: catalog.yaml\nmodels: {%s: models/%s.json}\n", b.ModelName, b.ModelName)
	fmt.Fprintf(&manifest, "snapshot:\n  file: customers.csv\n  id: customer_id\n  as_of: %s\n  columns:\n", b.Config.Now.UTC().Format(time.RFC3339))
	for _, f := range b.Schema.Fields {
		fmt.Fprintf(&schema, "%s %s\n", f.Name, f.Kind)
		fmt.Fprintf(&manifest, "    %s: %s\n", f.Name, f.Kind)
	}
	files["schema.txt"] = []byte(schema.String())
	files["bundle.yaml"] = []byte(manifest.String())
	files[IDFormatFile] = []byte(IDFormat + "\n")
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("cannot write bundle: %w", err)
		}
	}
	if err := b.writeCSV(filepath.Join(dir, "customers.csv"), b.writeCustomers); err != nil {
		return err
	}
	return b.writeCSV(filepath.Join(dir, "contacts.csv"), b.writeContacts)
}

func (b *Bundle) writeCSV(path string, fill func(*bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write bundle: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fill(w)
	err = errors.Join(w.Flush(), f.Close())
	if err != nil {
		return fmt.Errorf("cannot write bundle %q: %w", path, err)
	}
	return nil
}

func (b *Bundle) writeCustomers(w *bufio.Writer) {
	w.WriteString("customer_id")
	for _, f := range b.Schema.Fields {
		w.WriteString("," + f.Name)
	}
	w.WriteByte('\n')
	var buf []byte
	for i := 0; i < b.Config.Customers; i++ {
		w.WriteString(CustomerID(i))
		for fi, f := range b.Schema.Fields {
			w.WriteByte(',')
			v := b.Columns[fi][i]
			switch {
			case math.IsNaN(v):
			case f.Kind == nba.KindCategory:
				w.WriteString(Segments[int(v)])
			case f.Kind == nba.KindTime:
				w.WriteString(time.Unix(int64(v), 0).UTC().Format(time.RFC3339))
			default:
				buf = strconv.AppendFloat(buf[:0], v, 'g', -1, 64)
				w.Write(buf)
			}
		}
		w.WriteByte('\n')
	}
}

func (b *Bundle) writeContacts(w *bufio.Writer) {
	w.WriteString("customer_id,action,group,channel,outcome,at\n")
	for _, c := range b.Contacts {
		fmt.Fprintf(w, "%s,%s,%s,%s,%s,%s\n", CustomerID(int(c.Customer)), b.ActionIDs[c.Action], b.ActionGroups[c.Action],
			Channels[c.Channel], c.Outcome, time.Unix(c.At, 0).UTC().Format(time.RFC3339))
	}
}
