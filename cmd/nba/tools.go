package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"nba/nba/demo"
	"nba/nba/sidecar"
)

func init() {
	register(command{name: "validate", summary: "check a bundle (manifest, models, catalog, snapshot) and list every problem", run: runValidate})
	register(command{name: "demo", summary: "\"nba demo export DIR\" writes the embedded demo bundle out to edit", run: runDemo})
	register(command{name: "healthcheck", summary: "exit 0 when a running sidecar answers /healthz (for container health checks)", run: runHealthcheck})
}

// errSilent is returned when the command already printed what went wrong.
var errSilent = errors.New("")

func runValidate(args []string) error {
	fset := flag.NewFlagSet("validate", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba validate BUNDLE

Loads every part of the bundle directory BUNDLE without serving it (the
manifest bundle.yaml, each model, the catalog compiled against the profile
schema, the snapshot) and prints every problem with its file, line and
column, for example
  catalog.yaml:212:9: action "xs_kids": rules.eligible[0]: unknown field "tenure_dayz" (did you mean "tenure_days"?)
A misspelt key does not hide the other problems: all are listed. It exits 1
when there is any.

Example:
  nba demo export /tmp/demo && nba validate /tmp/demo
`)
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fset.NArg() != 1 {
		fset.Usage()
		return errors.New("want one bundle directory")
	}
	dir := fset.Arg(0)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%q is not a directory", dir)
	}
	errs := sidecar.ValidateBundle(os.DirFS(dir))
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, err)
	}
	if len(errs) > 0 {
		fmt.Fprintf(os.Stderr, "%s: %d problem(s)\n", dir, len(errs))
		return errSilent
	}
	fmt.Printf("%s: ok\n", dir)
	return nil
}

func runDemo(args []string) error {
	if len(args) != 2 || args[0] != "export" {
		fmt.Fprint(os.Stderr, `Usage: nba demo export DIR

Writes the embedded demo bundle (bundle.yaml, catalog.yaml, model.json,
customers.csv.zst) into DIR, to read, edit and serve with
  nba serve -bundle DIR

Example:
  nba demo export ./bundle && nba validate ./bundle
`)
		if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			return nil
		}
		return errors.New("want: export DIR")
	}
	if err := demo.Export(args[1]); err != nil {
		return err
	}
	fmt.Printf("wrote the demo bundle to %s\n", args[1])
	return nil
}

func runHealthcheck(args []string) error {
	fset := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba healthcheck [flags]

Exits 0 when the sidecar on -addr answers GET -path (/healthz: alive) with
200, 1 otherwise: for container health checks and Kubernetes exec probes,
which run inside the container and so reach a sidecar listening on
loopback. -path /readyz asks whether it is ready (bundle loaded, state
replayed).

Examples:
  nba healthcheck -addr 127.0.0.1:8080 -timeout 1s
  nba healthcheck -path /readyz

Flags:
`)
		fset.PrintDefaults()
	}
	addr := fset.String("addr", "127.0.0.1:8080", "address of the sidecar's decision API")
	timeout := fset.Duration("timeout", 2*time.Second, "how long to wait for the answer")
	path := fset.String("path", "/healthz", "what to ask: /healthz (alive) or /readyz (ready to decide)")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	c := http.Client{Timeout: *timeout}
	if *path != "/healthz" && *path != "/readyz" {
		return fmt.Errorf("-path %q: want /healthz or /readyz", *path)
	}
	resp, err := c.Get("http://" + *addr + *path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", *path, resp.Status)
	}
	return nil
}
