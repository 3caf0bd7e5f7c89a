package nba

// PlaceProblems returns problems found by path in a YAML file (paths as
// "identity.namespaces.email.hash"), each placed at its line and column as
// the catalog's are: "bundle.yaml:12:5: identity.namespaces.email.hash: ...".
// A path not in the file is reported without a position.
func PlaceProblems(name string, data []byte, paths, problems []string) []error {
	var l errList
	for i := range paths {
		l.add(paths[i], "%s", problems[i])
	}
	l.place(name, data, nil)
	return l.errs
}
