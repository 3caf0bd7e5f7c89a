package model

import (
	"bytes"
	"encoding/json"
)

// modelFormat is a model file format recognised from content.
type modelFormat uint8

const (
	formatUnknown modelFormat = iota
	formatEmpty
	formatXGBoost  // JSON object with a "learner" member
	formatLinear   // JSON object with "format": "nba-linear"
	formatLightGBM // text starting with "tree"
	formatUBJSON   // XGBoost's binary JSON (or another non-JSON object)
)

// detect recognises a model file from its content, never from its name:
// LightGBM text starts with the line "tree"; an nba-linear model is a JSON
// object whose "format" member is "nba-linear"; an XGBoost model is a JSON
// object with a "learner" member. Leading white space and a UTF-8 byte order
// mark are skipped.
func detect(data []byte) modelFormat {
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("\ufeff")), " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return formatEmpty
	case bytes.HasPrefix(trimmed, []byte("tree")):
		return formatLightGBM
	case trimmed[0] != '{':
		return formatUnknown
	}
	// Only the top-level members are decoded here; the values stay raw.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil {
		if !json.Valid(trimmed) && !bytes.Contains(trimmed[:min(len(trimmed), 64)], []byte(`"`)) {
			return formatUBJSON
		}
		// Malformed JSON: let the loader that the text looks like report
		// where it breaks.
		if bytes.Contains(trimmed[:min(len(trimmed), 4096)], []byte(`"nba-linear"`)) {
			return formatLinear
		}
		return formatXGBoost
	}
	if f, ok := top["format"]; ok {
		var s string
		if json.Unmarshal(f, &s) == nil && s == "nba-linear" {
			return formatLinear
		}
	}
	if _, ok := top["learner"]; ok {
		return formatXGBoost
	}
	if _, ok := top["format"]; ok {
		return formatLinear // names another format: the linear loader says which
	}
	return formatUnknown
}
