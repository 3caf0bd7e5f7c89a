package model

import "fmt"

// parseXGBoost loads an XGBoost JSON model.
func parseXGBoost(name string, data []byte) (Model, error) {
	return nil, fmt.Errorf("cannot load model %q: XGBoost JSON models are not supported yet", name)
}
