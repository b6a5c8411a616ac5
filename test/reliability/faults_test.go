package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/controllers"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/test/ledger"
)

// maxFaultDelay bounds the random point at which a fault strikes after a
// step starts.
const maxFaultDelay = 1500 * time.Millisecond

// faultAtRandomPoint runs fault after a random delay, alongside the step the
// caller is starting; the channel reports its error.
func faultAtRandomPoint(t *testing.T, what string, fault func() error) <-chan error {
	done := make(chan error, 1)
	delay := random.delay(maxFaultDelay)
	go func() {
		time.Sleep(delay) // the fault schedule, not an assertion
		begin := time.Now()
		err := fault()
		t.Logf("%s at +%s (took %s)", what, delay.Round(time.Millisecond), time.Since(begin).Round(100*time.Millisecond))
		done <- err
	}()
	return done
}

func restartAPIServer(t *testing.T) <-chan error {
	return faultAtRandomPoint(t, "kube-apiserver restarted", func() error {
		counts.add(&counts.apiServerRestarts, 1)
		return lc.RestartAPIServer(context.Background())
	})
}

func restartOLM(t *testing.T, operator string) <-chan error {
	return faultAtRandomPoint(t, "OLM's "+operator+" operator restarted", func() error {
		counts.add(&counts.olmRestarts, 1)
		return lc.RestartProcess(context.Background(), operator)
	})
}

// TestAPIServerAndOLMRestartsMidFlow restarts kube-apiserver during an
// install and during a deletion, and OLM's catalog and olm operators during
// an upgrade. The manager rides them out without restarting, and every flow
// finishes.
func TestAPIServerAndOLMRestartsMidFlow(t *testing.T) {
	t.Cleanup(func() { logCounts(t) })
	startsBefore := manager.Starts()
	ledgerFrom := len(approvals.Approvals())

	delta := newStack(t, "faults-delta", "delta", nil)
	echo := newStack(t, "faults-echo", "echo", func(s *platformv1alpha1.PostgresStack) {
		s.Spec.DeletionPolicy = platformv1alpha1.DeletionDelete
	})
	t.Run("kube-apiserver restarts during an install", func(t *testing.T) {
		must(t, <-restartAPIServer(t))
		waits.Condition(t, delta, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		waits.Condition(t, echo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	})
	installed := getStack(t, delta).Status.Operator.Version

	t.Run("OLM's catalog and olm operators restart during an upgrade", func(t *testing.T) {
		next := nextPatch(t, installed)
		catalogRestarted := restartOLM(t, "catalog")
		must(t, lc.PublishVersion(context.Background(), pgoPackage, next))
		must(t, <-catalogRestarted)
		must(t, <-restartOLM(t, "olm"))
		waits.Condition(t, delta, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO "+next)
		waits.Condition(t, echo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO "+next)
	})

	t.Run("kube-apiserver restarts during a deletion", func(t *testing.T) {
		restarted := restartAPIServer(t)
		deleteStack(t, echo)
		must(t, <-restarted)
		waits.StackGone(t, echo)
		waits.Eventually(t, "echo's PostgresCluster deleted (deletionPolicy Delete)", func() (bool, error) {
			return postgresCluster(t, echo) == nil, nil
		})
	})

	if err := manager.Exited(); err != nil || manager.Starts() != startsBefore {
		t.Fatalf("the manager crashed or restarted during the API server and OLM restarts: %v", err)
	}
	// No range and Automatic: pgstack may approve anything; nobody else may approve.
	if bad := approvalsOutside(ledgerFrom, func(a ledger.Approval) bool { return a.Manager == pgstackApprover }); len(bad) > 0 {
		t.Fatalf("InstallPlans approved by someone other than pgstack: %+v", bad)
	}
	guard.check(t)
}

// TestConflictingWritersDoNotWin: while the manager runs, someone flips the
// shared Subscription back to Automatic approval and drops pgstack's label
// (adding one of their own), and someone edits the PostgresCluster: a field
// pgstack owns (the instance set's replicas) and fields it does not (port, a
// label). pgstack restores what it owns and keeps the rest. (postgresVersion
// is not drifted here: a version set on the PostgresCluster is what runs,
// and pgstack holds the stack's instead of overwriting it.)
func TestConflictingWritersDoNotWin(t *testing.T) {
	t.Cleanup(func() { logCounts(t) })
	ctx := context.Background()
	ledgerFrom := len(approvals.Approvals())
	foxtrot := newStack(t, "writers-foxtrot", "foxtrot", nil)
	waits.Condition(t, foxtrot, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	const rounds = 3
	for round := 0; round < rounds; round++ {
		sub := oneSubscription(t)
		patch := client.MergeFrom(sub.DeepCopy())
		sub.Spec.InstallPlanApproval = operatorsv1alpha1.ApprovalAutomatic
		delete(sub.Labels, controllers.ManagedLabel)
		sub.Labels["team"] = "dba"
		must(t, k8s.Patch(ctx, &sub, patch, client.FieldOwner(someoneElse)))
		counts.add(&counts.conflictingWrites, 1)

		pc := postgresCluster(t, foxtrot)
		if pc == nil {
			t.Fatal("foxtrot has no PostgresCluster")
		}
		sets, _, _ := unstructured.NestedSlice(pc.Object, "spec", "instances")
		owned, _, _ := unstructured.NestedInt64(sets[0].(map[string]any), "replicas")
		// One element of the list, as a JSON patch: a merge patch would
		// replace the whole list.
		drift := fmt.Sprintf(`[{"op":"replace","path":"/spec/instances/0/replicas","value":%d}]`, owned+1)
		must(t, k8s.Patch(ctx, pc.DeepCopy(), client.RawPatch(types.JSONPatchType, []byte(drift)), client.FieldOwner(someoneElse)))
		edit := pgo.NewPostgresCluster()
		edit.SetNamespace(pc.GetNamespace())
		edit.SetName(pc.GetName())
		edit.SetLabels(map[string]string{"team": "dba"})
		must(t, unstructured.SetNestedField(edit.Object, int64(5433+round), "spec", "port"))
		must(t, k8s.Patch(ctx, edit, client.Merge, client.FieldOwner(someoneElse)))
		counts.add(&counts.conflictingWrites, 1)

		waits.Eventually(t, "pgstack restores the Subscription's Manual approval and its label, keeping team=dba", func() (bool, error) {
			got := &operatorsv1alpha1.Subscription{}
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(&sub), got); err != nil {
				return false, err
			}
			return got.Spec.InstallPlanApproval == operatorsv1alpha1.ApprovalManual &&
				got.Labels[controllers.ManagedLabel] == controllers.ManagedValue && got.Labels["team"] == "dba", nil
		})
		waits.Eventually(t, "pgstack restores the instance set's replicas, keeping port and team=dba", func() (bool, error) {
			got := pgo.NewPostgresCluster()
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(pc), got); err != nil {
				return false, err
			}
			sets, _, _ := unstructured.NestedSlice(got.Object, "spec", "instances")
			replicas, _, _ := unstructured.NestedInt64(sets[0].(map[string]any), "replicas")
			port, _, _ := unstructured.NestedInt64(got.Object, "spec", "port")
			if replicas == owned && (port != int64(5433+round) || got.GetLabels()["team"] != "dba") {
				t.Fatalf("pgstack restored the replicas but dropped someone else's fields: port=%d labels=%v", port, got.GetLabels())
			}
			return replicas == owned, nil
		})
	}
	waits.Condition(t, foxtrot, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	if bad := approvalsOutside(ledgerFrom, func(ledger.Approval) bool { return false }); len(bad) > 0 {
		t.Fatalf("an InstallPlan was approved while someone flipped the Subscription to Automatic: %+v", bad)
	}
	guard.check(t)
}

func getStack(t *testing.T, s *platformv1alpha1.PostgresStack) *platformv1alpha1.PostgresStack {
	t.Helper()
	got := &platformv1alpha1.PostgresStack{}
	waits.Eventually(t, "read stack "+s.Name, func() (bool, error) {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(s), got)
		return err == nil, client.IgnoreNotFound(err)
	})
	return got
}

// nextPatch is the version after the installed one, for a catalog update.
func nextPatch(t *testing.T, installed string) string {
	t.Helper()
	var major, minor, patch int
	if _, err := fmt.Sscanf(installed, "%d.%d.%d", &major, &minor, &patch); err != nil {
		t.Fatalf("installed version %q: %v", installed, err)
	}
	return fmt.Sprintf("%d.%d.%d", major, minor, patch+1)
}
