package pgo

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// restoreComplete is the reason PGO gives PostgresDataInitialized once a
// restore Job seeded the data (PGO v5.8.9
// internal/controller/postgrescluster/pgbackrest.go:983-990).
const restoreComplete = "PGBackRestRestoreComplete"

// ReadRestore reports the last restore PGO ran into live, as the stack asked
// for it (spec: its postgres section), or previous when PGO says nothing new.
//
// An in-place restore is PGO's status.pgbackrest.restore, which PGO starts
// with the restore's id and fills from its Job (pgbackrest.go:960-979,
// 1060-1063). A clone's seeding has no such record: PGO marks it only by
// PostgresDataInitialized turning True with reason PGBackRestRestoreComplete,
// when the Job completed (a failed one is RestoreFailed, judged elsewhere).
func ReadRestore(live *unstructured.Unstructured, spec platformv1alpha1.PostgresSpec, previous *platformv1alpha1.RestoreStatus) *platformv1alpha1.RestoreStatus {
	if m, ok, _ := unstructured.NestedMap(live.Object, "status", "pgbackrest", "restore"); ok {
		id, _, _ := unstructured.NestedString(m, "id")
		finished, _, _ := unstructured.NestedBool(m, "finished")
		succeeded, _, _ := unstructured.NestedInt64(m, "succeeded")
		out := &platformv1alpha1.RestoreStatus{ID: id, Finished: finished, Succeeded: succeeded > 0,
			CompletionTime: metaTime(timeOf(m, "completionTime"))}
		out.Source = "repo1 of this cluster"
		if r := spec.Restore; r != nil && r.ID == id {
			if r.RepoName != "" {
				out.Source = string(r.RepoName) + " of this cluster"
			}
			out.TargetTime = r.TargetTime.DeepCopy()
		}
		return out
	}
	if c := spec.CloneFrom; c != nil {
		cond := findCondition(live, conditionDataInitialized)
		if cond == nil || str(cond, "status") != "True" || str(cond, "reason") != restoreComplete {
			return previous
		}
		return &platformv1alpha1.RestoreStatus{Source: cloneSource(*c, live.GetNamespace()), Finished: true, Succeeded: true,
			CompletionTime: metaTime(timeOf(cond, "lastTransitionTime"))}
	}
	return previous
}

// cloneSource names where a clone's data came from.
func cloneSource(c platformv1alpha1.CloneFrom, namespace string) string {
	repo := string(c.RepoName)
	if repo == "" {
		repo = "repo1"
	}
	if c.Repo != nil {
		return "a cloud repository, " + repo
	}
	if c.ClusterNamespace != "" {
		namespace = c.ClusterNamespace
	}
	return fmt.Sprintf("%s of PostgresCluster %s/%s", repo, namespace, c.ClusterName)
}

// metaTime is t as an API time, nil when zero.
func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	m := metav1.NewTime(t)
	return &m
}
