package model

import "fmt"

// parseLightGBM loads a LightGBM text model.
func parseLightGBM(name string, data []byte) (Model, error) {
	return nil, fmt.Errorf("cannot load model %q: LightGBM text models are not supported yet", name)
}
