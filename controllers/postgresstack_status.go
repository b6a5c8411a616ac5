package controllers

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/policy"
)

// eventedConditions are the conditions whose transitions a person wants in
// `kubectl describe`, in the order they are told.
var eventedConditions = []string{
	platformv1alpha1.ConditionOperatorInstalled,
	platformv1alpha1.ConditionUpgradeApproved,
	platformv1alpha1.ConditionClusterReady,
	platformv1alpha1.ConditionStalled,
	platformv1alpha1.ConditionReady,
}

// recordTransitions emits one Event per condition whose status or reason
// changed: Warning when it now needs a person, Normal otherwise.
func (r *PostgresStackReconciler) recordTransitions(stack *platformv1alpha1.PostgresStack, before, after platformv1alpha1.PostgresStackStatus) {
	for _, t := range eventedConditions {
		now := meta.FindStatusCondition(after.Conditions, t)
		if now == nil {
			continue
		}
		was := meta.FindStatusCondition(before.Conditions, t)
		if was != nil && was.Status == now.Status && was.Reason == now.Reason {
			continue
		}
		if was == nil && now.Status == metav1.ConditionFalse && t == platformv1alpha1.ConditionStalled {
			continue // not stalled from the start: nothing to tell
		}
		eventType := corev1.EventTypeNormal
		if (t == platformv1alpha1.ConditionStalled && now.Status == metav1.ConditionTrue) ||
			(t != platformv1alpha1.ConditionStalled && now.Status == metav1.ConditionFalse && now.Reason == platformv1alpha1.ReasonCSVFailed) {
			eventType = corev1.EventTypeWarning
		}
		if t == platformv1alpha1.ConditionUpgradeApproved && now.Status == metav1.ConditionFalse {
			verdict := policy.Wait
			if now.Reason == policy.ReasonOutsideVersionRange || now.Reason == policy.ReasonForeignCSV || now.Reason == policy.ReasonUnknownVersion {
				verdict = policy.Refuse
			}
			approvals.WithLabelValues(string(verdict)).Inc()
		}
		r.Recorder.Eventf(stack, nil, eventType, now.Reason, t, "%s is %s: %s", t, now.Status, now.Message)
	}
}
