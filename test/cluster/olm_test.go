package cluster_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pgstack/pgstack/test/cluster"
)

// TestTwoSubscriptionsInOneNamespaceShareOneInstallPlan: OLM resolves per
// namespace, so two Subscriptions waiting for approval end up in one plan
// carrying both CSVs, which both Subscriptions reference. Approving it
// installs both: what a policy must judge as a whole. OLM resolves a
// namespace only once it has exactly one OperatorGroup, so creating the
// group last makes both Subscriptions resolve together.
func TestTwoSubscriptionsInOneNamespaceShareOneInstallPlan(t *testing.T) {
	ns := namespace(t, "two-subscriptions")
	subscribe(t, ns, "widgets", widgets.Name, widgets.Channel, operatorsv1alpha1.ApprovalManual)
	subscribe(t, ns, "gadgets", gadgets.Name, gadgets.Channel, operatorsv1alpha1.ApprovalManual)
	operatorGroup(t, ns, "own", ns)

	want := []string{gadgets.Head(), widgets.Head()}
	var shared string
	eventually(t, 90*time.Second, "one InstallPlan carrying both CSVs, referenced by both Subscriptions", func(ctx context.Context) (bool, string, error) {
		refs := map[string]string{}
		for _, name := range []string{"widgets", "gadgets"} {
			s := &operatorsv1alpha1.Subscription{}
			if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
				return false, "", err
			}
			if s.Status.InstallPlanRef == nil {
				return false, name + " has no plan yet", nil
			}
			refs[name] = s.Status.InstallPlanRef.Name
		}
		if refs["widgets"] != refs["gadgets"] {
			return false, fmt.Sprintf("plans %v", refs), nil
		}
		plan := &operatorsv1alpha1.InstallPlan{}
		if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: refs["widgets"]}, plan); err != nil {
			return false, "", err
		}
		got := append([]string(nil), plan.Spec.ClusterServiceVersionNames...)
		sort.Strings(got)
		shared = plan.Name
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("plan %s carries %v", plan.Name, got), nil
	})
	plan := waitForPlanPhase(t, ns, shared, operatorsv1alpha1.InstallPlanPhaseRequiresApproval, 30*time.Second)
	approve(t, plan)
	for _, csv := range want {
		waitForCSVPhase(t, ns, csv, operatorsv1alpha1.CSVPhaseSucceeded, 2*time.Minute)
	}
	approvals := ledgers.In(ns)
	if len(approvals) != 1 || len(approvals[0].CSVNames) != 2 || approvals[0].Manager != approver {
		t.Errorf("ledger in %s: %+v, want one approval of a plan with both CSVs by %s", ns, approvals, approver)
	}
}

// TestUnknownPackageFailsResolution: a Subscription to a package the
// catalog does not have gets ResolutionFailed, and no plan.
func TestUnknownPackageFailsResolution(t *testing.T) {
	ns := namespace(t, "unknown-package")
	operatorGroup(t, ns, "own", ns)
	subscribe(t, ns, "nothing", "no-such-operator", "stable", operatorsv1alpha1.ApprovalManual)
	eventually(t, 90*time.Second, "ResolutionFailed=True", func(ctx context.Context) (bool, string, error) {
		c, all, err := subscriptionCondition(ctx, ns, "nothing", operatorsv1alpha1.SubscriptionResolutionFailed)
		if err != nil || c == nil {
			return false, all, err
		}
		return c.Status == corev1.ConditionTrue, fmt.Sprintf("%s: %s", all, c.Message), nil
	})
	plans := &operatorsv1alpha1.InstallPlanList{}
	if err := lc.Client.List(context.Background(), plans, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(plans.Items) != 0 {
		t.Errorf("%d InstallPlans for an unknown package", len(plans.Items))
	}
}

// TestStoppedCatalog records what real OLM does when the catalog server
// goes away: the CatalogSource leaves READY, yet OLM keeps resolving from
// its cached snapshot of the catalog, and, since its health check for
// address-based catalogs is a TODO that always answers healthy, reports
// CatalogSourcesUnhealthy=False. pgstack therefore cannot learn of a dead
// catalog from Subscriptions; an invalid catalog does surface (see
// TestInvalidCatalogSourceMakesSubscriptionsUnhealthy). Once the server is
// back, the CatalogSource is READY again.
func TestStoppedCatalog(t *testing.T) {
	ns := namespace(t, "catalog-down")
	operatorGroup(t, ns, "own", ns)
	ctx := context.Background()

	lc.StopCatalog()
	// Later scenarios need the catalog, also when this one fails.
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := lc.StartCatalog(context.Background()); err != nil {
				t.Errorf("restart catalog: %v", err)
			}
		}
	})
	eventually(t, 2*time.Minute, "CatalogSource "+cluster.CatalogSource+" no longer READY", func(ctx context.Context) (bool, string, error) {
		cs := &operatorsv1alpha1.CatalogSource{}
		if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: cluster.OLMNamespace, Name: cluster.CatalogSource}, cs); err != nil {
			return false, "", err
		}
		if cs.Status.GRPCConnectionState == nil {
			return false, "no connection state", nil
		}
		state := cs.Status.GRPCConnectionState.LastObservedState
		return state != "READY", state, nil
	})
	subscribe(t, ns, "gadgets", gadgets.Name, gadgets.Channel, operatorsv1alpha1.ApprovalManual)
	plan := currentPlan(t, ns, "gadgets", 2*time.Minute)
	if got := plan.Spec.ClusterServiceVersionNames; len(got) != 1 || got[0] != gadgets.Head() {
		t.Errorf("plan resolved from OLM's cached catalog carries %v, want [%s]", got, gadgets.Head())
	}
	var health *operatorsv1alpha1.SubscriptionCondition
	eventually(t, time.Minute, "OLM to judge the catalog's health for the Subscription", func(ctx context.Context) (bool, string, error) {
		c, all, err := subscriptionCondition(ctx, ns, "gadgets", operatorsv1alpha1.SubscriptionCatalogSourcesUnhealthy)
		health = c
		return c != nil, all, err
	})
	if health.Status != corev1.ConditionFalse {
		t.Errorf("CatalogSourcesUnhealthy=%s (%s) with the catalog down; OLM v0.46 reports address-based catalogs healthy, has that changed?", health.Status, health.Reason)
	}

	restarted = true
	if err := lc.StartCatalog(ctx); err != nil {
		t.Fatalf("catalog back: %v", err)
	}
}

// TestInvalidCatalogSourceMakesSubscriptionsUnhealthy: OLM marks a
// Subscription CatalogSourcesUnhealthy when a catalog it resolves against
// (its namespace's or the global olm namespace's) is invalid.
func TestInvalidCatalogSourceMakesSubscriptionsUnhealthy(t *testing.T) {
	ns := namespace(t, "catalog-invalid")
	operatorGroup(t, ns, "own", ns)
	broken := &operatorsv1alpha1.CatalogSource{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"},
		Spec:       operatorsv1alpha1.CatalogSourceSpec{SourceType: operatorsv1alpha1.SourceTypeGrpc}, // neither image nor address
	}
	if err := lc.Client.Create(context.Background(), broken); err != nil {
		t.Fatal(err)
	}
	subscribe(t, ns, "gadgets", gadgets.Name, gadgets.Channel, operatorsv1alpha1.ApprovalManual)
	eventually(t, 2*time.Minute, "CatalogSourcesUnhealthy=True", func(ctx context.Context) (bool, string, error) {
		c, all, err := subscriptionCondition(ctx, ns, "gadgets", operatorsv1alpha1.SubscriptionCatalogSourcesUnhealthy)
		if err != nil || c == nil {
			return false, all, err
		}
		return c.Status == corev1.ConditionTrue, all, nil
	})
}

// TestTwoOperatorGroupsFailTheCSV: a second OperatorGroup in a namespace
// fails the CSV installed there with TooManyOperatorGroups.
func TestTwoOperatorGroupsFailTheCSV(t *testing.T) {
	ns := namespace(t, "two-operatorgroups")
	operatorGroup(t, ns, "first", ns)
	subscribe(t, ns, "widgets", widgets.Name, widgets.Channel, operatorsv1alpha1.ApprovalAutomatic)
	waitForCSVPhase(t, ns, widgets.Head(), operatorsv1alpha1.CSVPhaseSucceeded, 2*time.Minute)

	operatorGroup(t, ns, "second", ns)
	csv := waitForCSVPhase(t, ns, widgets.Head(), operatorsv1alpha1.CSVPhaseFailed, time.Minute)
	if csv.Status.Reason != operatorsv1alpha1.CSVReasonTooManyOperatorGroups {
		t.Errorf("CSV failed with reason %q (%s), want TooManyOperatorGroups", csv.Status.Reason, csv.Status.Message)
	}
}

// TestUnavailableDeploymentKeepsTheCSVInstalling: OLM judges a CSV on its
// Deployment; one whose pod cannot be scheduled keeps the CSV Installing
// (reason InstallWaiting) instead of Succeeded.
func TestUnavailableDeploymentKeepsTheCSVInstalling(t *testing.T) {
	ns := namespace(t, "unavailable")
	operatorGroup(t, ns, "own", ns)
	subscribe(t, ns, "stuck", stuck.Name, stuck.Channel, operatorsv1alpha1.ApprovalAutomatic)
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	eventually(t, 2*time.Minute, "CSV "+stuck.Head()+" Installing with reason InstallWaiting", func(ctx context.Context) (bool, string, error) {
		if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: stuck.Head()}, csv); err != nil {
			return false, "", client.IgnoreNotFound(err)
		}
		return csv.Status.Phase == operatorsv1alpha1.CSVPhaseInstalling && csv.Status.Reason == operatorsv1alpha1.CSVReasonWaiting,
			fmt.Sprintf("phase %q reason %q: %s", csv.Status.Phase, csv.Status.Reason, csv.Status.Message), nil
	})
	eventually(t, time.Minute, "the operator pod reported Unschedulable by the real scheduler", func(ctx context.Context) (bool, string, error) {
		pods := &corev1.PodList{}
		if err := lc.Client.List(ctx, pods, client.InNamespace(ns)); err != nil {
			return false, "", err
		}
		for _, pod := range pods.Items {
			for _, c := range pod.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					return true, "", nil
				}
			}
		}
		return false, fmt.Sprintf("%d pods", len(pods.Items)), nil
	})
	current := &operatorsv1alpha1.ClusterServiceVersion{}
	if err := lc.Client.Get(context.Background(), client.ObjectKeyFromObject(csv), current); err != nil {
		t.Fatal(err)
	}
	if current.Status.Phase == operatorsv1alpha1.CSVPhaseSucceeded {
		t.Errorf("CSV Succeeded although its Deployment has no schedulable pod")
	}
}
