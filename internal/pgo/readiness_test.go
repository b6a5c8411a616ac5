package pgo

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func cluster(t *testing.T, text string) *unstructured.Unstructured {
	t.Helper()
	// Through JSON, as the API server's objects arrive: whole numbers are int64.
	data, err := yaml.YAMLToJSON([]byte("apiVersion: postgres-operator.crunchydata.com/v1beta1\nkind: PostgresCluster\n" + text))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return u
}

// The status objects below are shaped as PGO v5.8.9 writes them
// (/tmp/research/pgo-status.md §1): conditions with PGO's reasons and
// messages and the generation they were written at, status.instances with
// zero counts omitted, the pgbackrest and patroni blocks.

// readyHippo is the user document's cluster once PGO has it running.
const readyHippo = `
metadata: {name: hippo, generation: 2}
spec:
  postgresVersion: 16
  instances: [{name: instance1, replicas: 2}]
  backups: {pgbackrest: {repos: [{name: repo1, volume: {}}]}}
status:
  observedGeneration: 2
  instances: [{name: instance1, replicas: 2, readyReplicas: 2, updatedReplicas: 2}]
  patroni: {systemIdentifier: "7433461453434273877"}
  pgbackrest:
    repoHost: {apiVersion: apps/v1, kind: StatefulSet, ready: true}
    repos: [{name: repo1, bound: true, stanzaCreated: true, replicaCreateBackupComplete: true}]
  conditions:
  - {type: PGBackRestRepoHostReady, status: "True", reason: RepoHostReady, message: pgBackRest dedicated repository host is ready, observedGeneration: 2}
  - {type: PGBackRestReplicaRepoReady, status: "True", reason: StanzaCreated, message: pgBackRest replica create repo is ready for backups, observedGeneration: 2}
  - {type: PGBackRestReplicaCreate, status: "True", reason: RepoBackupComplete, message: pgBackRest replica creation is now possible, observedGeneration: 2}
`

// standby is a healthy standby following repo1 of another cluster: its
// backups conditions stay False for good, since it has no writable instance.
const standby = `
metadata: {name: hippo-standby, generation: 1}
spec:
  postgresVersion: 16
  instances: [{name: instance1, replicas: 1}]
  backups: {pgbackrest: {repos: [{name: repo1, s3: {bucket: b, endpoint: e, region: r}}]}}
  standby: {enabled: true, repoName: repo1}
status:
  observedGeneration: 1
  instances: [{name: instance1, replicas: 1, readyReplicas: 1, updatedReplicas: 1}]
  patroni: {systemIdentifier: "7433461453434273877"}
  pgbackrest:
    repos: [{name: repo1, repoOptionsHash: 5d8b5b7d8f}]
  conditions:
  - {type: PGBackRestReplicaRepoReady, status: "False", reason: StanzaNotCreated, message: pgBackRest replica create repo is not ready for backups, observedGeneration: 1}
  - {type: PGBackRestReplicaCreate, status: "False", reason: RepoBackupNotComplete, message: pgBackRest replica creation is not currently possible, observedGeneration: 1}
`

// shutDown is hippo after spec.shutdown: the sets remain with their counts
// omitted, the primary is the startup instance, the repo host is stopped.
const shutDown = `
metadata: {name: hippo, generation: 3}
spec:
  postgresVersion: 16
  shutdown: true
  instances: [{name: instance1, replicas: 2}]
  backups: {pgbackrest: {repos: [{name: repo1, volume: {}}]}}
status:
  observedGeneration: 3
  instances: [{name: instance1}]
  startupInstance: hippo-instance1-xkz7
  startupInstanceSet: instance1
  patroni: {systemIdentifier: "7433461453434273877"}
  conditions:
  - {type: PGBackRestRepoHostReady, status: "False", reason: RepoHostNotReady, message: pgBackRest dedicated repository host is not ready, observedGeneration: 3}
  - {type: PGBackRestReplicaRepoReady, status: "True", reason: StanzaCreated, message: pgBackRest replica create repo is ready for backups, observedGeneration: 3}
  - {type: PGBackRestReplicaCreate, status: "True", reason: RepoBackupComplete, message: pgBackRest replica creation is now possible, observedGeneration: 3}
`

// pausedByPGO: backups removed from a cluster with a volume repo, without
// the authorizeBackupRemoval annotation. PGO writes no Event for it.
const pausedByPGO = `
metadata: {name: hippo, generation: 4}
spec:
  postgresVersion: 16
  instances: [{name: instance1, replicas: 2}]
status:
  observedGeneration: 3
  instances: [{name: instance1, replicas: 2, readyReplicas: 2, updatedReplicas: 2}]
  conditions:
  - {type: Progressing, status: "False", reason: Paused, message: "Reconciliation is paused: please fill in spec.backups or add the postgres-operator.crunchydata.com/authorizeBackupRemoval annotation to authorize backup removal.", observedGeneration: 4}
`

// restoring: an in-place restore under way. Its trigger is an annotation,
// so the generation has not moved.
const restoring = `
metadata: {name: hippo, generation: 2, annotations: {postgres-operator.crunchydata.com/pgbackrest-restore: "two"}}
spec:
  postgresVersion: 16
  instances: [{name: instance1, replicas: 2}]
  backups: {pgbackrest: {repos: [{name: repo1, volume: {}}], restore: {enabled: true, repoName: repo1}}}
status:
  observedGeneration: 2
  instances: [{name: instance1}]
  pgbackrest: {restore: {id: two, active: 1}}
  conditions:
  - {type: PGBackRestoreProgressing, status: "True", reason: ReadyForRestore, message: Restoring cluster in-place, observedGeneration: 2}
`

// cloning: a new cluster bootstrapping from another's repository; PGO has
// not observed a generation yet.
const cloning = `
metadata: {name: rhino, generation: 1}
spec:
  postgresVersion: 16
  instances: [{name: instance1}]
  dataSource: {postgresCluster: {clusterName: hippo, repoName: repo1}}
status:
  pgbackrest: {restore: {id: "~pgo-bootstrap-rhino", active: 1}}
  conditions:
  - {type: PGBackRestoreProgressing, status: "True", reason: ReadyForRestore, message: Restoring cluster in-place, observedGeneration: 1}
`

// restoreFailed: the restore Job failed; PGO keeps ReadyForRestore and does
// not retry.
var restoreFailed = strings.Replace(restoring, "  - {type: PGBackRestoreProgressing",
	"  - {type: PostgresDataInitialized, status: \"False\", reason: PGBackRestRestoreFailed, message: pgBackRest restore failed, observedGeneration: 2}\n  - {type: PGBackRestoreProgressing", 1)

// lagging is hippo after a spec change PGO has not observed.
var lagging = strings.Replace(readyHippo, "generation: 2}", "generation: 3}", 1)

var (
	written = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	before  = written.Add(-time.Minute)
	after   = written.Add(3 * time.Second)
)

func pgoWarning(reason, message string, at time.Time) Event {
	return Event{Type: "Warning", Source: EventSource, Reason: reason, Message: message, LastSeen: at}
}

var (
	missingImage     = pgoWarning("MissingRequiredImage", "missing image(s): [crunchy-postgres]", after)
	invalidStandby   = pgoWarning("InvalidStandbyConfiguration", `spec.standby: Invalid value: "hippo": Standby requires a host or repoName to be enabled`, after)
	invalidOptions   = pgoWarning("InvalidDataSource", "Option '--target-action' is not allowed: the operator will automatically set this option %!(EXTRA string=repo1)", after)
	missingSource    = pgoWarning("InvalidDataSource", `PostgresCluster "hippo" does not exist`, after)
	endOfLife        = pgoWarning("EndOfLifePostgresVersion", "The last minor version of Postgres 11 has been released.", after)
	staleImage       = pgoWarning("MissingRequiredImage", "missing image(s): [crunchy-postgres]", before)
	notPGOs          = Event{Type: "Warning", Source: "someone-else", Reason: "MissingRequiredImage", Message: "missing image(s): [crunchy-postgres]", LastSeen: after}
	normalNotRefusal = Event{Type: "Normal", Source: EventSource, Reason: "MissingRequiredImage", Message: "x", LastSeen: after}
)

func events(items ...Event) Events { return Events{Items: items, Since: written} }

func TestJudge(t *testing.T) {
	tests := []struct {
		name        string
		text        string
		events      Events
		wantReady   bool
		wantStalled bool
		wantReason  string
		wantInMsg   string
	}{
		// Non-standby clusters, with and without backups and PgBouncer.
		{name: "ready with backups", text: readyHippo, wantReady: true, wantReason: ReasonReady, wantInMsg: "2 of 2"},
		{name: "generation not observed", text: lagging, wantReason: ReasonNotObserved, wantInMsg: "generation 3"},
		{name: "no status yet", text: "metadata: {generation: 1}\nspec: {instances: [{name: instance1}]}", wantReason: ReasonNotObserved},
		{name: "a replica not ready", text: strings.Replace(readyHippo, "readyReplicas: 2", "readyReplicas: 1", 1), wantReason: ReasonInstancesNotReady, wantInMsg: "1 of 2"},
		{name: "a replica not updated", text: strings.Replace(readyHippo, "updatedReplicas: 2", "updatedReplicas: 1", 1), wantReason: ReasonInstancesNotReady},
		{name: "spec asks for more replicas than status has", text: strings.Replace(readyHippo, "replicas: 2}]\n  backups", "replicas: 3}]\n  backups", 1), wantReason: ReasonInstancesNotReady},
		{name: "an unnamed set is PGO's 00", text: `
metadata: {generation: 1}
spec: {instances: [{replicas: 1}]}
status: {observedGeneration: 1, instances: [{name: "00", replicas: 1, readyReplicas: 1, updatedReplicas: 1}]}`, wantReady: true, wantReason: ReasonReady},
		{name: "stanza not created yet", text: strings.Replace(readyHippo, `{type: PGBackRestReplicaRepoReady, status: "True", reason: StanzaCreated`, `{type: PGBackRestReplicaRepoReady, status: "False", reason: StanzaNotCreated`, 1), wantReason: ReasonBackupsNotReady, wantInMsg: "PGBackRestReplicaRepoReady is False (StanzaNotCreated)"},
		{name: "replica creation not done", text: strings.Replace(readyHippo, `{type: PGBackRestReplicaCreate, status: "True", reason: RepoBackupComplete`, `{type: PGBackRestReplicaCreate, status: "False", reason: RepoBackupNotComplete`, 1), wantReason: ReasonBackupsNotReady, wantInMsg: "PGBackRestReplicaCreate is False (RepoBackupNotComplete)"},
		{name: "no backups: conditions not needed", text: `
metadata: {generation: 1}
spec: {instances: [{name: a}]}
status: {observedGeneration: 1, instances: [{name: a, replicas: 1, readyReplicas: 1, updatedReplicas: 1}]}`, wantReady: true, wantReason: ReasonReady},
		{name: "pooler not available", text: strings.Replace(readyHippo, "backups:", "proxy: {pgBouncer: {replicas: 1}}\n  backups:", 1), wantReason: ReasonPoolerNotReady, wantInMsg: "not reported yet"},
		{name: "pooler Deployment unavailable", text: strings.Replace(strings.Replace(readyHippo, "backups:", "proxy: {pgBouncer: {}}\n  backups:", 1), "conditions:", "conditions:\n  - {type: ProxyAvailable, status: \"False\", reason: MinimumReplicasUnavailable, message: Deployment does not have minimum availability., observedGeneration: 2}", 1), wantReason: ReasonPoolerNotReady, wantInMsg: "MinimumReplicasUnavailable"},
		{name: "pooler available", text: strings.Replace(strings.Replace(readyHippo, "backups:", "proxy: {pgBouncer: {}}\n  backups:", 1), "conditions:", "conditions:\n  - {type: ProxyAvailable, status: \"True\", reason: MinimumReplicasAvailable, message: Deployment has minimum availability., observedGeneration: 2}", 1), wantReady: true, wantReason: ReasonReady},

		// Standby clusters.
		{name: "standby: ready though backups never are", text: standby, wantReady: true, wantReason: ReasonReady, wantInMsg: "standby: 1 of 1"},
		{name: "standby: the same status without standby is not ready", text: strings.Replace(standby, "  standby: {enabled: true, repoName: repo1}\n", "", 1), wantReason: ReasonBackupsNotReady, wantInMsg: "StanzaNotCreated"},
		{name: "standby: no system identifier yet", text: strings.Replace(standby, `  patroni: {systemIdentifier: "7433461453434273877"}`+"\n", "", 1), wantReason: ReasonStandbyNotBootstrapped, wantInMsg: "system identifier"},
		{name: "standby: instances not ready", text: strings.Replace(standby, "readyReplicas: 1", "readyReplicas: 0", 1), wantReason: ReasonInstancesNotReady},
		{name: "standby streaming from a host without backups", text: `
metadata: {generation: 1}
spec: {instances: [{name: instance1}], standby: {enabled: true, host: hippo-primary.team-a.svc}}
status: {observedGeneration: 1, instances: [{name: instance1, replicas: 1, readyReplicas: 1, updatedReplicas: 1}], patroni: {systemIdentifier: "7433"}, pgbackrest: {}}`, wantReady: true, wantReason: ReasonReady},

		// Shutdown, an intended steady state.
		{name: "shut down", text: shutDown, wantReady: true, wantReason: ReasonShutDown, wantInMsg: "stopped all 2"},
		{name: "shut down with explicit zero counts", text: strings.Replace(shutDown, "instances: [{name: instance1}]", "instances: [{name: instance1, replicas: 0, readyReplicas: 0}]", 1), wantReady: true, wantReason: ReasonShutDown},
		{name: "shutting down: the primary still runs", text: strings.Replace(shutDown, "instances: [{name: instance1}]", "instances: [{name: instance1, replicas: 1, readyReplicas: 1}]", 1), wantReason: ReasonShuttingDown, wantInMsg: "1 PostgreSQL instances still run"},
		{name: "shutdown not yet observed", text: strings.Replace(shutDown, "observedGeneration: 3\n  instances", "observedGeneration: 2\n  instances", 1), wantReason: ReasonNotObserved},
		{name: "shut down, then started again", text: strings.Replace(shutDown, "shutdown: true", "shutdown: false", 1), wantReason: ReasonInstancesNotReady},

		// Paused: by a person, or by PGO over backups.
		{name: "paused by spec.paused, PGO's word", text: strings.Replace(strings.Replace(readyHippo, "spec:", "spec:\n  paused: true", 1), "conditions:", "conditions:\n  - {type: Progressing, status: \"False\", reason: Paused, message: No spec changes will be applied and no other statuses will be updated., observedGeneration: 2}", 1), wantReason: ReasonPaused, wantInMsg: "PGO: No spec changes will be applied"},
		{name: "paused by spec.paused, PGO yet to say", text: strings.Replace(readyHippo, "spec:", "spec:\n  paused: true", 1), wantReason: ReasonPaused, wantInMsg: "spec.paused"},
		{name: "paused by PGO: backups removed without authorization", text: pausedByPGO, wantStalled: true, wantReason: ReasonPaused, wantInMsg: "authorizeBackupRemoval"},
		{name: "PGO's pause of an older generation is not current", text: strings.Replace(pausedByPGO, "observedGeneration: 4}", "observedGeneration: 3}", 1), wantReason: ReasonNotObserved},

		// PGO's refusals: early returns that leave observedGeneration behind.
		{name: "missing image", text: lagging, events: events(missingImage), wantStalled: true, wantReason: "MissingRequiredImage", wantInMsg: "missing image(s): [crunchy-postgres]"},
		{name: "invalid standby", text: lagging, events: events(invalidStandby), wantStalled: true, wantReason: "InvalidStandbyConfiguration", wantInMsg: "Standby requires a host or repoName"},
		{name: "a refused restore option", text: lagging, events: events(invalidOptions), wantStalled: true, wantReason: "InvalidDataSource", wantInMsg: "Option '--target-action' is not allowed"},
		{name: "a clone source that does not exist", text: cloning, events: events(missingSource), wantStalled: true, wantReason: "InvalidDataSource", wantInMsg: `PostgresCluster "hippo" does not exist`},
		{name: "the newest refusal is told", text: lagging, events: events(invalidStandby, missingImage, pgoWarning("InvalidStandbyConfiguration", "older", written)), wantStalled: true, wantReason: "InvalidStandbyConfiguration", wantInMsg: "Standby requires"},
		{name: "a refusal of an older spec does not count", text: lagging, events: events(staleImage), wantReason: ReasonNotObserved},
		{name: "a refusal in the second the spec was written counts", text: lagging, events: events(pgoWarning("MissingRequiredImage", "missing image(s): [crunchy-pgbackrest]", written)), wantStalled: true, wantReason: "MissingRequiredImage"},
		{name: "Events not from PGO do not count", text: lagging, events: events(notPGOs, normalNotRefusal), wantReason: ReasonNotObserved},
		{name: "warnings that are no refusal do not stall", text: lagging, events: events(endOfLife), wantReason: ReasonNotObserved},
		{name: "once PGO observes the generation its old refusals are moot", text: readyHippo, events: events(missingImage), wantReady: true, wantReason: ReasonReady},

		// Restores and clones.
		{name: "an in-place restore is progress", text: restoring, wantReason: ReasonRestoring, wantInMsg: "ReadyForRestore"},
		{name: "a clone is progress", text: cloning, wantReason: ReasonRestoring},
		{name: "a restore with a refused option stalls though the generation is observed", text: restoring, events: events(invalidOptions), wantStalled: true, wantReason: "InvalidDataSource"},
		{name: "a failed restore stalls", text: restoreFailed, wantStalled: true, wantReason: "PGBackRestRestoreFailed", wantInMsg: "pgBackRest restore failed"},
		{name: "a new restore after a failed one is progress", text: strings.Replace(restoreFailed, "reason: ReadyForRestore, message: Restoring cluster in-place", "reason: RestoreInPlaceRequested, message: \"Preparing cluster to restore in-place: removing runners\"", 1), wantReason: ReasonRestoring, wantInMsg: "removing runners"},
		{name: "a finished restore is judged as any cluster", text: strings.Replace(readyHippo, "conditions:", "conditions:\n  - {type: PostgresDataInitialized, status: \"True\", reason: PGBackRestRestoreComplete, message: pgBackRest restore completed successfully, observedGeneration: 2}", 1), wantReady: true, wantReason: ReasonReady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Judge(cluster(t, tt.text), tt.events)
			if got.Ready != tt.wantReady || got.Stalled != tt.wantStalled || got.Reason != tt.wantReason {
				t.Fatalf("Judge = ready %v, stalled %v, %s (%s); want ready %v, stalled %v, %s", got.Ready, got.Stalled, got.Reason, got.Message, tt.wantReady, tt.wantStalled, tt.wantReason)
			}
			if !strings.Contains(got.Message, tt.wantInMsg) {
				t.Errorf("message %q does not mention %q", got.Message, tt.wantInMsg)
			}
		})
	}
}

// Events are read only when they can change the judgement.
func TestWantsEvents(t *testing.T) {
	for _, tt := range []struct {
		name string
		text string
		want bool
	}{
		{"PGO observed the generation", readyHippo, false},
		{"PGO lags", lagging, true},
		{"PGO has never reported", "metadata: {generation: 1}\nspec: {instances: [{name: a}]}", true},
		{"an in-place restore, generation observed", restoring, true},
		{"shut down", shutDown, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := WantsEvents(cluster(t, tt.text)); got != tt.want {
				t.Errorf("WantsEvents = %v, want %v", got, tt.want)
			}
		})
	}
}

// ClusterReadiness is Judge without Events: a lagging cluster waits.
func TestClusterReadinessIgnoresEvents(t *testing.T) {
	if got := ClusterReadiness(cluster(t, lagging)); got.Reason != ReasonNotObserved || got.Stalled {
		t.Errorf("ClusterReadiness = %+v", got)
	}
}
