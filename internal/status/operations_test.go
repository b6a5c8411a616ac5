package status

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// status.operations holds the tokens already used: a reconcile that did not
// plan the operations (PGO away, the stack deleting) must not drop it, or a
// token put back would run again. A run under way is Reconciling beside a
// Ready stack.
func TestComputeKeepsTheOperationsRecord(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC))
	ran := &platformv1alpha1.OperationsStatus{Backup: &platformv1alpha1.OperationStatus{Token: "b2", Phase: platformv1alpha1.OperationSucceeded, UsedTokens: []platformv1alpha1.OperationToken{"b1"}}}
	next := &platformv1alpha1.OperationsStatus{Backup: &platformv1alpha1.OperationStatus{Token: "b3", Phase: platformv1alpha1.OperationRunning, UsedTokens: []platformv1alpha1.OperationToken{"b2", "b1"}}}
	previous := platformv1alpha1.PostgresStackStatus{Operations: ran}
	running := readyCluster
	running.Operations, running.Pending = next, &Problem{Reason: platformv1alpha1.ReasonOperationRunning, Message: "PGO runs backup b3"}

	tests := []struct {
		name            string
		o               Observations
		want            *platformv1alpha1.OperationsStatus
		wantReconciling string
	}{
		{name: "not planned: kept", o: Observations{Generation: 2, Operator: installed, Cluster: readyCluster}, want: ran, wantReconciling: platformv1alpha1.ReasonReady},
		{name: "deleting: kept", o: Observations{Generation: 2, Deleting: true, Operator: installed, Cluster: running}, want: ran, wantReconciling: platformv1alpha1.ReasonDeleting},
		{name: "planned: the new record, Reconciling while it runs", o: Observations{Generation: 2, Operator: installed, Cluster: running}, want: next, wantReconciling: platformv1alpha1.ReasonOperationRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compute(previous, tt.o, now)
			if got.Operations != tt.want {
				t.Errorf("status.operations = %+v, want %+v", got.Operations, tt.want)
			}
			if c := meta.FindStatusCondition(got.Conditions, platformv1alpha1.ConditionReconciling); c == nil || c.Reason != tt.wantReconciling {
				t.Errorf("Reconciling = %+v, want reason %s", c, tt.wantReconciling)
			}
		})
	}
}
