package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/cluster/catalog"
	"github.com/pgstack/pgstack/test/ledger"
)

// One full cluster serves every scenario of this package; scenarios keep
// apart by namespace.
var (
	lc      *cluster.Cluster
	ledgers *ledger.Ledger
	pgo     catalog.Package
)

// Neighbour operators for scenarios that need packages besides PGO.
var (
	widgets = catalog.Neighbour("widgets", "Widget")
	gadgets = catalog.Neighbour("gadgets", "Gadget")
	// stuck's operator pod selects a node that does not exist, so its
	// Deployment never becomes Available.
	stuck = func() catalog.Package {
		p := catalog.Neighbour("stuck", "Stuck")
		p.NodeSelector = map[string]string{"pgstack.dev/no-such-node": "true"}
		return p
	}()
)

// approver is the field manager the scenarios approve InstallPlans with.
const approver = "pgstack-test-approver"

func TestMain(m *testing.M) {
	if helperMode() != "" {
		// This process is a subprocess of TestHarnessLeavesNoProcessBehind:
		// it needs no full cluster of its own.
		os.Exit(m.Run())
	}
	os.Exit(runWithCluster(m))
}

func runWithCluster(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	// The catalog starts one version short of PGO's chain, so a scenario
	// can publish 5.8.9 while the cluster runs, as a catalog update does.
	pgo, err = catalog.PGO("5.8.7", "5.8.8")
	if err != nil {
		fmt.Fprintln(os.Stderr, "local cluster:", err)
		return 1
	}
	lc, err = cluster.StartFull(ctx, cluster.Options{
		Packages: []catalog.Package{pgo, widgets, gadgets, stuck},
		Logf:     func(format string, args ...any) { fmt.Printf(format+"\n", args...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "local cluster:", err)
		return 1
	}
	defer func() {
		if err := lc.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "local cluster: stop:", err)
		}
	}()
	lc.StopOnSignal()
	fmt.Println("local cluster: PostgresCluster schema:", lc.PGOSchema)
	if ledgers, err = ledger.Start(ctx, lc.Config); err != nil {
		fmt.Fprintln(os.Stderr, "local cluster:", err)
		return 1
	}
	code := m.Run()
	// PGO ran for real; what stood in for its containers must not have
	// failed quietly (a PGO process that exited, a command not played).
	if lc.ReportStandInErrors(os.Stderr) {
		code = 1
	}
	return code
}

// eventually polls check until it holds, failing the test with the last
// observation and OLM's logs when timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func(ctx context.Context) (bool, string, error)) {
	t.Helper()
	var last string
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, observed, err := check(ctx)
		if err != nil && ctx.Err() != nil {
			return false, nil // the deadline cut this poll short; keep the last real observation
		}
		if observed != "" {
			last = observed
		}
		lastErr = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s; last seen: %s (error: %v)\n--- catalog operator log:\n%s\n--- olm operator log:\n%s",
			what, timeout, last, lastErr, lc.LogTail("catalog", 15), lc.LogTail("olm", 15))
	}
}

// namespace creates a scenario's namespace (the cluster goes with the package run).
func namespace(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	if err := lc.CreateNamespace(ctx, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// operatorGroup creates an OperatorGroup targeting its own namespace (or
// every namespace when targets is empty and all is true).
func operatorGroup(t *testing.T, ns, name string, targets ...string) {
	t.Helper()
	og := &operatorsv1.OperatorGroup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       operatorsv1.OperatorGroupSpec{TargetNamespaces: targets},
	}
	if err := lc.Client.Create(context.Background(), og); err != nil {
		t.Fatalf("create OperatorGroup %s/%s: %v", ns, name, err)
	}
}

func subscribe(t *testing.T, ns, name, pkg, channel string, approval operatorsv1alpha1.Approval) *operatorsv1alpha1.Subscription {
	t.Helper()
	sub := &operatorsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: &operatorsv1alpha1.SubscriptionSpec{
			CatalogSource:          cluster.CatalogSource,
			CatalogSourceNamespace: cluster.OLMNamespace,
			Package:                pkg,
			Channel:                channel,
			InstallPlanApproval:    approval,
		},
	}
	if err := lc.Client.Create(context.Background(), sub); err != nil {
		t.Fatalf("create Subscription %s/%s: %v", ns, name, err)
	}
	return sub
}

// currentPlan waits until the Subscription references an InstallPlan other
// than those in exclude and returns it.
func currentPlan(t *testing.T, ns, sub string, timeout time.Duration, exclude ...string) *operatorsv1alpha1.InstallPlan {
	t.Helper()
	plan := &operatorsv1alpha1.InstallPlan{}
	eventually(t, timeout, "Subscription "+ns+"/"+sub+" references a new InstallPlan", func(ctx context.Context) (bool, string, error) {
		s := &operatorsv1alpha1.Subscription{}
		if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: sub}, s); err != nil {
			return false, "", err
		}
		ref := s.Status.InstallPlanRef
		if ref == nil {
			return false, fmt.Sprintf("no installPlanRef; state %q, conditions %v", s.Status.State, conditionSummary(s.Status.Conditions)), nil
		}
		for _, old := range exclude {
			if ref.Name == old {
				return false, "still " + old, nil
			}
		}
		if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, plan); err != nil {
			return false, "", err
		}
		return true, "", nil
	})
	return plan
}

// waitForPlanPhase waits for an InstallPlan phase and returns the plan.
func waitForPlanPhase(t *testing.T, ns, name string, phase operatorsv1alpha1.InstallPlanPhase, timeout time.Duration) *operatorsv1alpha1.InstallPlan {
	t.Helper()
	plan := &operatorsv1alpha1.InstallPlan{}
	eventually(t, timeout, fmt.Sprintf("InstallPlan %s/%s in phase %s", ns, name, phase), func(ctx context.Context) (bool, string, error) {
		if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, plan); err != nil {
			return false, "", err
		}
		return plan.Status.Phase == phase, fmt.Sprintf("phase %q", plan.Status.Phase), nil
	})
	return plan
}

// approve sets spec.approved the way a person or pgstack does: an update
// that fails if the plan changed since it was read.
// OLM writes the plan too, so a conflict means: read it again and approve
// only if it still waits for approval.
func approve(t *testing.T, plan *operatorsv1alpha1.InstallPlan) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current := &operatorsv1alpha1.InstallPlan{}
		if err := lc.Client.Get(ctx, client.ObjectKeyFromObject(plan), current); err != nil {
			return err
		}
		if current.Status.Phase != operatorsv1alpha1.InstallPlanPhaseRequiresApproval {
			return fmt.Errorf("plan is in phase %q, not RequiresApproval", current.Status.Phase)
		}
		current.Spec.Approved = true
		return lc.Client.Update(ctx, current, client.FieldOwner(approver))
	})
	if err != nil {
		t.Fatalf("approve InstallPlan %s/%s: %v", plan.Namespace, plan.Name, err)
	}
}

func waitForCSVPhase(t *testing.T, ns, name string, phase operatorsv1alpha1.ClusterServiceVersionPhase, timeout time.Duration) *operatorsv1alpha1.ClusterServiceVersion {
	t.Helper()
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	eventually(t, timeout, fmt.Sprintf("CSV %s/%s in phase %s", ns, name, phase), func(ctx context.Context) (bool, string, error) {
		if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, csv); err != nil {
			if apierrors.IsNotFound(err) {
				return false, "not found", nil
			}
			return false, "", err
		}
		return csv.Status.Phase == phase, fmt.Sprintf("phase %q reason %q: %s", csv.Status.Phase, csv.Status.Reason, csv.Status.Message), nil
	})
	return csv
}

func conditionSummary(conditions []operatorsv1alpha1.SubscriptionCondition) string {
	var parts []string
	for _, c := range conditions {
		parts = append(parts, fmt.Sprintf("%s=%s(%s)", c.Type, c.Status, c.Reason))
	}
	return strings.Join(parts, ", ")
}

func subscriptionCondition(ctx context.Context, ns, name string, conditionType operatorsv1alpha1.SubscriptionConditionType) (*operatorsv1alpha1.SubscriptionCondition, string, error) {
	s := &operatorsv1alpha1.Subscription{}
	if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, s); err != nil {
		return nil, "", err
	}
	for i := range s.Status.Conditions {
		if s.Status.Conditions[i].Type == conditionType {
			return &s.Status.Conditions[i], conditionSummary(s.Status.Conditions), nil
		}
	}
	return nil, conditionSummary(s.Status.Conditions), nil
}
