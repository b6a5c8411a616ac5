package pgo

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// AnnotationAuthorizeBackupRemoval "true" lets PGO go on with a cluster
// whose spec.backups was removed: without it PGO pauses the cluster while
// its repository host exists (PGO v5.8.9 internal/controller/postgrescluster/pgbackrest.go:3169-3198,
// controller.go:205-218), and with it PGO deletes every repository volume.
const AnnotationAuthorizeBackupRemoval = "postgres-operator.crunchydata.com/authorizeBackupRemoval"

// BackupRemovalInput is what a removal of backup repositories is decided from.
type BackupRemovalInput struct {
	Cluster string
	// Live is the PostgresCluster as it is (nil before it exists); Desired
	// what the stack renders.
	Live, Desired *unstructured.Unstructured
	// Spec is spec.operations.backupRemoval; Previous its status record.
	Spec     *platformv1alpha1.BackupRemovalOperation
	Previous *platformv1alpha1.OperationStatus
	Now      time.Time
}

// BackupRemovalPlan is what to apply and report.
type BackupRemovalPlan struct {
	// Apply is Desired, with the repositories held back when the removal
	// is not authorized, and PGO's annotation when every backup goes.
	Apply *unstructured.Unstructured
	// Status is the new record (nil when none ever ran).
	Status *platformv1alpha1.OperationStatus
	// Held: a removal held back (Stalled); Running: an authorized one PGO
	// has not observed yet (Reconciling).
	Held, Running *Finding
	Events        []OperationEvent
}

// PlanBackupRemoval keeps PGO from deleting backups nobody asked to lose.
// PGO deletes a repository's PVC, with every backup in it, as soon as a
// repository on a volume leaves spec.backups.pgbackrest.repos
// (cleanupRepoResources, pgbackrest.go:288-400); removing every backup
// does the same once the cluster carries the authorizeBackupRemoval
// annotation. So a change that removes repositories on a volume is applied
// only once a new spec.operations.backupRemoval token names every one of
// them; until then the live repositories keep being applied with the rest
// of the change. A token authorizes the removal pending when it is seen,
// once. Repositories in a cloud bucket keep their backups when PGO stops
// using them, and need no token.
func PlanBackupRemoval(in BackupRemovalInput) BackupRemovalPlan {
	plan := BackupRemovalPlan{Apply: in.Desired, Status: in.Previous.DeepCopy()}
	if in.Live == nil {
		return plan
	}
	now := metav1.NewTime(in.Now)
	st := plan.Status
	removed := removedVolumeRepos(in.Live, in.Desired)
	everything := !backupsOn(in.Desired) && backupsOn(in.Live)

	if st != nil && st.Phase == platformv1alpha1.OperationRunning && len(removed) == 0 && observedGeneration(in.Live) {
		st.Phase, st.CompletionTime = platformv1alpha1.OperationSucceeded, &now
		st.Message = "PGO observed the cluster without the repositories"
		plan.Events = append(plan.Events, OperationEvent{corev1.EventTypeNormal, platformv1alpha1.EventOperationSucceeded,
			fmt.Sprintf("backupRemoval %s of PostgresCluster %s succeeded: %s", st.Token, in.Cluster, st.Message)})
	}
	authorized := st != nil && st.Phase != platformv1alpha1.OperationFailed
	if len(removed) == 0 {
		if !backupsOn(in.Desired) && authorized {
			plan.Apply = authorize(plan.Apply)
		}
		return plan
	}

	op := in.Spec
	covers := op != nil && !slices.ContainsFunc(removed, func(r string) bool { return !slices.Contains(op.Repos, platformv1alpha1.RepoName(r)) })
	what := fmt.Sprintf("removing %s from PostgresCluster %s makes PGO delete %s, and every backup in %s",
		strings.Join(removed, ", "), in.Cluster, plural(removed, "its volume", "their volumes"), plural(removed, "it", "them"))
	if everything {
		what = fmt.Sprintf("turning backups off for PostgresCluster %s makes PGO delete %s %s, and every backup in %s",
			in.Cluster, plural(removed, "the volume of", "the volumes of"), strings.Join(removed, ", "), plural(removed, "it", "them"))
	}
	switch {
	case st != nil && st.Phase == platformv1alpha1.OperationRunning && op != nil && op.Token == st.Token && covers:
		// Authorized, and still on its way to PGO.
	case op != nil && covers && (st == nil || (st.Token != op.Token && !slices.Contains(st.UsedTokens, op.Token))):
		next := &platformv1alpha1.OperationStatus{Token: op.Token, Phase: platformv1alpha1.OperationRunning, StartTime: &now,
			Message: "removing " + strings.Join(removed, ", ")}
		if st != nil {
			next.UsedTokens = append([]platformv1alpha1.OperationToken{st.Token}, st.UsedTokens...)
			if len(next.UsedTokens) > platformv1alpha1.MaxUsedTokens {
				next.UsedTokens = next.UsedTokens[:platformv1alpha1.MaxUsedTokens]
			}
		}
		st, plan.Status = next, next
		plan.Events = append(plan.Events, OperationEvent{corev1.EventTypeWarning, platformv1alpha1.EventOperationStarted,
			fmt.Sprintf("backupRemoval %s: %s", op.Token, what)})
	default:
		plan.Apply = withLiveRepos(in.Desired, in.Live, removed)
		plan.Held = &Finding{platformv1alpha1.ReasonBackupRemovalHeld, fmt.Sprintf(
			"%s; pgstack keeps applying %s. To go ahead, set spec.operations.backupRemoval to a new token with repos [%s]",
			what, plural(removed, "it", "them"), strings.Join(removed, ", "))}
		return plan
	}
	if everything {
		plan.Apply = authorize(plan.Apply)
	}
	plan.Running = &Finding{platformv1alpha1.ReasonOperationRunning, fmt.Sprintf("backupRemoval %s: %s", st.Token, what)}
	return plan
}

// removedVolumeRepos are the repositories on a volume the live cluster has
// and desired does not, by name.
func removedVolumeRepos(live, desired *unstructured.Unstructured) []string {
	keep := map[string]bool{}
	for _, r := range repoEntries(desired) {
		keep[str(r, "name")] = true
	}
	var removed []string
	for _, r := range repoEntries(live) {
		if _, onVolume := r["volume"]; onVolume && !keep[str(r, "name")] {
			removed = append(removed, str(r, "name"))
		}
	}
	sort.Strings(removed)
	return removed
}

func repoEntries(pc *unstructured.Unstructured) []map[string]any {
	list, _, _ := unstructured.NestedSlice(pc.Object, "spec", "backups", "pgbackrest", "repos")
	var out []map[string]any
	for _, r := range list {
		if m, ok := r.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// withLiveRepos is desired with the named live repositories kept: the live
// backups section whole when desired has none, else the repositories added
// back to desired's.
func withLiveRepos(desired, live *unstructured.Unstructured, names []string) *unstructured.Unstructured {
	out := desired.DeepCopy()
	if !backupsOn(desired) {
		backups, _, _ := unstructured.NestedMap(live.Object, "spec", "backups")
		_ = unstructured.SetNestedMap(out.Object, backups, "spec", "backups")
		return out
	}
	repos, _, _ := unstructured.NestedSlice(out.Object, "spec", "backups", "pgbackrest", "repos")
	for _, r := range repoEntries(live) {
		if slices.Contains(names, str(r, "name")) {
			repos = append(repos, r)
		}
	}
	sort.SliceStable(repos, func(i, j int) bool {
		return str(repos[i].(map[string]any), "name") < str(repos[j].(map[string]any), "name")
	})
	_ = unstructured.SetNestedSlice(out.Object, repos, "spec", "backups", "pgbackrest", "repos")
	return out
}

// authorize is pc with PGO's authorizeBackupRemoval annotation.
func authorize(pc *unstructured.Unstructured) *unstructured.Unstructured {
	out := pc.DeepCopy()
	annotations := out.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationAuthorizeBackupRemoval] = "true"
	out.SetAnnotations(annotations)
	return out
}

// observedGeneration: PGO has reconciled the live cluster's generation.
func observedGeneration(live *unstructured.Unstructured) bool {
	observed, _, _ := unstructured.NestedInt64(live.Object, "status", "observedGeneration")
	return observed >= live.GetGeneration()
}

func plural(list []string, one, many string) string {
	if len(list) == 1 {
		return one
	}
	return many
}
