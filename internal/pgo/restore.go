package pgo

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// bootstrapRestoreID prefixes the id PGO gives the restore that seeds a new
// cluster from a data source (a clone), which has no restore annotation
// (PGO v5.8.9 internal/controller/postgrescluster/cluster.go:362-366).
const bootstrapRestoreID = "~pgo-bootstrap-"

// ReadRestore reports the last restore PGO ran into live, as the stack asked
// for it (spec: its postgres section), or previous when PGO has none.
//
// PGO keeps one record, status.pgbackrest.restore: started with the
// restore's id (an in-place restore's annotation, or ~pgo-bootstrap-<name>
// for a clone's seeding) and filled from its restore Job (PGO v5.8.9
// internal/controller/postgrescluster/pgbackrest.go:960-979, 1060-1063).
func ReadRestore(live *unstructured.Unstructured, spec platformv1alpha1.PostgresSpec, previous *platformv1alpha1.RestoreStatus) *platformv1alpha1.RestoreStatus {
	m, ok, _ := unstructured.NestedMap(live.Object, "status", "pgbackrest", "restore")
	if !ok {
		return previous
	}
	id, _, _ := unstructured.NestedString(m, "id")
	finished, _, _ := unstructured.NestedBool(m, "finished")
	succeeded, _, _ := unstructured.NestedInt64(m, "succeeded")
	out := &platformv1alpha1.RestoreStatus{ID: id, Finished: finished, Succeeded: succeeded > 0,
		CompletionTime: metaTime(timeOf(m, "completionTime"))}
	switch r, c := spec.Restore, spec.CloneFrom; {
	case strings.HasPrefix(id, bootstrapRestoreID):
		out.ID, out.Source = "", "the cluster's data source"
		if c != nil {
			out.Source = cloneSource(*c, live.GetNamespace())
		}
	case r != nil && r.ID == id:
		repo := "repo1"
		if r.RepoName != "" {
			repo = string(r.RepoName)
		}
		out.Source = repo + " of this cluster"
		out.TargetTime = r.TargetTime.DeepCopy()
	default:
		// An earlier restore than the spec names: its repository and
		// target are no longer known.
		out.Source = "this cluster's repository"
	}
	return out
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
