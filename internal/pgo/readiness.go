// Package pgo holds what pgstack knows of PGO's API: the PostgresCluster kind
// and how to tell, from its status, whether PGO considers it ready. PGO sets no
// single Ready condition, so readiness is judged the way PGO's own tests do.
package pgo

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// PostgresClusterGVK is PGO's PostgresCluster kind.
var PostgresClusterGVK = schema.GroupVersionKind{Group: "postgres-operator.crunchydata.com", Version: "v1beta1", Kind: "PostgresCluster"}

// PostgresClusterCRD is the name of PGO's PostgresCluster CRD.
const PostgresClusterCRD = "postgresclusters.postgres-operator.crunchydata.com"

// Reasons a readiness judgement gives; they become ClusterReady's reason.
const (
	ReasonReady             = "ClusterReady"
	ReasonNotObserved       = "AwaitingPGO"
	ReasonInstancesNotReady = "InstancesNotReady"
	ReasonBackupsNotReady   = "BackupsNotReady"
	ReasonPoolerNotReady    = "PoolerNotReady"
	ReasonPaused            = "Paused"
)

// Readiness is PGO's view of one PostgresCluster, summed up.
type Readiness struct {
	Ready   bool
	Reason  string
	Message string
	// ReadyInstances and Instances count PostgreSQL pods over every instance set.
	ReadyInstances int32
	Instances      int32
}

// NewPostgresCluster is an empty PostgresCluster object with its kind set.
func NewPostgresCluster() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(PostgresClusterGVK)
	return u
}

// ClusterReadiness judges a PostgresCluster: PGO has observed its generation;
// every instance set has as many ready and updated replicas as asked for;
// pgBackRest's replica repo and replica creation are done when backups are
// on; PgBouncer is available when it is on. A paused cluster is not ready.
func ClusterReadiness(pc *unstructured.Unstructured) Readiness {
	r := Readiness{}
	wantBySet := map[string]int64{}
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
		wantBySet[name] = replicas
		r.Instances += int32(replicas)
	}

	observed, _, _ := unstructured.NestedInt64(pc.Object, "status", "observedGeneration")
	statusSets, _, _ := unstructured.NestedSlice(pc.Object, "status", "instances")
	gotBySet := map[string]map[string]any{}
	for _, s := range statusSets {
		set, _ := s.(map[string]any)
		name, _ := set["name"].(string)
		gotBySet[name] = set
		if ready, ok := set["readyReplicas"].(int64); ok {
			r.ReadyInstances += int32(ready)
		}
	}

	if paused, _, _ := unstructured.NestedBool(pc.Object, "spec", "paused"); paused {
		r.Reason, r.Message = ReasonPaused, "the PostgresCluster is paused (spec.paused): PGO makes no changes until it is resumed"
		return r
	}
	if observed != pc.GetGeneration() {
		r.Reason = ReasonNotObserved
		r.Message = fmt.Sprintf("PGO has not yet observed generation %d of the PostgresCluster (it has seen %d)", pc.GetGeneration(), observed)
		return r
	}
	for name, want := range wantBySet {
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
	if _, backups, _ := unstructured.NestedMap(pc.Object, "spec", "backups", "pgbackrest"); backups {
		for _, cond := range []string{"PGBackRestReplicaRepoReady", "PGBackRestReplicaCreate"} {
			if status, reason, message := condition(pc, cond); status != "True" {
				r.Reason = ReasonBackupsNotReady
				r.Message = fmt.Sprintf("pgBackRest is not ready: %s is %s", cond, describe(status, reason, message))
				return r
			}
		}
	}
	if _, pooler, _ := unstructured.NestedMap(pc.Object, "spec", "proxy", "pgBouncer"); pooler {
		if status, reason, message := condition(pc, "ProxyAvailable"); status != "True" {
			r.Reason = ReasonPoolerNotReady
			r.Message = fmt.Sprintf("PgBouncer is not available: ProxyAvailable is %s", describe(status, reason, message))
			return r
		}
	}
	r.Ready, r.Reason = true, ReasonReady
	r.Message = fmt.Sprintf("%d of %d PostgreSQL instances ready", r.ReadyInstances, r.Instances)
	return r
}

func condition(pc *unstructured.Unstructured, conditionType string) (status, reason, message string) {
	conds, _, _ := unstructured.NestedSlice(pc.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == conditionType {
			status, _ = m["status"].(string)
			reason, _ = m["reason"].(string)
			message, _ = m["message"].(string)
			return status, reason, message
		}
	}
	return "", "", ""
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
		out += ": " + message
	}
	return out
}
