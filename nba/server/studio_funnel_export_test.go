package server

// Quantile exports quantile to the tests.
var Quantile = quantile
