package status

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
)

func TestPacing(t *testing.T) {
	cluster := func(reason, message string, ready int32) Cluster {
		return Cluster{Name: "hippo", Exists: true, Readiness: pgo.Readiness{Reason: reason, Message: message, ReadyInstances: ready, Instances: 2}}
	}
	starting := Observations{Generation: 1, Operator: installed, Cluster: cluster(pgo.ReasonInstancesNotReady, "instance set instance1 has 0 of 2 replicas ready (0 updated)", 0)}
	oneUp := Observations{Generation: 1, Operator: installed, Cluster: cluster(pgo.ReasonInstancesNotReady, "instance set instance1 has 1 of 2 replicas ready (2 updated)", 1)}
	stanza := Observations{Generation: 1, Operator: installed, Cluster: cluster(pgo.ReasonBackupsNotReady, "pgBackRest is not ready: PGBackRestReplicaRepoReady is False", 2)}
	ready := Observations{Generation: 1, Operator: installed, Cluster: readyCluster}
	awaiting := Observations{Generation: 1, Operator: installed, Cluster: cluster(pgo.ReasonNotObserved, "PGO has not observed generation 1 yet", 0)}
	newGeneration := stanza
	newGeneration.Generation = 2
	failed := stanza
	failed.Cluster.Readiness.Stalled, failed.Cluster.Readiness.Reason = true, platformv1alpha1.ReasonMissingRequiredImage
	withRepo := func(o Observations, ready bool) Observations {
		o.Cluster.Backups = &platformv1alpha1.BackupsStatus{Repos: []platformv1alpha1.RepoBackupStatus{{Name: "repo1", Ready: ready}}}
		o.Cluster.BackupsHealth = &pgo.BackupsHealth{Healthy: true, Reason: platformv1alpha1.ReasonBackupsSucceeding, Message: "no backup has a completion time yet"}
		return o
	}
	backedUp := withRepo(stanza, true)
	backedUp.Cluster.Backups.LastSuccessful = &metav1.Time{Time: time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)}
	// OLM replacing the installed PGO: the stack is Ready=False while the
	// new CSV installs, and OLM moves it through its phases.
	replacing := func(phase string) Observations {
		o := ready
		o.Operator.CurrentCSV, o.Operator.Plan, o.Operator.CSVPhase = "postgresoperator.v5.8.10", "install-next", phase
		if phase != "Succeeded" {
			o.Operator.InstalledCSV = "postgresoperator.v5.8.10"
		}
		return o
	}
	newPlan := replacing("Pending")
	newPlan.Operator.Plan = "install-again"
	// A first install's plan replaced while PGO also moves a cluster on.
	planBefore, planAndSteps := starting, oneUp
	planBefore.Operator, planAndSteps.Operator = replacing("Pending").Operator, newPlan.Operator
	deleting := func(waitsFor string) Observations {
		o := ready
		o.Deleting, o.DeletionWaitsFor = true, waitsFor
		return o
	}
	withUpgrade := stanza
	withUpgrade.Cluster.MajorUpgrade = &platformv1alpha1.MajorUpgradeStatus{PGUpgrade: "hippo-pg17", FromVersion: 16, ToVersion: 17, Step: platformv1alpha1.UpgradeRunning}

	tests := []struct {
		name          string
		current, next Observations
		want          Pace
	}{
		{"replicas coming up one by one", starting, oneUp, HoldClusterProgress},
		{"instances ready, PGO creating the stanza", oneUp, stanza, HoldClusterProgress},
		{"PGO first observing a created cluster", awaiting, starting, HoldClusterProgress},
		{"the stack turns Ready", stanza, ready, WriteNow},
		{"PGO refuses the cluster: Stalled", stanza, failed, WriteNow},
		{"a new generation observed", stanza, newGeneration, WriteNow},
		{"an upgrade step reported", stanza, withUpgrade, WriteNow},
		{"nothing changed at all", stanza, stanza, HoldClusterProgress},
		{"PGO creates the stanza: the repository turns ready", withRepo(stanza, false), withRepo(oneUp, true), HoldClusterProgress},
		{"a backup completes", withRepo(stanza, true), backedUp, WriteNow},
		{"a Ready stack losing an instance is told at once", ready, oneUp, WriteNow},
		{"OLM starts replacing PGO: Ready turns False at once", ready, replacing("Pending"), WriteNow},
		{"OLM's CSV moves from phase to phase", replacing("Pending"), replacing("InstallReady"), PaceProgress},
		{"OLM names another plan while the install waits", replacing("Pending"), newPlan, PaceProgress},
		{"OLM's plan and PGO's steps move together", planBefore, planAndSteps, PaceProgress},
		{"the new CSV installing", replacing("InstallReady"), replacing("Installing"), PaceProgress},
		{"the new CSV Succeeded: Ready again at once", replacing("Installing"), replacing("Succeeded"), WriteNow},
		{"what deletion waits on moves", deleting("OLM to remove Subscription postgresql, CSV postgresoperator.v5.8.9"),
			deleting("OLM to remove CSV postgresoperator.v5.8.9"), WriteNow},
	}
	now := metav1.NewTime(time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var initial platformv1alpha1.PostgresStackStatus
			current := Compute(initial, tt.current, now)
			next := Compute(current, tt.next, metav1.NewTime(now.Add(time.Second)))
			if got := Pacing(current, next); got != tt.want {
				t.Errorf("Pacing = %v, want %v\ncurrent: %+v\nnext:    %+v", got, tt.want, current.Conditions, next.Conditions)
			}
		})
	}
}
