package status

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// ProgressOnly reports whether next differs from current only in how work
// in progress is described: the same generation observed, the stack
// Reconciling and neither Ready nor Stalled before and after, every
// condition keeping its status, and nothing else in the status moving but
// the conditions' reasons and messages, the count of ready instances, the
// primary (a new cluster's first leader, elected as its instances start),
// whether each backup repository is ready (PGO creating its stanza), and
// the install OLM is carrying out (its plan, CSVs, version and phase: OLM
// takes a CSV through four phases in seconds, and every stack sharing the
// operator would write each).
//
// Such a change may wait a little before it is written: PGO moves a new
// cluster through several states (instances starting, the stanza, the
// replica backup) within seconds, and writing each is an API write per
// state per stack that no reader acts on. Everything a reader acts on (a
// condition turning, a new generation observed, Ready, Stalled, an
// operation's phase, a backup time) is never held back.
func ProgressOnly(current, next platformv1alpha1.PostgresStackStatus) bool {
	if current.ObservedGeneration != next.ObservedGeneration {
		return false
	}
	for _, s := range []platformv1alpha1.PostgresStackStatus{current, next} {
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

// withoutProgress is s without what ProgressOnly lets move.
func withoutProgress(s platformv1alpha1.PostgresStackStatus) platformv1alpha1.PostgresStackStatus {
	out := *s.DeepCopy()
	out.Cluster.ReadyInstances, out.Cluster.Primary = 0, ""
	out.Operator.InstallPlan, out.Operator.CurrentCSV, out.Operator.InstalledCSV, out.Operator.Version, out.Operator.Phase = "", "", "", "", ""
	if out.Backups != nil {
		for i := range out.Backups.Repos {
			out.Backups.Repos[i].Ready = false
		}
	}
	for i := range out.Conditions {
		out.Conditions[i].Reason, out.Conditions[i].Message, out.Conditions[i].LastTransitionTime = "", "", metav1.Time{}
	}
	return out
}
