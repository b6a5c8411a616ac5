package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// eventedConditions are the conditions whose transitions a person wants in
// `kubectl describe`, in the order they are told.
var eventedConditions = []string{
	platformv1alpha1.ConditionOperatorInstalled,
	platformv1alpha1.ConditionUpgradeApproved,
	platformv1alpha1.ConditionClusterReady,
	platformv1alpha1.ConditionBackupsHealthy,
	platformv1alpha1.ConditionStalled,
	platformv1alpha1.ConditionReady,
}

// recordTransitions emits the Events a person wants in `kubectl describe`:
// each change of the operator's status or reason (Warning when it failed),
// the cluster turning ready or not, an upgrade that starts or stops
// waiting, the stack becoming Ready or losing it, and the stack stalling
// (Warning).
//
// Events are API writes, one per stack each (make bench counts them), so
// they say each thing once: a stack's first report is no change of a
// component (only a failed operator is news then), and the cluster turning
// ready as the stack turns Ready is the Ready event's news. A new stack's
// way to Ready is told by one Event, Ready.
func (r *PostgresStackReconciler) recordTransitions(stack *platformv1alpha1.PostgresStack, before, after platformv1alpha1.PostgresStackStatus) {
	becameReady := meta.IsStatusConditionTrue(after.Conditions, platformv1alpha1.ConditionReady) &&
		!meta.IsStatusConditionTrue(before.Conditions, platformv1alpha1.ConditionReady)
	for _, t := range eventedConditions {
		now := meta.FindStatusCondition(after.Conditions, t)
		if now == nil {
			continue
		}
		was := meta.FindStatusCondition(before.Conditions, t)
		statusChanged := was == nil || was.Status != now.Status
		reasonChanged := statusChanged || was.Reason != now.Reason
		eventType := corev1.EventTypeNormal
		switch t {
		case platformv1alpha1.ConditionOperatorInstalled, platformv1alpha1.ConditionClusterReady:
			// PGO's steps toward a ready cluster (awaiting PGO, instances,
			// backups) are status, not news: only the cluster turning ready
			// or not is told.
			if !reasonChanged || (t == platformv1alpha1.ConditionClusterReady && !statusChanged) {
				continue
			}
			if now.Reason == platformv1alpha1.ReasonCSVFailed {
				eventType = corev1.EventTypeWarning
			} else if was == nil || (t == platformv1alpha1.ConditionClusterReady && now.Status == metav1.ConditionTrue && becameReady) {
				continue
			}
		case platformv1alpha1.ConditionUpgradeApproved:
			// Waiting starts or ends (or waits for another reason); the first True is no news.
			if (was == nil && now.Status == metav1.ConditionTrue) || (!reasonChanged || (!statusChanged && now.Status == metav1.ConditionTrue)) {
				continue
			}
		case platformv1alpha1.ConditionReady:
			// Becoming Ready, or losing it; not every step of getting there.
			if !statusChanged || (was == nil && now.Status != metav1.ConditionTrue) || (was != nil && was.Status != metav1.ConditionTrue && now.Status != metav1.ConditionTrue) {
				continue
			}
		case platformv1alpha1.ConditionBackupsHealthy:
			// A backup failing or too old, and recovering; the first True is no news.
			if !statusChanged || (was == nil && now.Status == metav1.ConditionTrue) {
				continue
			}
			if now.Status != metav1.ConditionTrue {
				eventType = corev1.EventTypeWarning
			}
		case platformv1alpha1.ConditionStalled:
			if now.Status != metav1.ConditionTrue || !reasonChanged {
				continue
			}
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(stack, nil, eventType, now.Reason, t, "%s is %s: %s", t, now.Status, now.Message)
	}
}
