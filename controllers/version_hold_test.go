package controllers_test

// A major version change on a running cluster would take it down (PGO rolls
// the pods onto the other major's image and the data directory refuses to
// start), so the manager runs PGO's PGUpgrade instead, in steps read back
// from the objects. Here the test moves PGO's status by hand; the e2e suite
// runs the same upgrade through PGO's own manager.

import (
	"context"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
)

func TestARaisedVersionRunsAPGUpgradeInSteps(t *testing.T) {
	ctx := context.Background()
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 16 }))
	o.installFirst(pkg, csv5_8_9)
	getPostgresCluster(t, ns, "hippo")
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)

	// Backups are on and PGO has reported none complete: the upgrade waits,
	// the database keeps serving 16 with the rest of the stack's changes.
	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Postgres.Version = 17
		s.Spec.Postgres.Parameters = map[string]intstr.IntOrString{"work_mem": intstr.FromString("8MB")}
	})
	eventually(t, "work_mem applied beside postgresVersion 16", func() (bool, error) {
		pc := getPostgresCluster(t, ns, "hippo")
		workMem, _, _ := unstructured.NestedString(pc.Object, "spec", "config", "parameters", "work_mem")
		if v, _, _ := unstructured.NestedInt64(pc.Object, "spec", "postgresVersion"); v != 16 {
			t.Fatalf("postgresVersion = %d before the upgrade started, want 16", v)
		}
		return workMem == "8MB", nil
	})
	// PGO has yet to report on the new work_mem: the upgrade waits for a
	// ready cluster first, then for the backup.
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReconciling, metav1.ConditionTrue, platformv1alpha1.ReasonMajorUpgradePending,
		"from PostgreSQL 16 to 17 waits", "no backup has completed yet")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)
	if k := kstatusOf(t, stack); k != kstatus.InProgressStatus {
		t.Errorf("kstatus of a stack whose upgrade waits = %s, want InProgress", k)
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "hippo-pg17"}, pgo.NewPGUpgrade()); err == nil {
		t.Fatalf("a PGUpgrade was created before a backup completed")
	}

	// PGO reports its first backup: the upgrade starts.
	pgoReportsBackup(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionClusterReady, metav1.ConditionFalse, platformv1alpha1.ReasonMajorUpgradeRunning,
		"from PostgreSQL 16 to 17 with PGUpgrade hippo-pg17")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionFalse, platformv1alpha1.ReasonMajorUpgradeRunning)
	upgrade := pgo.NewPGUpgrade()
	must(t, k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "hippo-pg17"}, upgrade))
	from, _, _ := unstructured.NestedInt64(upgrade.Object, "spec", "fromPostgresVersion")
	to, _, _ := unstructured.NestedInt64(upgrade.Object, "spec", "toPostgresVersion")
	if cluster, _, _ := unstructured.NestedString(upgrade.Object, "spec", "postgresClusterName"); cluster != "hippo" || from != 16 || to != 17 {
		t.Errorf("PGUpgrade spec = %v, want hippo from 16 to 17", upgrade.Object["spec"])
	}
	if refs := upgrade.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != getStack(t, stack).UID {
		t.Errorf("PGUpgrade owners = %v, want the stack", refs)
	}
	pc := getPostgresCluster(t, ns, "hippo")
	shutdown, _, _ := unstructured.NestedBool(pc.Object, "spec", "shutdown")
	if v, _, _ := unstructured.NestedInt64(pc.Object, "spec", "postgresVersion"); v != 16 || !shutdown || pc.GetAnnotations()[pgo.AnnotationAllowUpgrade] != "hippo-pg17" {
		t.Errorf("PostgresCluster during the upgrade: postgresVersion %d, shutdown %v, allow-upgrade %q; want 16, true, hippo-pg17",
			v, shutdown, pc.GetAnnotations()[pgo.AnnotationAllowUpgrade])
	}
	waitEvent(t, stack, platformv1alpha1.EventMajorUpgradeStarted)

	// Set back once started, the version is held: the upgrade runs to its end.
	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 16 })
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMajorVersionChangeHeld,
		"has started (PGUpgrade hippo-pg17) and runs to its end")
	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 17 })

	// PGO's upgrade controller reports success: the cluster starts on 17.
	pgoReportsUpgrade(t, ns, "hippo-pg17", "True", "PGUpgradeSucceeded")
	waitStartedOn(t, ns, "hippo", 17)
	waitEvent(t, stack, platformv1alpha1.EventMajorUpgradeSucceeded)
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)
	got := getStack(t, stack)
	if up := got.Status.Cluster.MajorUpgrade; up == nil || up.Step != platformv1alpha1.UpgradeSucceeded || up.PGUpgrade != "hippo-pg17" {
		t.Errorf("status.cluster.majorUpgrade = %+v, want hippo-pg17 Succeeded", up)
	}
	if got.Status.Cluster.PostgresVersion != 17 {
		t.Errorf("status.cluster.postgresVersion = %d, want 17", got.Status.Cluster.PostgresVersion)
	}
}

// A failed upgrade with PGO's default --link keeps the cluster shut down
// and stalls; startOldVersionOnFailure starts it again on the old version.
func TestAFailedPGUpgradeKeepsTheClusterDownUntilTold(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 16 }))
	o.installFirst(pkg, csv5_8_9)
	getPostgresCluster(t, ns, "hippo")
	pgoReportsReady(t, ns, "hippo")
	pgoReportsBackup(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)
	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Version = 17 })
	waitEvent(t, stack, platformv1alpha1.EventMajorUpgradeStarted)

	pgoReportsUpgrade(t, ns, "hippo-pg17", "False", "PGUpgradeFailed")
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMajorUpgradeFailed,
		"stays shut down", "startOldVersionOnFailure")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionFalse, platformv1alpha1.ReasonMajorUpgradeFailed)
	if shutdown, _, _ := unstructured.NestedBool(getPostgresCluster(t, ns, "hippo").Object, "spec", "shutdown"); !shutdown {
		t.Errorf("the cluster was started after a failed --link upgrade")
	}

	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Postgres.Upgrade = &platformv1alpha1.MajorUpgrade{StartOldVersionOnFailure: true}
	})
	waitStartedOn(t, ns, "hippo", 16)
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonMajorUpgradeFailed, "runs PostgreSQL 16 again")
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

// waitStartedOn waits for the PostgresCluster to be applied at version,
// without the shutdown and the allow-upgrade annotation an upgrade sets.
func waitStartedOn(t *testing.T, ns, name string, version int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("PostgresCluster %s/%s started on %d, without the upgrade's annotation", ns, name, version), func() (bool, error) {
		pc := getPostgresCluster(t, ns, name)
		v, _, _ := unstructured.NestedInt64(pc.Object, "spec", "postgresVersion")
		_, stopped, _ := unstructured.NestedBool(pc.Object, "spec", "shutdown")
		_, annotated := pc.GetAnnotations()[pgo.AnnotationAllowUpgrade]
		return v == version && !stopped && !annotated, nil
	})
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
