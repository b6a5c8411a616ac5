package controllers

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// Each Event is an API write per stack, so a stack's way to Ready tells each
// thing once: nothing for its first report nor for PGO's steps, then Ready,
// not ClusterReady beside it. A failed operator is news even in a first
// report.
func TestTransitionsAreToldOnce(t *testing.T) {
	cond := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason}
	}
	var (
		installed     = cond(platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionTrue, "Succeeded")
		installing    = cond(platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionFalse, "Installing")
		failed        = cond(platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionFalse, platformv1alpha1.ReasonCSVFailed)
		awaitingPGO   = cond(platformv1alpha1.ConditionClusterReady, metav1.ConditionFalse, "AwaitingPGO")
		clusterReady  = cond(platformv1alpha1.ConditionClusterReady, metav1.ConditionTrue, "ClusterReady")
		notReady      = cond(platformv1alpha1.ConditionReady, metav1.ConditionFalse, "Reconciling")
		ready         = cond(platformv1alpha1.ConditionReady, metav1.ConditionTrue, "Ready")
		clusterLost   = cond(platformv1alpha1.ConditionClusterReady, metav1.ConditionFalse, "InstancesNotReady")
		readyLost     = cond(platformv1alpha1.ConditionReady, metav1.ConditionFalse, "InstancesNotReady")
		stackWithPGO  = []metav1.Condition{installed, awaitingPGO, notReady}
		readyStack    = []metav1.Condition{installed, clusterReady, ready}
		waitingForPGO = []metav1.Condition{installing, notReady}
	)
	for _, tc := range []struct {
		name          string
		before, after []metav1.Condition
		want          []string // reasons, in order
	}{
		{"first report, PGO installed", nil, stackWithPGO, nil},
		{"first report, waiting for PGO", nil, waitingForPGO, nil},
		{"first report, PGO failed", nil, []metav1.Condition{failed, notReady}, []string{platformv1alpha1.ReasonCSVFailed}},
		{"PGO's steps toward ready are status, not Events", stackWithPGO, []metav1.Condition{installed, clusterLost, notReady}, nil},
		{"the cluster and the stack become ready", stackWithPGO, readyStack, []string{"Ready"}},
		{"PGO installs while the stack waits", waitingForPGO, stackWithPGO, []string{"Succeeded"}},
		{"the cluster stops being ready", readyStack, []metav1.Condition{installed, clusterLost, readyLost}, []string{"InstancesNotReady", "InstancesNotReady"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recorder := events.NewFakeRecorder(10)
			r := &PostgresStackReconciler{Recorder: recorder}
			stack := &platformv1alpha1.PostgresStack{}
			r.recordTransitions(stack, platformv1alpha1.PostgresStackStatus{Conditions: tc.before}, platformv1alpha1.PostgresStackStatus{Conditions: tc.after})
			close(recorder.Events)
			var got []string
			for e := range recorder.Events {
				got = append(got, strings.Fields(e)[1]) // "Type Reason note"
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("events %v, want %v", got, tc.want)
			}
		})
	}
}
