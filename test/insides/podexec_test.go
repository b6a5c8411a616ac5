package insides

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// The argv PGO v5.8.9 builds for each shape (copied from the call sites the
// shapes cite), and commands podexec must refuse.
func TestPlayAnswersEachShapePGOSends(t *testing.T) {
	loop := `
sql_target=$(< /dev/stdin)
sql_databases="$1"
shift 1

databases=$(psql "$@" -Xw -Aqt --file=- <<< "${sql_databases}")
while IFS= read -r database; do
	PGDATABASE="${database}" psql "$@" -Xw --file=- <<< "${sql_target}"
done <<< "${databases}"
`
	stanza := `
declare -r hash="$1" stanza="$2" hash_msg="$3" vol_msg="$4" check_repo_cmd="$5"
if [[ "$(< /etc/pgbackrest/conf.d/config-hash)" != "${hash}" ]]; then
    printf >&2 "%s" "${hash_msg}"; exit 1;
elif ! bash -c "${check_repo_cmd}"; then
    printf >&2 "%s" "${vol_msg}"; exit 1;
else
    pgbackrest stanza-create --stanza="${stanza}" || pgbackrest stanza-upgrade --stanza="${stanza}"
fi
`
	for _, tc := range []struct {
		name  string
		argv  []string
		shape string
	}{
		{"users and databases", []string{"psql", "-Xw", "--file=-", "--set=ON_ERROR_STOP=on", "--set=QUIET=on"}, ShapePSQL},
		{"databaseInitSQL", []string{"psql", "-Xw", "--file=-"}, ShapePSQL},
		{"SQL in every database", []string{"bash", "-ceu", "--", loop, "-", "SELECT datname FROM pg_catalog.pg_database", "--set=ON_ERROR_STOP=on"}, ShapePSQLEachDatabase},
		{"stanza create", []string{"bash", "-ceu", "--", stanza, "-", "abc123", "db", "hash mismatch", "stale repo", "grep repo1-path /etc/pgbackrest/conf.d/pgbackrest_instance.conf"}, ShapeStanzaCreate},
		{"dynamic configuration", []string{"patronictl", "edit-config", "--replace=-", "--force"}, ShapePatroniConfig},
		{"pending restarts", []string{"patronictl", "restart", "--pending", "--force", "--role=replica", "hippo-ha"}, ShapePatroniRestart},
		{"the leader's timeline", []string{"patronictl", "list", "--format", "json"}, ShapePatroniList},
		{"a switchover is not Play's", []string{"patronictl", "switchover", "--scheduled=now", "--force", "--candidate=hippo-b-0"}, ShapeUnknown},
		{"psql without its stdin file", []string{"psql", "-c", "select 1"}, ShapeUnknown},
		{"any other script", []string{"bash", "-ceu", "--", "rm -rf /", "-"}, ShapeUnknown},
		{"a program PGO never runs", []string{"pg_ctl", "stop"}, ShapeUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Play(tc.argv[0], tc.argv[1:], 1)
			if got.Shape != tc.shape {
				t.Fatalf("shape %q, want %q", got.Shape, tc.shape)
			}
			unknown := tc.shape == ShapeUnknown
			if got.Unknown != unknown || (got.Exit == exitUnknown) != unknown || (got.Exit == 0) == unknown {
				t.Errorf("exit %d unknown %v for shape %s", got.Exit, got.Unknown, tc.shape)
			}
		})
	}
}

// PGO tells a switchover it already ran by the leader's timeline moving
// (patroni.go:540-570): patronictl list prints the timeline the file
// holds, and each switchover played moves it on by one.
func TestTimelineMovesOnWithEachSwitchover(t *testing.T) {
	timeline := Timeline(filepath.Join(t.TempDir(), "timeline"))
	for want := 1; want <= 3; want++ {
		got, err := timeline.Read()
		if err != nil || got != want {
			t.Fatalf("timeline %d, %v; want %d", got, err, want)
		}
		list := Play("patronictl", []string{"list", "--format", "json"}, got)
		var members []struct {
			Role, State string
			TL          int
		}
		if err := json.Unmarshal([]byte(list.Stdout), &members); err != nil || len(members) != 1 || members[0].TL != want ||
			members[0].Role != "Leader" || members[0].State != "running" {
			t.Fatalf("patronictl list printed %q (%v), want the running leader on timeline %d", list.Stdout, err, want)
		}
		if err := timeline.Advance("switchover --candidate=hippo-b-0\n"); err != nil {
			t.Fatal(err)
		}
	}
}
