package status

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/policy"
)

// A deleting stack observes only its PostgresCluster. What it knew of the
// operator (a pending upgrade among it) must not be unsaid: no blank
// status.operator, no OperatorInstalled back to AwaitingInstallPlan, no
// UpgradeApproved turned True.
func TestComputeDeletingKeepsWhatWasKnownOfTheOperator(t *testing.T) {
	waiting := installed
	waiting.Observed = true
	waiting.CurrentCSV, waiting.Plan, waiting.PlanPhase = "postgresoperator.v5.9.0", "install-2", "RequiresApproval"
	waiting.Decision = &policy.Decision{Verdict: policy.Wait, Reason: policy.ReasonManualApprovalRequired, Message: "version 5.9.0 waits for a person", Version: "5.9.0"}
	t1 := metav1.NewTime(time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC))
	before := Compute(platformv1alpha1.PostgresStackStatus{}, Observations{Generation: 1, Operator: waiting, Cluster: readyCluster}, t1)
	if before.Operator.PendingVersion != "5.9.0" {
		t.Fatalf("premise: the stack reported a pending 5.9.0, got %+v", before.Operator)
	}

	tests := []struct {
		name     string
		operator Operator
		// wantKept: the operator's status and conditions are the previous ones.
		wantKept bool
	}{
		{name: "operator not observed while deleting: kept", wantKept: true},
		{name: "operator observed again while deleting: reported as observed", operator: Operator{Observed: true, Subscription: "postgresql"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(before, Observations{Generation: 2, Deleting: true, Operator: tt.operator, Cluster: readyCluster}, metav1.NewTime(t1.Add(time.Minute)))
			ready := meta.FindStatusCondition(got.Conditions, platformv1alpha1.ConditionReady)
			if ready.Status != metav1.ConditionFalse || ready.Reason != platformv1alpha1.ReasonDeleting {
				t.Errorf("Ready = %s/%s, want False/Deleting", ready.Status, ready.Reason)
			}
			if stalled := meta.FindStatusCondition(got.Conditions, platformv1alpha1.ConditionStalled); stalled.Status != metav1.ConditionFalse {
				t.Errorf("Stalled = %s/%s while deleting, want False", stalled.Status, stalled.Reason)
			}
			for _, condType := range []string{platformv1alpha1.ConditionOperatorInstalled, platformv1alpha1.ConditionUpgradeApproved} {
				was, now := meta.FindStatusCondition(before.Conditions, condType), meta.FindStatusCondition(got.Conditions, condType)
				same := was.Status == now.Status && was.Reason == now.Reason && was.Message == now.Message
				if same != tt.wantKept {
					t.Errorf("%s went %s/%s -> %s/%s, want kept: %v", condType, was.Status, was.Reason, now.Status, now.Reason, tt.wantKept)
				}
			}
			if kept := got.Operator == before.Operator; kept != tt.wantKept {
				t.Errorf("status.operator = %+v (before %+v), want kept: %v", got.Operator, before.Operator, tt.wantKept)
			}
		})
	}
}

// A stack that stays in deletion says what it waits on, in Ready and
// Reconciling, so `kubectl describe` answers "why is it still here".
func TestComputeDeletingSaysWhatItWaitsFor(t *testing.T) {
	tests := []struct {
		name      string
		waitsFor  string
		wantReady string
	}{
		{name: "nothing left to wait on", wantReady: "the stack is being deleted"},
		{name: "a CSV OLM is removing", waitsFor: "OLM to remove CSV postgresoperator.v5.8.9 (removal DeleteIfUnused)",
			wantReady: "the stack is being deleted; waiting for OLM to remove CSV postgresoperator.v5.8.9 (removal DeleteIfUnused)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(platformv1alpha1.PostgresStackStatus{}, Observations{Generation: 2, Deleting: true, DeletionWaitsFor: tt.waitsFor, Operator: installed, Cluster: readyCluster},
				metav1.NewTime(time.Date(2026, 12, 3, 20, 0, 0, 0, time.UTC)))
			for _, condType := range []string{platformv1alpha1.ConditionReady, platformv1alpha1.ConditionReconciling} {
				if c := meta.FindStatusCondition(got.Conditions, condType); c.Reason != platformv1alpha1.ReasonDeleting || c.Message != tt.wantReady {
					t.Errorf("%s = %s: %q, want Deleting: %q", condType, c.Reason, c.Message, tt.wantReady)
				}
			}
		})
	}
}
