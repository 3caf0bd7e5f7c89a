package model

import "fmt"

// parseLinear loads an nba-linear JSON model.
func parseLinear(name string, data []byte) (Model, error) {
	return nil, fmt.Errorf("cannot load model %q: linear models are not supported yet", name)
}
