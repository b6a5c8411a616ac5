// Package insides plays what runs inside PGO's pods on the local cluster,
// where kwok runs no containers: Patroni's records on the Kubernetes API
// (Patroni, in patroni.go) and the commands PGO's manager execs into its
// pods (Play, run by cmd/podexec). It decides nothing PGO or pgstack
// decide: it answers as PostgreSQL, Patroni and pgBackRest would, so that
// PGO's own reconciler moves every PostgresCluster's status.
package insides

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Answer is what one exec'd command prints and how it exits.
type Answer struct {
	// Shape names the command shape recognised (for the log), or "unknown".
	Shape          string
	Stdout, Stderr string
	Exit           int
	// Unknown is set for a command no shape matched: the suite fails.
	Unknown bool
	// Promoted: a switchover made another member the leader.
	Promoted bool
}

// The command shapes PGO v5.8.9's manager sends, each with the PGO source
// that builds it (paths in PGO's source tree).
const (
	// psql -Xw --file=- [--set=K=V ...], SQL on stdin: databases, users,
	// PgBouncer's and the exporter's SQL, databaseInitSQL
	// (internal/postgres/exec.go:23-42). psql exits 0 once the SQL ran.
	ShapePSQL = "psql"
	// bash -ceu -- <loop over databases> - <query> [--set=...]
	// (internal/postgres/exec.go:70-107): the same SQL in every database.
	ShapePSQLEachDatabase = "psql-in-each-database"
	// bash -ceu -- <stanza script> - <hash> db <msg> <msg> <repo check>
	// (internal/pgbackrest/pgbackrest.go:43-109): pgBackRest's stanza-create,
	// which succeeds (exit 0) once the repository is reachable.
	ShapeStanzaCreate = "pgbackrest-stanza-create"
	// patronictl edit-config --replace=- --force, the dynamic
	// configuration on stdin (internal/patroni/api.go:128-146).
	ShapePatroniConfig = "patronictl-edit-config"
	// patronictl restart --pending --force --role=<role> <scope>
	// (internal/patroni/api.go:150-169): nothing is pending on a stand-in.
	ShapePatroniRestart = "patronictl-restart-pending"
	// patronictl switchover --scheduled=now --force --primary=<pod>
	// --candidate=<pod or empty> (internal/patroni/api.go:41-62, PGO's
	// rollout), and --candidate=<pod> alone (api.go:68-90, a switchover the
	// trigger-switchover annotation asks for, patroni.go:448ff): played
	// against the cluster by Switchover, not by Play.
	ShapePatroniSwitchover = "patronictl-switchover"
	// patronictl list --format json (internal/patroni/api.go:175-208): PGO
	// reads the running leader's timeline when a switchover is asked for,
	// and again before running it: a timeline that moved means its own
	// status write has not reached its cache yet and the switchover ran
	// (patroni.go:540-570). The stand-in prints one running leader on
	// the timeline its Timeline file holds.
	ShapePatroniList = "patronictl-list"
	ShapeUnknown     = "unknown"
)

// exitUnknown is a shell's "command not found".
const exitUnknown = 127

// Play answers one command, named as it was invoked, with its arguments;
// timeline is the leader's, for patronictl list.
func Play(name string, args []string, timeline int) Answer {
	switch name {
	case "psql":
		if slices.Contains(args, "-Xw") && slices.Contains(args, "--file=-") {
			return Answer{Shape: ShapePSQL}
		}
	case "bash":
		// bash -ceu -- <script> - <args...>
		if len(args) >= 3 && args[0] == "-ceu" && args[1] == "--" {
			script := args[2]
			switch {
			case strings.Contains(script, "sql_target=$(< /dev/stdin)") && strings.Contains(script, `psql "$@" -Xw --file=-`):
				return Answer{Shape: ShapePSQLEachDatabase}
			case strings.Contains(script, `pgbackrest stanza-create --stanza="${stanza}"`):
				return Answer{Shape: ShapeStanzaCreate}
			}
		}
	case "patronictl":
		switch {
		case slices.Equal(args, []string{"edit-config", "--replace=-", "--force"}):
			return Answer{Shape: ShapePatroniConfig}
		case slices.Equal(args, []string{"list", "--format", "json"}):
			return Answer{Shape: ShapePatroniList, Stdout: fmt.Sprintf(`[{"Cluster": "pgstack-stand-in", "Member": "leader", "Role": "Leader", "State": "running", "TL": %d}]`+"\n", timeline)}
		case len(args) == 5 && args[0] == "restart" && args[1] == "--pending" && args[2] == "--force" && strings.HasPrefix(args[3], "--role="):
			return Answer{Shape: ShapePatroniRestart, Stdout: "No pending restarts\n"}
		}
	}
	return Answer{Shape: ShapeUnknown, Stderr: name + ": command not played by pgstack's pod stand-in (test/insides)\n", Exit: exitUnknown, Unknown: true}
}

// SwitchoverArgs reads a patronictl switchover as PGO sends it: the
// primary (empty: the cluster's leader) and the candidate (empty: Patroni
// chooses). Without --primary the candidate must be named: kwok's exec does
// not say which pod a command runs in, so the stand-in could not tell
// which cluster to switch over.
func SwitchoverArgs(name string, args []string) (primary, candidate string, ok bool) {
	if name != "patronictl" || len(args) < 4 || len(args) > 5 || args[0] != "switchover" || args[1] != "--scheduled=now" || args[2] != "--force" {
		return "", "", false
	}
	candidate, okCandidate := strings.CutPrefix(args[len(args)-1], "--candidate=")
	if len(args) == 4 {
		return "", candidate, okCandidate && candidate != ""
	}
	primary, okPrimary := strings.CutPrefix(args[3], "--primary=")
	return primary, candidate, okPrimary && okCandidate && primary != ""
}

// Names are the names podexec is installed under: every program PGO execs.
var Names = []string{"bash", "patronictl", "psql", "pgbackrest"}

// Timeline is the file in which the stand-in keeps Patroni's timeline: one
// line per switchover played, on timeline 1 before any. Real Patroni keeps
// a timeline per cluster and a promotion moves it on; kwok's exec does not
// say which pod a command runs in, so patronictl list cannot tell which
// cluster asks, and the stand-in keeps one timeline for the local cluster.
// PGO only compares the timeline before and after a requested switchover,
// so a switchover in another cluster in between reads as this one done:
// PGO then reports a switchover that did not run, which the suites'
// count of switchovers (one per token) catches rather than hides.
type Timeline string

// Read is the timeline now (1 when the file does not exist yet).
func (t Timeline) Read() (int, error) {
	data, err := os.ReadFile(string(t))
	if os.IsNotExist(err) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read Patroni's timeline: %w", err)
	}
	return 1 + bytes.Count(data, []byte("\n")), nil
}

// Advance moves the timeline on by one, as a promotion does. One short
// append is atomic, so podexec processes running at once each count.
func (t Timeline) Advance(why string) error {
	f, err := os.OpenFile(string(t), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("advance Patroni's timeline: %w", err)
	}
	_, err = f.WriteString(strings.ReplaceAll(why, "\n", " ") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("advance Patroni's timeline: %w", err)
	}
	return nil
}
