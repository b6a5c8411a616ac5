package status

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/policy"
	"github.com/pgstack/pgstack/test/expect"
)

var installed = Operator{Subscription: "postgresql", InstalledCSV: "postgresoperator.v5.8.9", CurrentCSV: "postgresoperator.v5.8.9", CSVPhase: "Succeeded"}

var readyCluster = Cluster{Name: "hippo", Exists: true, Readiness: pgo.Readiness{Ready: true, Reason: pgo.ReasonReady, Message: "1 of 1 PostgreSQL instances ready", ReadyInstances: 1, Instances: 1}}

func TestCompute(t *testing.T) {
	tests := []struct {
		name string
		obs  Observations
		// want: Ready, Reconciling, Stalled statuses, Ready's reason, and kstatus' verdict.
		wantReady, wantReconciling, wantStalled metav1.ConditionStatus
		wantReason                              string
		wantKstatus                             kstatus.Status
		wantInMessage                           string
		// wantStalledReason, when set, is Stalled's reason.
		wantStalledReason string
	}{
		{
			name: "everything ready", obs: Observations{Operator: installed, Cluster: readyCluster},
			wantReady: "True", wantReconciling: "False", wantStalled: "False", wantReason: platformv1alpha1.ReasonReady, wantKstatus: kstatus.CurrentStatus, wantInMessage: "5.8.9",
		},
		{
			name: "OLM missing stalls", obs: Observations{Operator: Operator{Problem: &Problem{Reason: platformv1alpha1.ReasonOLMNotInstalled, Message: "OLM is not installed"}}, Cluster: Cluster{Name: "hippo"}},
			wantReady: "False", wantReconciling: "False", wantStalled: "True", wantReason: platformv1alpha1.ReasonOLMNotInstalled, wantKstatus: kstatus.FailedStatus, wantInMessage: "OLM is not installed",
		},
		{
			name: "waiting for OLM to resolve", obs: Observations{Operator: Operator{Subscription: "postgresql"}, Cluster: Cluster{Name: "hippo"}},
			wantReady: "False", wantReconciling: "True", wantStalled: "False", wantReason: platformv1alpha1.ReasonAwaitingInstallPlan, wantKstatus: kstatus.InProgressStatus,
		},
		{
			name: "first install waits for a person", obs: Observations{Operator: Operator{Subscription: "postgresql", CurrentCSV: "postgresoperator.v5.8.9", Plan: "install-1", PlanPhase: "RequiresApproval",
				Decision: &policy.Decision{Verdict: policy.Wait, Reason: policy.ReasonManualApprovalRequired, Message: "version 5.8.9 waits for a person to approve install plan install-1", Version: "5.8.9"}}, Cluster: Cluster{Name: "hippo"}},
			wantReady: "False", wantReconciling: "False", wantStalled: "True", wantReason: policy.ReasonManualApprovalRequired, wantKstatus: kstatus.FailedStatus, wantInMessage: "install-1",
		},
		{
			name: "resolution failed stalls", obs: Observations{Operator: Operator{Subscription: "postgresql", ResolutionFailed: "no operators found in package nope"}, Cluster: Cluster{Name: "hippo"}},
			wantReady: "False", wantStalled: "True", wantReconciling: "False", wantReason: platformv1alpha1.ReasonResolutionFailed, wantKstatus: kstatus.FailedStatus, wantInMessage: "nope",
		},
		{
			name: "missing CatalogSource stalls", obs: Observations{Operator: Operator{Subscription: "postgresql", CatalogMissing: "olm/nope"}, Cluster: Cluster{Name: "hippo"}},
			wantReady: "False", wantStalled: "True", wantReconciling: "False", wantReason: platformv1alpha1.ReasonCatalogNotFound, wantKstatus: kstatus.FailedStatus, wantInMessage: "olm/nope",
		},
		{
			name: "catalog not serving yet: in progress", obs: Observations{Operator: Operator{Subscription: "postgresql", CatalogUnhealthy: "CatalogSource olm/operatorhubio-catalog is TRANSIENT_FAILURE"}, Cluster: Cluster{Name: "hippo"}},
			wantReady: "False", wantStalled: "False", wantReconciling: "True", wantReason: platformv1alpha1.ReasonCatalogUnhealthy, wantKstatus: kstatus.InProgressStatus, wantInMessage: "TRANSIENT_FAILURE",
		},
		{
			name: "a dead catalog does not touch an installed operator", obs: Observations{Operator: func() Operator {
				o := installed
				o.CatalogUnhealthy = "CatalogSource olm/operatorhubio-catalog is TRANSIENT_FAILURE"
				return o
			}(), Cluster: readyCluster},
			wantReady: "True", wantStalled: "False", wantReconciling: "False", wantReason: platformv1alpha1.ReasonReady, wantKstatus: kstatus.CurrentStatus,
		},
		{
			name: "CSV installing", obs: Observations{Operator: Operator{InstalledCSV: "postgresoperator.v5.8.9", CSVPhase: "Installing", CSVMessage: "waiting for deployment"}, Cluster: Cluster{Name: "hippo"}},
			wantReady: "False", wantReconciling: "True", wantStalled: "False", wantReason: platformv1alpha1.ReasonInstalling, wantKstatus: kstatus.InProgressStatus,
		},
		{
			name: "CSV failed carries OLM's reason", obs: Observations{Operator: Operator{InstalledCSV: "postgresoperator.v5.8.9", CSVPhase: "Failed", CSVReason: "InstallCheckFailed", CSVMessage: "install timeout"}, Cluster: Cluster{Name: "hippo"}},
			wantReady: "False", wantReconciling: "False", wantStalled: "True", wantReason: platformv1alpha1.ReasonCSVFailed, wantKstatus: kstatus.FailedStatus, wantInMessage: "InstallCheckFailed: install timeout",
		},
		{
			name: "operator ready, cluster being created", obs: Observations{Operator: installed, Cluster: Cluster{Name: "hippo"}},
			wantReady: "False", wantReconciling: "True", wantStalled: "False", wantReason: pgo.ReasonNotObserved, wantKstatus: kstatus.InProgressStatus,
		},
		{
			name: "instances not ready", obs: Observations{Operator: installed, Cluster: Cluster{Name: "hippo", Exists: true, Readiness: pgo.Readiness{Reason: pgo.ReasonInstancesNotReady, Message: "instance set instance1 has 0 of 1 replicas ready"}}},
			wantReady: "False", wantReconciling: "True", wantStalled: "False", wantReason: pgo.ReasonInstancesNotReady, wantKstatus: kstatus.InProgressStatus, wantInMessage: "0 of 1",
		},
		{
			name: "PGO refuses the spec: the stack stalls with PGO's reason", obs: Observations{Operator: installed, Cluster: Cluster{Name: "hippo", Exists: true, Readiness: pgo.Readiness{Stalled: true, Reason: platformv1alpha1.ReasonMissingRequiredImage, Message: "PGO refuses generation 2 of the PostgresCluster: missing image(s): [crunchy-postgres]"}}},
			wantReady: "False", wantReconciling: "False", wantStalled: "True", wantReason: platformv1alpha1.ReasonMissingRequiredImage, wantKstatus: kstatus.FailedStatus, wantInMessage: "crunchy-postgres",
		},
		{
			name: "shut down is Ready", obs: Observations{Operator: installed, Cluster: Cluster{Name: "hippo", Exists: true, Readiness: pgo.Readiness{Ready: true, Reason: pgo.ReasonShutDown, Message: "the PostgresCluster is shut down (spec.shutdown): PGO has stopped all 2 PostgreSQL instances"}}},
			wantReady: "True", wantReconciling: "False", wantStalled: "False", wantReason: platformv1alpha1.ReasonReady, wantKstatus: kstatus.CurrentStatus, wantInMessage: "shut down",
		},
		{
			name: "a restore in progress is progress", obs: Observations{Operator: installed, Cluster: Cluster{Name: "hippo", Exists: true, Readiness: pgo.Readiness{Reason: pgo.ReasonRestoring, Message: "PGO is restoring"}}},
			wantReady: "False", wantReconciling: "True", wantStalled: "False", wantReason: pgo.ReasonRestoring, wantKstatus: kstatus.InProgressStatus,
		},
		{
			name: "no image for the version stalls before anything is applied", obs: Observations{Operator: installed, Cluster: Cluster{Name: "hippo", Problem: &Problem{Reason: platformv1alpha1.ReasonNoImageForVersion, Message: "PGO 5.8.9 ships PostgreSQL images for 15, 16, 17, 18; set spec.postgres.image for 14"}}},
			wantReady: "False", wantReconciling: "False", wantStalled: "True", wantReason: platformv1alpha1.ReasonNoImageForVersion, wantKstatus: kstatus.FailedStatus, wantInMessage: "for 14",
		},
		{
			name: "a spec that cannot render stalls", obs: Observations{Operator: installed, Cluster: Cluster{Name: "hippo", Problem: &Problem{Reason: platformv1alpha1.ReasonInvalidSpec, Message: "overrides: not an object"}}},
			wantReady: "False", wantReconciling: "False", wantStalled: "True", wantReason: platformv1alpha1.ReasonInvalidSpec, wantKstatus: kstatus.FailedStatus,
		},
		{
			name: "upgrade outside the range: still Ready, UpgradeApproved says why", obs: Observations{Operator: func() Operator {
				o := installed
				o.CurrentCSV, o.Plan, o.PlanPhase = "postgresoperator.v5.9.0", "install-2", "RequiresApproval"
				o.Decision = &policy.Decision{Verdict: policy.Refuse, Reason: policy.ReasonOutsideVersionRange, Message: "version 5.9.0 is outside", Version: "5.9.0"}
				return o
			}(), Cluster: readyCluster},
			wantReady: "True", wantReconciling: "False", wantStalled: "False", wantReason: platformv1alpha1.ReasonReady, wantKstatus: kstatus.CurrentStatus,
		},
		{
			name: "a held major version change stalls a running stack that stays Ready", obs: Observations{Operator: installed, Cluster: held(readyCluster)},
			wantReady: "True", wantReconciling: "False", wantStalled: "True", wantReason: platformv1alpha1.ReasonReady, wantKstatus: kstatus.FailedStatus,
			wantStalledReason: platformv1alpha1.ReasonMajorVersionChangeHeld,
		},
		{
			name: "a held change beside instances not ready: Ready says why not, Stalled says what to do", obs: Observations{Operator: installed,
				Cluster: held(Cluster{Name: "hippo", Exists: true, Readiness: pgo.Readiness{Reason: pgo.ReasonInstancesNotReady, Message: "instance set instance1 has 0 of 1 replicas ready"}})},
			wantReady: "False", wantReconciling: "False", wantStalled: "True", wantReason: pgo.ReasonInstancesNotReady, wantKstatus: kstatus.FailedStatus, wantInMessage: "0 of 1",
			wantStalledReason: platformv1alpha1.ReasonMajorVersionChangeHeld,
		},
		{
			name: "PGO's refusal is told before a held change", obs: Observations{Operator: installed,
				Cluster: held(Cluster{Name: "hippo", Exists: true, Readiness: pgo.Readiness{Stalled: true, Reason: platformv1alpha1.ReasonMissingRequiredImage, Message: "missing image(s): [crunchy-pgbackrest]"}})},
			wantReady: "False", wantReconciling: "False", wantStalled: "True", wantReason: platformv1alpha1.ReasonMissingRequiredImage, wantKstatus: kstatus.FailedStatus,
			wantStalledReason: platformv1alpha1.ReasonMissingRequiredImage,
		},
		{
			name: "deleting", obs: Observations{Deleting: true, Operator: installed, Cluster: readyCluster},
			wantReady: "False", wantReconciling: "True", wantStalled: "False", wantReason: platformv1alpha1.ReasonDeleting, wantKstatus: kstatus.InProgressStatus,
		},
	}
	now := metav1.NewTime(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.obs.Generation = 3
			got := Compute(platformv1alpha1.PostgresStackStatus{}, tt.obs, now)
			for condType, want := range map[string]metav1.ConditionStatus{
				platformv1alpha1.ConditionReady: tt.wantReady, platformv1alpha1.ConditionReconciling: tt.wantReconciling, platformv1alpha1.ConditionStalled: tt.wantStalled,
			} {
				c := meta.FindStatusCondition(got.Conditions, condType)
				if c == nil || c.Status != want || c.ObservedGeneration != 3 {
					t.Errorf("%s = %+v, want status %s at generation 3", condType, c, want)
				}
			}
			ready := meta.FindStatusCondition(got.Conditions, platformv1alpha1.ConditionReady)
			if ready.Reason != tt.wantReason {
				t.Errorf("Ready reason = %s (%s), want %s", ready.Reason, ready.Message, tt.wantReason)
			}
			if !strings.Contains(ready.Message, tt.wantInMessage) {
				t.Errorf("Ready message %q does not mention %q", ready.Message, tt.wantInMessage)
			}
			if stalled := meta.FindStatusCondition(got.Conditions, platformv1alpha1.ConditionStalled); tt.wantStalledReason != "" && stalled.Reason != tt.wantStalledReason {
				t.Errorf("Stalled reason = %s (%s), want %s", stalled.Reason, stalled.Message, tt.wantStalledReason)
			}
			if got.ObservedGeneration != 3 {
				t.Errorf("observedGeneration = %d, want 3", got.ObservedGeneration)
			}
			if k := kstatusOf(t, got); k != tt.wantKstatus {
				t.Errorf("kstatus = %s, want %s", k, tt.wantKstatus)
			}
		})
	}
}

func TestComputeUpgradeWaitingSurfacesPendingVersion(t *testing.T) {
	o := installed
	o.CurrentCSV, o.Plan, o.PlanPhase = "postgresoperator.v5.9.0", "install-2", "RequiresApproval"
	o.Decision = &policy.Decision{Verdict: policy.Wait, Reason: policy.ReasonManualApprovalRequired, Message: "version 5.9.0 waits for a person", Version: "5.9.0"}
	got := Compute(platformv1alpha1.PostgresStackStatus{}, Observations{Generation: 1, Operator: o, Cluster: readyCluster}, metav1.Now())
	if got.Operator.PendingVersion != "5.9.0" || got.Operator.Version != "5.8.9" {
		t.Errorf("operator status = %+v, want version 5.8.9 and pending 5.9.0", got.Operator)
	}
	c := meta.FindStatusCondition(got.Conditions, platformv1alpha1.ConditionUpgradeApproved)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != policy.ReasonManualApprovalRequired {
		t.Errorf("UpgradeApproved = %+v, want False/ManualApprovalRequired", c)
	}
}

func TestComputeKeepsTransitionTimeWhileStatusHolds(t *testing.T) {
	first := metav1.NewTime(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	later := metav1.NewTime(first.Add(time.Hour))
	obs := Observations{Generation: 1, Operator: installed, Cluster: readyCluster}
	s1 := Compute(platformv1alpha1.PostgresStackStatus{}, obs, first)
	s2 := Compute(s1, obs, later)
	if c := meta.FindStatusCondition(s2.Conditions, platformv1alpha1.ConditionReady); !c.LastTransitionTime.Equal(&first) {
		t.Errorf("Ready's lastTransitionTime moved to %s while it stayed True", c.LastTransitionTime)
	}
}

// held is c with a major version change held back.
func held(c Cluster) Cluster {
	c.Held = &Problem{Reason: platformv1alpha1.ReasonMajorVersionChangeHeld, Message: "PostgreSQL 16 runs in PostgresCluster hippo; moving to 17 needs PGO's major upgrade (PGUpgrade), which pgstack does not run yet: set spec.postgres.version back to 16"}
	return c
}

// kstatusOf is the status Flux's kstatus library gives a stack with status s.
func kstatusOf(t *testing.T, s platformv1alpha1.PostgresStackStatus) kstatus.Status {
	t.Helper()
	stack := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Name: "hippo", Namespace: "a", Generation: 3}, Status: s}
	stack.SetGroupVersionKind(platformv1alpha1.GroupVersion.WithKind("PostgresStack"))
	return expect.KstatusOf(t, stack)
}
