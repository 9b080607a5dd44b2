package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/keywatch/keywatch/daemon"
	"github.com/keywatch/keywatch/policies/policytest"
)

const policyUsage = `Usage:
  keywatch policy test -config FILE CASES.yaml

Runs the events of each case through the configuration's policies and
compares the alerts with the expected ones. Exit 0 when every case passes,
1 on a difference (each one printed) or an error in either file.
`

func cmdPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return 2
	}
	switch args[0] {
	case "test":
		return cmdPolicyTest(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, policyUsage)
		return 0
	}
	fmt.Fprintf(stderr, "keywatch policy: unknown command %q\n\n%s", args[0], policyUsage)
	return 2
}

func cmdPolicyTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keywatch policy test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (required)")
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage+"\nFlags:\n"); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "keywatch policy test: -config FILE and one CASES.yaml are required")
		return 2
	}
	cfg, set, err := daemon.LoadForReplay(*path)
	if err != nil {
		printProblems(stderr, err)
		fmt.Fprintln(stderr, "keywatch policy test: configuration has errors; no case run")
		return 1
	}
	cases, err := policytest.Load(fs.Arg(0), cfg)
	if err != nil {
		n := printProblems(stderr, err)
		fmt.Fprintf(stderr, "keywatch policy test: %d problem%s in %s; no case run\n", n, plural(n), fs.Arg(0))
		return 1
	}
	rep := policytest.Run(context.Background(), set, cases)
	rep.Write(stdout)
	if rep.Failed() > 0 {
		return 1
	}
	return 0
}
