package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// The bundle that serves the experiment through the sidecar: the three arms
// are the actions of channel "email", scored by the visit model; the arm
// one-hot columns of the model are each action's features constants and the
// customer columns come from the snapshot.

// ActionIDs are the catalog ids of the arms, indexed by Arm. The catalog
// lists them in this order, so the engine breaks an exact tie of predicted
// visit toward the lower arm, as ModelPolicy does.
var ActionIDs = [NumArms]string{"no_email", "mens_email", "womens_email"}

// armOf maps an action id back to its arm.
func armOf(id string) (Arm, bool) {
	for a, s := range ActionIDs {
		if s == id {
			return Arm(a), true
		}
	}
	return 0, false
}

// armFeatures are the model inputs that depend on the arm; every other
// feature of FeatureNames is a snapshot column.
var armFeatures = map[string]bool{"arm_mens": true, "arm_womens": true}

// Channel is the channel the bundle decides on.
const Channel = "email"

// CustomerID is the id of c in the bundle's snapshot: its data row.
func CustomerID(c *Customer) string { return "r" + strconv.Itoa(c.Row) }

// bundleFiles returns the files of a bundle deciding among the arms for the
// customers cs with the visit model visitModel (XGBoost JSON): bundle.yaml,
// catalog.yaml, visit.json and customers.csv.
func bundleFiles(cs []Customer, visitModel []byte) map[string][]byte {
	var manifest bytes.Buffer
	manifest.WriteString(`# Hillstrom e-mail experiment: one action per arm, scored by the visit model.
catalog: catalog.yaml
models:
  visit: visit.json
snapshot:
  file: customers.csv
  as_of: 2008-03-01T00:00:00Z
  columns:
`)
	for _, f := range FeatureNames {
		if !armFeatures[f] {
			fmt.Fprintf(&manifest, "    %s: number\n", f)
		}
	}

	// value 1: the ranking is by predicted visit probability alone. No
	// caps, no holdout, no fallback: every customer gets exactly one arm.
	var catalog bytes.Buffer
	catalog.WriteString(`version: hillstrom-visit
channels: [email]
defaults:
  model: visit
  value: 1
  lever: 1
policies:
  max_per_decision: 1
actions:
`)
	names := [NumArms]string{"No e-mail", "Men's merchandise e-mail", "Women's merchandise e-mail"}
	for a := range NumArms {
		fmt.Fprintf(&catalog, "  - id: %s\n    name: %s\n    channels: [email]\n    features: {arm_mens: %d, arm_womens: %d}\n",
			ActionIDs[a], strconv.Quote(names[a]), int(b2f(a == MensEmail)), int(b2f(a == WomensEmail)))
	}

	var snap bytes.Buffer
	snap.WriteString("id")
	for _, f := range FeatureNames {
		if !armFeatures[f] {
			snap.WriteString("," + f)
		}
	}
	snap.WriteByte('\n')
	x := make([]float64, len(FeatureNames))
	for i := range cs {
		c := &cs[i]
		snap.WriteString(CustomerID(c))
		x = c.Features(NoEmail, x)
		for j, f := range FeatureNames {
			if !armFeatures[f] {
				snap.WriteByte(',')
				snap.Write(strconv.AppendFloat(nil, x[j], 'g', -1, 64))
			}
		}
		snap.WriteByte('\n')
	}
	return map[string][]byte{
		"bundle.yaml":   manifest.Bytes(),
		"catalog.yaml":  catalog.Bytes(),
		"visit.json":    visitModel,
		"customers.csv": snap.Bytes(),
	}
}

// WriteBundle writes the bundle deciding among the arms for customers cs,
// scored by the XGBoost visit model in file visitModel, into dir (created
// if absent).
func WriteBundle(dir string, cs []Customer, visitModel string) error {
	m, err := os.ReadFile(visitModel)
	if err != nil {
		return fmt.Errorf("cannot write hillstrom bundle: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("cannot write hillstrom bundle: %w", err)
	}
	for name, data := range bundleFiles(cs, m) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o640); err != nil {
			return fmt.Errorf("cannot write hillstrom bundle: %w", err)
		}
	}
	return nil
}
