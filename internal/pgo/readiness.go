// Package pgo holds what pgstack knows of PGO's API: the PostgresCluster
// kind, how to tell from its status and PGO's Events how PGO judges it, and
// which images an installed PGO runs it with. PGO sets no single Ready
// condition, so readiness is judged the way PGO's own tests do.
//
// Line citations are to PGO v5.8.9's source tree (C =
// internal/controller/postgrescluster).
package pgo

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// PostgresClusterGVK is PGO's PostgresCluster kind.
var PostgresClusterGVK = schema.GroupVersionKind{Group: "postgres-operator.crunchydata.com", Version: "v1beta1", Kind: "PostgresCluster"}

// PostgresClusterCRD is the name of PGO's PostgresCluster CRD.
const PostgresClusterCRD = "postgresclusters.postgres-operator.crunchydata.com"

// EventSource is the component PGO's PostgresCluster controller records its
// Events as (C/controller.go:44, cmd/postgres-operator/main.go:269-273).
const EventSource = "postgrescluster-controller"

// Reasons a readiness judgement gives; they become ClusterReady's reason.
const (
	ReasonReady                  = platformv1alpha1.ReasonClusterReady
	ReasonNotObserved            = platformv1alpha1.ReasonAwaitingPGO
	ReasonInstancesNotReady      = platformv1alpha1.ReasonInstancesNotReady
	ReasonBackupsNotReady        = platformv1alpha1.ReasonBackupsNotReady
	ReasonPoolerNotReady         = platformv1alpha1.ReasonPoolerNotReady
	ReasonPaused                 = platformv1alpha1.ReasonPaused
	ReasonShutDown               = platformv1alpha1.ReasonShutDown
	ReasonShuttingDown           = platformv1alpha1.ReasonShuttingDown
	ReasonRestoring              = platformv1alpha1.ReasonRestoring
	ReasonStandbyNotBootstrapped = platformv1alpha1.ReasonStandbyNotBootstrapped
)

// Condition types PGO writes on a PostgresCluster that the judgement reads.
const (
	// conditionProgressing is only ever False/Paused (C/controller.go:188-221).
	conditionProgressing = "Progressing"
	// conditionRestoring is spelled this way in PGO (C/pgbackrest.go:66-68).
	conditionRestoring       = "PGBackRestoreProgressing"
	conditionDataInitialized = "PostgresDataInitialized"
	conditionReplicaRepo     = "PGBackRestReplicaRepoReady"
	conditionReplicaCreate   = "PGBackRestReplicaCreate"
	conditionProxyAvailable  = "ProxyAvailable"
)

// refusals are the Warning Events PGO records when it returns early
// without observing the generation, and that only a change of the spec
// undoes: no image for the cluster (C/controller.go:118-128), a standby with
// nothing to follow (C/controller.go:140-151), a refused restore option or a
// missing clone source (C/pgbackrest.go:1175-1199, :1668-1699).
var refusals = map[string]bool{
	platformv1alpha1.ReasonMissingRequiredImage:        true,
	platformv1alpha1.ReasonInvalidStandbyConfiguration: true,
	platformv1alpha1.ReasonInvalidDataSource:           true,
}

// Readiness is PGO's view of one PostgresCluster, summed up.
type Readiness struct {
	Ready bool
	// Stalled: PGO will not get further until a person changes something
	// (PGO refused the spec, a restore failed, PGO paused itself over backups).
	Stalled bool
	Reason  string
	Message string
	// ReadyInstances and Instances count PostgreSQL pods over every instance set.
	ReadyInstances int32
	Instances      int32
}

// Event is what the judgement needs of one Event recorded on a PostgresCluster.
type Event struct {
	// Type is Warning or Normal.
	Type string
	// Source is the component that recorded it; only EventSource's count.
	Source  string
	Reason  string
	Message string
	// LastSeen is when it was last recorded.
	LastSeen time.Time
}

// Events are the Events read for a PostgresCluster, when WantsEvents says
// they matter.
type Events struct {
	Items []Event
	// Since is when the PostgresCluster was last written (outside its status).
	// PGO reconciles after every write and records its refusal again each
	// time, so an Event last seen before Since speaks of an older spec and is
	// not counted. Zero counts every Event.
	Since time.Time
}

// NewPostgresCluster is an empty PostgresCluster object with its kind set.
func NewPostgresCluster() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(PostgresClusterGVK)
	return u
}

// NewPostgresClusterList is an empty list of PostgresClusters to read into.
func NewPostgresClusterList() *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(PostgresClusterGVK.GroupVersion().WithKind(PostgresClusterGVK.Kind + "List"))
	return l
}

// WantsEvents reports whether PGO's Events can change the judgement of pc:
// when PGO has not observed its generation (its refusals return before
// status.observedGeneration is written, C/controller.go:381) or a restore is
// in progress (an in-place restore is triggered by an annotation, so the
// generation does not move, and a refused option shows only as an Event).
// Events are read only then.
func WantsEvents(pc *unstructured.Unstructured) bool {
	observed, _, _ := unstructured.NestedInt64(pc.Object, "status", "observedGeneration")
	return observed != pc.GetGeneration() || findCondition(pc, conditionRestoring) != nil
}

// ClusterReadiness judges a PostgresCluster from its status alone.
func ClusterReadiness(pc *unstructured.Unstructured) Readiness {
	return Judge(pc, Events{})
}

// Judge judges a PostgresCluster from its spec and status, and from PGO's
// Events on it when WantsEvents says they matter. In order:
//   - paused: spec.paused (intended), or PGO's own pause over backups
//     removed without its authorizeBackupRemoval annotation (stalls);
//   - a restore or clone that failed (stalls), PGO's refusal Events (stall),
//     a restore or clone in progress;
//   - PGO has not observed the generation;
//   - spec.shutdown: shut down once every instance is stopped (Ready);
//   - every instance set has as many replicas, ready and updated, as asked;
//   - a standby: Patroni's system identifier is known (backups never become
//     ready on a standby);
//   - otherwise, with backups: pgBackRest's replica repository and replica
//     creation are done; with PgBouncer: it is available.
func Judge(pc *unstructured.Unstructured, events Events) Readiness {
	r := Readiness{}
	generation := pc.GetGeneration()
	wantBySet, setNames := wantedReplicas(pc)
	for _, n := range wantBySet {
		r.Instances += int32(n)
	}
	gotBySet := map[string]map[string]any{}
	statusSets, _, _ := unstructured.NestedSlice(pc.Object, "status", "instances")
	for _, s := range statusSets {
		set, _ := s.(map[string]any)
		name, _ := set["name"].(string)
		gotBySet[name] = set
		if ready, ok := set["readyReplicas"].(int64); ok {
			r.ReadyInstances += int32(ready)
		}
	}
	observed, _, _ := unstructured.NestedInt64(pc.Object, "status", "observedGeneration")
	lagging := observed != generation

	// PGO writes Progressing=False/Paused, with the generation it saw, and
	// returns: for spec.paused (C/controller.go:188-198) and for backups
	// removed without authorization (C/controller.go:203-218,
	// C/pgbackrest.go:3169-3249). Same type, status and reason; the message
	// tells them apart, and spec.paused says which one a person asked for.
	progressing := findCondition(pc, conditionProgressing)
	current := func(c map[string]any) bool {
		g, _ := c["observedGeneration"].(int64)
		return g == generation
	}
	if paused, _, _ := unstructured.NestedBool(pc.Object, "spec", "paused"); paused {
		r.Reason, r.Message = ReasonPaused, "the PostgresCluster is paused (spec.paused): PGO makes no changes until it is resumed"
		if progressing != nil && current(progressing) && str(progressing, "reason") == ReasonPaused {
			r.Message = "PGO: " + str(progressing, "message")
		}
		return r
	}
	if progressing != nil && current(progressing) && str(progressing, "status") == "False" {
		r.Stalled = true
		r.Reason = orDefault(str(progressing, "reason"), ReasonPaused)
		r.Message = "PGO paused reconciliation: " + str(progressing, "message")
		return r
	}

	// A restore Job that failed is not retried: PGO stays in its restore path
	// until a new restore is asked for (C/pgbackrest.go:1022-1030, C/cluster.go:319-461).
	// Once one is, PGO tears the cluster down again under
	// RestoreInPlaceRequested and drops the failure (C/pgbackrest.go:1049-1058, :1131).
	restoring := findCondition(pc, conditionRestoring)
	if c := findCondition(pc, conditionDataInitialized); c != nil && str(c, "status") == "False" && str(c, "reason") == platformv1alpha1.ReasonRestoreFailed &&
		str(restoring, "reason") != "RestoreInPlaceRequested" {
		r.Stalled, r.Reason = true, platformv1alpha1.ReasonRestoreFailed
		r.Message = fmt.Sprintf("PGO: %s; ask for a new restore (a new postgres.restore.id) or fix the source and recreate the cluster", str(c, "message"))
		return r
	}
	if e := refusal(events); e != nil && (lagging || restoring != nil) {
		r.Stalled, r.Reason = true, e.Reason
		r.Message = fmt.Sprintf("PGO refuses generation %d of the PostgresCluster (Warning %s at %s): %s", generation, e.Reason, e.LastSeen.UTC().Format(time.RFC3339), e.Message)
		return r
	}
	// Restoring in place or bootstrapping from a data source, PGO returns
	// before anything else (C/controller.go:284-295) with this condition True
	// (C/pgbackrest.go:1049-1058, :1129-1138); it is removed when the restore
	// Job completes (C/pgbackrest.go:992-993).
	if str(restoring, "status") == "True" {
		r.Reason = ReasonRestoring
		r.Message = fmt.Sprintf("PGO is restoring the cluster's data (%s): %s", str(restoring, "reason"), str(restoring, "message"))
		return r
	}
	if lagging {
		r.Reason = ReasonNotObserved
		// Written once and then held while PGO works (status.Pacing), so it
		// says what held when written and where PGO's steps show after.
		r.Message = fmt.Sprintf("PGO had not observed generation %d of the PostgresCluster at this write (it had seen %d); "+
			"PGO's steps show in the PostgresCluster's status, and this condition changes when the cluster is ready or needs attention",
			generation, observed)
		return r
	}

	// PGO's own test of "shut down": spec.shutdown, the generation observed,
	// and every instance set's pods gone (replicas 0 or omitted); PGUpgrade
	// waits for exactly this (internal/controller/pgupgrade/world.go:133-155).
	if shutdown, _, _ := unstructured.NestedBool(pc.Object, "spec", "shutdown"); shutdown {
		var running int64
		for _, set := range gotBySet {
			n, _ := set["replicas"].(int64)
			running += n
		}
		if running == 0 {
			r.Ready, r.Reason = true, ReasonShutDown
			r.Message = fmt.Sprintf("the PostgresCluster is shut down (spec.shutdown): PGO has stopped all %d PostgreSQL instances", r.Instances)
			return r
		}
		r.Reason = ReasonShuttingDown
		r.Message = fmt.Sprintf("the PostgresCluster is shutting down (spec.shutdown): %d PostgreSQL instances still run", running)
		return r
	}

	for _, name := range setNames {
		want := wantBySet[name]
		got := gotBySet[name]
		ready, _ := got["readyReplicas"].(int64)
		replicas, _ := got["replicas"].(int64)
		updated, _ := got["updatedReplicas"].(int64)
		if got == nil || ready != want || replicas != want || updated != want {
			r.Reason = ReasonInstancesNotReady
			r.Message = fmt.Sprintf("instance set %s has %d of %d replicas ready (%d updated)", name, ready, want, updated)
			return r
		}
	}

	if standby, _, _ := unstructured.NestedBool(pc.Object, "spec", "standby", "enabled"); standby {
		// A standby has no writable instance, so PGO never creates the stanza
		// (C/pgbackrest.go:2798-2832) nor the replica-create backup
		// (C/pgbackrest.go:2565-2592): PGBackRestReplicaRepoReady and
		// PGBackRestReplicaCreate stay False for good. Its leader runs as
		// standby_leader, never "master" or "primary" (C/instance.go:122-138).
		// Patroni's system identifier says it bootstrapped from its source
		// (C/patroni.go:325-333, internal/patroni/reconcile.go:23-27).
		if id, _, _ := unstructured.NestedString(pc.Object, "status", "patroni", "systemIdentifier"); id == "" {
			r.Reason = ReasonStandbyNotBootstrapped
			r.Message = fmt.Sprintf("standby: %d of %d PostgreSQL instances ready, but Patroni has not reported a system identifier yet", r.ReadyInstances, r.Instances)
			return r
		}
	} else if _, backups, _ := unstructured.NestedMap(pc.Object, "spec", "backups", "pgbackrest"); backups {
		// Written on every reconcile with backups (C/pgbackrest.go:2757-2791,
		// :2545-2566); True once the stanza exists and the replica-create
		// backup is done, as PGO's pgbackrest-init test asserts.
		for _, cond := range []string{conditionReplicaRepo, conditionReplicaCreate} {
			c := findCondition(pc, cond)
			if status := str(c, "status"); status != "True" {
				r.Reason = ReasonBackupsNotReady
				r.Message = fmt.Sprintf("pgBackRest is not ready: %s is %s", cond, describe(status, str(c, "reason"), str(c, "message")))
				return r
			}
		}
	}
	if _, pooler, _ := unstructured.NestedMap(pc.Object, "spec", "proxy", "pgBouncer"); pooler {
		// Copied from the PgBouncer Deployment's Available condition (C/pgbouncer.go:501-520).
		c := findCondition(pc, conditionProxyAvailable)
		if status := str(c, "status"); status != "True" {
			r.Reason = ReasonPoolerNotReady
			r.Message = fmt.Sprintf("PgBouncer is not available: ProxyAvailable is %s", describe(status, str(c, "reason"), str(c, "message")))
			return r
		}
	}
	r.Ready, r.Reason = true, ReasonReady
	r.Message = fmt.Sprintf("%d of %d PostgreSQL instances ready", r.ReadyInstances, r.Instances)
	if standby, _, _ := unstructured.NestedBool(pc.Object, "spec", "standby", "enabled"); standby {
		r.Message = "standby: " + r.Message
	}
	return r
}

// wantedReplicas is the replicas asked for per instance set, and the sets'
// names in spec order. An unnamed set is named as PGO names it: 00, 01, …
// (pkg/apis/postgres-operator.crunchydata.com/v1beta1/postgrescluster_types.go:567-570).
func wantedReplicas(pc *unstructured.Unstructured) (map[string]int64, []string) {
	want := map[string]int64{}
	var names []string
	sets, _, _ := unstructured.NestedSlice(pc.Object, "spec", "instances")
	for i, s := range sets {
		set, _ := s.(map[string]any)
		name, _ := set["name"].(string)
		if name == "" {
			name = fmt.Sprintf("%02d", i)
		}
		replicas := int64(1)
		if v, ok := set["replicas"].(int64); ok {
			replicas = v
		}
		want[name] = replicas
		names = append(names, name)
	}
	return want, names
}

// refusal is the newest of PGO's refusal Events that speaks of the current
// spec, if any.
func refusal(events Events) *Event {
	var found []Event
	since := events.Since.Truncate(time.Second) // Event times have whole seconds
	for _, e := range events.Items {
		if e.Type != "Warning" || e.Source != EventSource || !refusals[e.Reason] || e.LastSeen.Before(since) {
			continue
		}
		found = append(found, e)
	}
	if len(found) == 0 {
		return nil
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].LastSeen.After(found[j].LastSeen) })
	return &found[0]
}

func findCondition(pc *unstructured.Unstructured, conditionType string) map[string]any {
	conds, _, _ := unstructured.NestedSlice(pc.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m != nil && m["type"] == conditionType {
			return m
		}
	}
	return nil
}

// str reads a string field of a condition; "" when the condition is nil.
func str(c map[string]any, key string) string {
	s, _ := c[key].(string)
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func describe(status, reason, message string) string {
	if status == "" {
		return "not reported yet"
	}
	out := status
	if reason != "" {
		out += " (" + reason + ")"
	}
	if message != "" {
		out += ": " + strings.TrimSpace(message)
	}
	return out
}
