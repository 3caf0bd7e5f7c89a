package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is the release, set at build time with
// -ldflags "-X main.version=v1.2.3"; empty, the module version Go stamped
// into the binary is shown ("(devel)" for a build from a work tree).
var version string

func init() {
	register(command{name: "version", summary: "print the build's version, commit, Go version and module versions", run: runVersion})
}

func runVersion(args []string) error {
	fset := flag.NewFlagSet("version", flag.ContinueOnError)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: nba version [-m=false]

Prints nba's version, the commit and time it was built from (when built
from a git work tree), the Go version and, with -m (default), the version of
every module compiled in, as "go version -m" would.

Example:
  nba version

Flags:
`)
		fset.PrintDefaults()
	}
	mods := fset.Bool("m", true, "list the modules compiled in")
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("no build information in this binary")
	}
	writeVersion(os.Stdout, bi, *mods)
	return nil
}

// writeVersion prints bi as nba version shows it.
func writeVersion(w io.Writer, bi *debug.BuildInfo, mods bool) {
	v := version
	if v == "" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(unknown)"
	}
	fmt.Fprintf(w, "nba %s\n", v)
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		dirty := ""
		if settings["vcs.modified"] == "true" {
			dirty = " (modified)"
		}
		fmt.Fprintf(w, "commit   %s%s %s\n", rev, dirty, settings["vcs.time"])
	}
	fmt.Fprintf(w, "go       %s %s/%s\n", bi.GoVersion, settings["GOOS"], settings["GOARCH"])
	if !mods {
		return
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			fmt.Fprintf(w, "module   %s %s => %s %s\n", d.Path, d.Version, d.Replace.Path, d.Replace.Version)
			continue
		}
		fmt.Fprintf(w, "module   %s %s\n", d.Path, d.Version)
	}
}
