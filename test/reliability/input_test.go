package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// TestClusterLevelBadInputsStallClearlyWithoutHotLoops: stacks the API
// server admits but the cluster cannot serve (a package no catalog has, a
// catalog that does not exist, two OperatorGroups, a conflicting channel)
// each end with a clear condition; the manager neither crashes nor spins on
// them: once they have settled, a quiet window adds only a few reconciles.
//
// Each bad input that could install anything uses an install namespace of
// its own, so the shared operators install stays healthy.
func TestClusterLevelBadInputsStallClearlyWithoutHotLoops(t *testing.T) {
	t.Cleanup(func() { logCounts(t) })
	ctx := context.Background()
	startsBefore, pidBefore := manager.Starts(), manager.PID()

	// The stack the conflicting one conflicts with: the shared Subscription
	// follows its channel.
	anchor := newStack(t, "bad-anchor", "anchor", nil)
	waits.Condition(t, anchor, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")

	must(t, lc.CreateNamespace(ctx, "bad-two-groups-op"))
	for _, name := range []string{"first", "second"} {
		must(t, k8s.Create(ctx, &operatorsv1.OperatorGroup{ObjectMeta: metav1.ObjectMeta{Namespace: "bad-two-groups-op", Name: name}}))
	}
	type badInput struct {
		stack            *platformv1alpha1.PostgresStack
		stalled          bool
		reasons, mention []string
	}
	bad := []badInput{
		{
			stack: newStack(t, "bad-unknown", "unknown-package", func(s *platformv1alpha1.PostgresStack) {
				s.Spec.Operator.Package, s.Spec.Operator.Namespace = "no-such-operator", "bad-unknown-op"
			}),
			stalled: true, reasons: []string{platformv1alpha1.ReasonResolutionFailed}, mention: []string{"no-such-operator"},
		},
		{
			stack: newStack(t, "bad-catalog", "missing-catalog", func(s *platformv1alpha1.PostgresStack) {
				s.Spec.Operator.Source, s.Spec.Operator.Namespace = "no-such-catalog", "bad-catalog-op"
			}),
			// OLM reports both ResolutionFailed and CatalogSourcesUnhealthy
			// ("targeted catalogsource olm/no-such-catalog missing"); either,
			// or pgstack's own finding that the CatalogSource does not exist, is clear.
			reasons: []string{platformv1alpha1.ReasonResolutionFailed, platformv1alpha1.ReasonCatalogUnhealthy, "CatalogSourceNotFound"}, mention: []string{"no-such-catalog"},
		},
		{
			stack: newStack(t, "bad-groups", "two-groups", func(s *platformv1alpha1.PostgresStack) {
				s.Spec.Operator.Namespace = "bad-two-groups-op"
			}),
			stalled: true, reasons: []string{platformv1alpha1.ReasonOperatorGroupConflict}, mention: []string{"first", "second"},
		},
		{
			stack: newStack(t, "bad-conflict", "lion", func(s *platformv1alpha1.PostgresStack) {
				s.Spec.Operator.Channel = "v6"
			}),
			stalled: true, reasons: []string{platformv1alpha1.ReasonSubscriptionConflict}, mention: []string{"bad-anchor/anchor", `"v6"`},
		},
	}
	for _, b := range bad {
		counts.add(&counts.clusterBadInputs, 1)
		var last *metav1.Condition
		waits.Eventually(t, fmt.Sprintf("%s/%s Ready=False with reason in %v mentioning %q", b.stack.Namespace, b.stack.Name, b.reasons, b.mention), func() (bool, error) {
			got := &platformv1alpha1.PostgresStack{}
			if err := k8s.Get(ctx, clientKey(b.stack), got); err != nil {
				return false, err
			}
			ready := meta.FindStatusCondition(got.Status.Conditions, platformv1alpha1.ConditionReady)
			last = ready
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.ObservedGeneration != got.Generation || !oneOf(ready.Reason, b.reasons) {
				return false, nil
			}
			for _, m := range b.mention {
				if !strings.Contains(ready.Message, m) {
					return false, nil
				}
			}
			stalled := meta.FindStatusCondition(got.Status.Conditions, platformv1alpha1.ConditionStalled)
			return !b.stalled || (stalled != nil && stalled.Status == metav1.ConditionTrue && stalled.Reason == ready.Reason), nil
		})
		t.Logf("%s/%s: Ready=False %s: %s", b.stack.Namespace, b.stack.Name, last.Reason, last.Message)
	}
	if subs := oneSubscription(t); subs.Spec.Channel != "v5" {
		t.Fatalf("the conflicting stack changed the shared Subscription: channel %s", subs.Spec.Channel)
	}

	// Settled: the conditions above are written. Now nothing changes, so
	// reconciles must nearly stop.
	var stacks platformv1alpha1.PostgresStackList
	must(t, k8s.List(ctx, &stacks))
	before, err := manager.ReconcileTotal(ctx)
	must(t, err)
	const quiet = 10 * time.Second
	window := time.NewTimer(quiet) // the measurement window, not a wait for a state
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	for waiting := true; waiting; {
		select {
		case <-window.C:
			waiting = false
		case <-ticker.C:
			if err := manager.Exited(); err != nil {
				t.Fatal(err)
			}
		}
	}
	after, err := manager.ReconcileTotal(ctx)
	must(t, err)
	// OLM still writes the stalled Subscriptions' status now and then (it
	// retries resolution with backoff), and each write wakes the stacks of
	// that namespace once; a hot loop would be hundreds.
	limit := 3 * float64(len(stacks.Items))
	t.Logf("quiet window of %s: %.0f reconciles of %d stacks (limit %.0f)", quiet, after-before, len(stacks.Items), limit)
	if after-before > limit {
		t.Errorf("the manager hot-loops: %.0f reconciles in %s with %d stacks settled (limit %.0f)\n%s", after-before, quiet, len(stacks.Items), limit, lc.LogTail("pgstack-manager", 20))
	}
	if err := manager.Exited(); err != nil || manager.Starts() != startsBefore || manager.PID() != pidBefore {
		t.Fatalf("the manager crashed or restarted during bad input (pid %d -> %d): %v", pidBefore, manager.PID(), err)
	}
	// Releasing them is no error either: a reconcile from a cache that still
	// holds a released stack once counted one.
	deleteErrorsBefore, err := manager.Sum(ctx, "pgstack_reconcile_errors_total", map[string]string{"phase": "delete"})
	must(t, err)
	for _, b := range bad {
		deleteStack(t, b.stack)
	}
	for _, b := range bad {
		waits.StackGone(t, b.stack)
	}
	waits.Eventually(t, "the manager's queue drained of the released stacks", func() (bool, error) {
		depth, err := manager.Sum(ctx, "workqueue_depth", map[string]string{"name": "postgresstack"})
		return depth == 0, err
	})
	deleteErrors, err := manager.Sum(ctx, "pgstack_reconcile_errors_total", map[string]string{"phase": "delete"})
	must(t, err)
	if deleteErrors != deleteErrorsBefore {
		t.Errorf("releasing %d stalled stacks counted %.0f delete-phase reconcile errors\n%s", len(bad), deleteErrors-deleteErrorsBefore, lc.LogTail("pgstack-manager", 10))
	}
	guard.check(t)
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}
