// Package model loads trained scoring models (XGBoost JSON, LightGBM text and a
// linear JSON format) into one immutable, flattened representation and scores
// rows with the same results as the reference libraries.
package model
