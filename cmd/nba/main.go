// Command nba is the next-best-action sidecar: it serves decisions over HTTP,
// scores models, validates bundles and runs outbound batches.
//
// Run "nba help" for the list of commands.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"
)

// command is one sub-command of nba.
type command struct {
	name    string
	summary string
	run     func(args []string) error
}

// commands lists the sub-commands in the order "nba help" shows them.
// Files of this package add to it from their init functions.
var commands []command

func register(c command) { commands = append(commands, c) }

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "-version" || name == "--version" {
		name = "version"
	}
	if name == "help" || name == "-h" || name == "-help" || name == "--help" {
		if len(os.Args) > 2 {
			for _, c := range commands {
				if c.name == os.Args[2] {
					helpToStdout()
					_ = c.run([]string{"-h"})
					return
				}
			}
			fmt.Fprintf(os.Stderr, "nba help: unknown command %q\n\n", os.Args[2])
			usage(os.Stderr)
			os.Exit(2)
		}
		usage(os.Stdout)
		return
	}
	for _, c := range commands {
		if c.name == name {
			if wantsHelp(os.Args[2:]) {
				helpToStdout()
			}
			if err := c.run(os.Args[2:]); err != nil {
				if err != errSilent {
					fmt.Fprintf(os.Stderr, "nba %s: %v\n", name, err)
				}
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "nba: unknown command %q\n\n", name)
	usage(os.Stderr)
	os.Exit(2)
}

// wantsHelp reports whether a command's arguments ask for its help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// helpToStdout sends what the command prints next on stderr to stdout:
// help that was asked for is output (nba help serve | less), not an error.
// The commands print their help through flag.FlagSet, whose default output
// is os.Stderr as it is when printing.
func helpToStdout() { os.Stderr = os.Stdout }

// helpOrder is the order "nba help" lists commands in: serving first, then
// one-off decisions, models and bundles, then analysis of decision logs.
var helpOrder = []string{"serve", "decide", "batch", "funnel", "state", "score", "validate", "demo", "uplift", "evaluate", "replay", "log", "healthcheck", "version"}

func usage(w io.Writer) {
	fmt.Fprintf(w, "nba is a real-time next-best-action sidecar.\n\nUsage:\n  nba <command> [flags]\n\nCommands:\n")
	rank := func(name string) int {
		if i := slices.Index(helpOrder, name); i >= 0 {
			return i
		}
		return len(helpOrder)
	}
	slices.SortStableFunc(commands, func(a, b command) int { return rank(a.name) - rank(b.name) })
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nExample:\n  nba serve    # the embedded demo on 127.0.0.1:8080\n")
	fmt.Fprintf(w, "\nRun \"nba help <command>\" or \"nba <command> -h\" for a command's flags.\n")
}
