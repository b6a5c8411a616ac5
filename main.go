// Command pgstack is the PostgresStack manager. `pgstack` (or `pgstack
// manager`) runs the controller; other subcommands are tools for people.
package main

import (
	"fmt"
	"os"
)

func main() {
	args := os.Args[1:]
	command := "manager"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		command, args = args[0], args[1:]
	}
	var err error
	switch command {
	case "manager":
		err = runManager(args)
	case "render":
		err = runRender(args, os.Stdin, os.Stdout, os.Stderr)
	case "preview-upgrade":
		err = runPreviewUpgrade(args, os.Stdout, os.Stderr)
	default:
		err = fmt.Errorf("unknown command %q (known: manager, render, preview-upgrade)", command)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgstack:", err)
		os.Exit(1)
	}
}
