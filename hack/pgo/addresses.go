// The one change pgstack makes to PGO's source when it builds PGO's manager
// for the local cluster (see the Makefile's PGO target): PGO v5.8.9 binds
// its metrics to ":8443" and its health probes to ":8081" with no flag, and
// on a developer's machine those ports are taken (OLM's operators, pgstack's
// own manager) and several PGO processes may run one after another. The
// Makefile adds this file to package main with `go build -overlay` and
// rewrites those two literals in main.go to call pgstackBindAddress.

//go:build ignore

package main

import "os"

// pgstackBindAddress returns the address in the environment variable name,
// or PGO's own default when it is unset, so an unset variable leaves PGO's
// behaviour exactly as released.
func pgstackBindAddress(name, released string) string {
	if address, ok := os.LookupEnv(name); ok {
		return address
	}
	return released
}
