package controllers_test

// A major version change on a running cluster would take it down (PGO rolls
// the pods onto the other major's image and the data directory refuses to
// start), so the manager holds it: the live version keeps being applied, the
// stack stalls saying what to do, and the database stays Ready.

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func TestAMajorVersionChangeIsHeldUntilSetBack(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 16 }))
	o.installFirst(pkg, csv5_8_9)
	getPostgresCluster(t, ns, "hippo")
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)

	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 17 })
	raised := getStack(t, stack).Generation
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMajorVersionChangeHeld,
		"PostgreSQL 16 runs in PostgresCluster hippo", "moving to 17 needs PGO's major upgrade (PGUpgrade)", "set spec.postgres.version back to 16")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)
	waitCondition(t, stack, platformv1alpha1.ConditionReconciling, metav1.ConditionFalse, platformv1alpha1.ReasonMajorVersionChangeHeld)
	wantVersion(t, ns, "hippo", 16)
	// The database never stopped being Ready for the raised spec: nothing was
	// applied that PGO would have to catch up with.
	for _, s := range writtenStatuses(stack) {
		if s.ObservedGeneration == raised && !meta.IsStatusConditionTrue(s.Conditions, platformv1alpha1.ConditionReady) {
			t.Errorf("Ready was written as %+v for generation %d", meta.FindStatusCondition(s.Conditions, platformv1alpha1.ConditionReady), raised)
		}
	}
	if k := kstatusOf(t, stack); k != kstatus.FailedStatus {
		t.Errorf("kstatus of a held stack = %s, want Failed (a person must act)", k)
	}
	if e := waitEvent(t, stack, platformv1alpha1.ReasonMajorVersionChangeHeld); e.Type != corev1.EventTypeWarning {
		t.Errorf("the hold's Event is %s, want Warning", e.Type)
	}

	// Everything else the stack asks for is still applied, at the held version.
	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Postgres.Parameters = map[string]intstr.IntOrString{"work_mem": intstr.FromString("8MB")}
	})
	eventually(t, "work_mem applied beside postgresVersion 16", func() (bool, error) {
		pc := getPostgresCluster(t, ns, "hippo")
		workMem, _, _ := unstructured.NestedString(pc.Object, "spec", "config", "parameters", "work_mem")
		version, _, _ := unstructured.NestedInt64(pc.Object, "spec", "postgresVersion")
		if version != 16 {
			t.Fatalf("postgresVersion = %d while the change is held, want 16", version)
		}
		return workMem == "8MB", nil
	})
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMajorVersionChangeHeld)

	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 16 })
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionFalse, platformv1alpha1.ReasonReady)
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)
	if k := kstatusOf(t, stack); k != kstatus.CurrentStatus {
		t.Errorf("kstatus once set back = %s, want Current", k)
	}
	wantVersion(t, ns, "hippo", 16)
}

// The live version is what runs, whoever set it: after a PGUpgrade run by
// hand and postgresVersion raised on the PostgresCluster, pgstack does not
// put the old version back; and a stack lowered below a running version
// (which the API server admits, so that a person can set it back) is held
// the same way.
func TestAVersionBelowTheRunningOneIsHeld(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 16 }))
	o.installFirst(pkg, csv5_8_9)
	pc := getPostgresCluster(t, ns, "hippo")
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)

	patch := client.MergeFrom(pc.DeepCopy())
	must(t, unstructured.SetNestedField(pc.Object, int64(17), "spec", "postgresVersion"))
	must(t, k8s.Patch(context.Background(), pc, patch, client.FieldOwner("kubectl-edit")))
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMajorVersionChangeHeld,
		"PostgreSQL 17 runs in PostgresCluster hippo", "cannot move down to 16", "set spec.postgres.version to 17")
	wantVersion(t, ns, "hippo", 17)
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)

	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 17 })
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionFalse, platformv1alpha1.ReasonReady)

	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 16 })
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMajorVersionChangeHeld,
		"PostgreSQL 17 runs", "set spec.postgres.version to 17")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)
	wantVersion(t, ns, "hippo", 17)
}

// wantVersion checks the PostgresCluster's spec.postgresVersion. Callers
// first wait for a condition written after the reconcile that applied.
func wantVersion(t *testing.T, ns, name string, want int64) {
	t.Helper()
	pc := getPostgresCluster(t, ns, name)
	if got, _, _ := unstructured.NestedInt64(pc.Object, "spec", "postgresVersion"); got != want {
		t.Errorf("PostgresCluster %s/%s has postgresVersion %d, want %d", ns, name, got, want)
	}
}
