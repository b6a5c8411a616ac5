package status

import (
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// Pace says when a status change is written.
type Pace int

const (
	// WriteNow: a reader or tool acts on the change (a condition turning,
	// a new generation observed, Ready, Stalled, an operation's phase, a
	// backup time).
	WriteNow Pace = iota
	// PaceProgress: the change only describes work in progress differently,
	// and may wait until the progress interval has passed since the last
	// write. OLM taking a CSV through four phases in seconds is one: every
	// stack sharing the operator would write each.
	PaceProgress
	// HoldClusterProgress: the change only describes PGO's steps toward a
	// new cluster (instances starting, the primary elected, the stanza):
	// it is written with the next change a reader acts on, unless the
	// manager is asked to show those steps. Under load PGO takes a new
	// cluster minutes through them, and a write per step per stack is what
	// keeps a stack from the design's four writes; PGO's own status shows
	// them as they happen.
	HoldClusterProgress
)

// Pacing says how the change from current to next is written. A change
// is progress when the same generation is observed, the stack is
// Reconciling, not deleting, and neither Ready nor Stalled before and after, every
// condition keeps its status, and nothing else in the status moves but the
// conditions' reasons and messages, the count of ready instances, the
// primary, whether each backup repository is ready, and the install OLM is
// carrying out (its plan, CSVs, version and phase).
func Pacing(current, next platformv1alpha1.PostgresStackStatus) Pace {
	if !progressOnly(current, next) {
		return WriteNow
	}
	if equality.Semantic.DeepEqual(withoutClusterProgress(current), withoutClusterProgress(next)) {
		return HoldClusterProgress
	}
	return PaceProgress
}

// clusterProgressConditions are the conditions whose reasons and messages
// follow PGO's steps toward a ready cluster.
var clusterProgressConditions = []string{platformv1alpha1.ConditionReady, platformv1alpha1.ConditionReconciling,
	platformv1alpha1.ConditionClusterReady, platformv1alpha1.ConditionBackupsHealthy}

// withoutClusterProgress is s without PGO's steps toward a ready cluster.
func withoutClusterProgress(s platformv1alpha1.PostgresStackStatus) platformv1alpha1.PostgresStackStatus {
	out := *s.DeepCopy()
	out.Cluster.ReadyInstances, out.Cluster.Primary = 0, ""
	if out.Backups != nil {
		for i := range out.Backups.Repos {
			out.Backups.Repos[i].Ready = false
		}
	}
	for i := range out.Conditions {
		if slices.Contains(clusterProgressConditions, out.Conditions[i].Type) {
			out.Conditions[i].Reason, out.Conditions[i].Message, out.Conditions[i].LastTransitionTime = "", "", metav1.Time{}
		}
	}
	return out
}

// progressOnly reports whether next differs from current only in how work
// in progress is described (see Pacing).
func progressOnly(current, next platformv1alpha1.PostgresStackStatus) bool {
	if current.ObservedGeneration != next.ObservedGeneration {
		return false
	}
	for _, s := range []platformv1alpha1.PostgresStackStatus{current, next} {
		// What deletion waits on is what a person watching a stack that
		// does not go wants to know; it is written once or twice per stack.
		if ready := meta.FindStatusCondition(s.Conditions, platformv1alpha1.ConditionReady); ready != nil && ready.Reason == platformv1alpha1.ReasonDeleting {
			return false
		}
		if !meta.IsStatusConditionTrue(s.Conditions, platformv1alpha1.ConditionReconciling) ||
			!meta.IsStatusConditionFalse(s.Conditions, platformv1alpha1.ConditionReady) ||
			meta.IsStatusConditionTrue(s.Conditions, platformv1alpha1.ConditionStalled) {
			return false
		}
	}
	if len(current.Conditions) != len(next.Conditions) {
		return false
	}
	for _, c := range current.Conditions {
		n := meta.FindStatusCondition(next.Conditions, c.Type)
		if n == nil || n.Status != c.Status || n.ObservedGeneration != c.ObservedGeneration {
			return false
		}
	}
	return equality.Semantic.DeepEqual(withoutProgress(current), withoutProgress(next))
}

// withoutProgress is s without what progressOnly lets move: PGO's steps,
// OLM's install, and every condition's reason and message.
func withoutProgress(s platformv1alpha1.PostgresStackStatus) platformv1alpha1.PostgresStackStatus {
	out := withoutClusterProgress(s)
	out.Operator.InstallPlan, out.Operator.CurrentCSV, out.Operator.InstalledCSV, out.Operator.Version, out.Operator.Phase = "", "", "", "", ""
	for i := range out.Conditions {
		out.Conditions[i].Reason, out.Conditions[i].Message, out.Conditions[i].LastTransitionTime = "", "", metav1.Time{}
	}
	return out
}
