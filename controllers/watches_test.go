package controllers_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/controllers"
	"github.com/pgstack/pgstack/internal/policy"
	"github.com/pgstack/pgstack/test/expect"
	"github.com/pgstack/pgstack/test/testenv"
)

// PGO's CRD arrives after the manager started, and the cache's lists of
// PostgresClusters fail at first: no stack waits on that cache. A stack
// created meanwhile is reconciled through its operator phase, and once the
// lists succeed every stack gets its PostgresCluster.
func TestALateCRDWhoseFirstSyncFailsHoldsNoStackUp(t *testing.T) {
	bare, err := testenv.StartWith(testenv.Options{WithoutPGO: true})
	must(t, err)
	t.Cleanup(func() { _ = bare.Stop() })
	var listsFail atomic.Bool
	listsFail.Store(true)
	var failedLists atomic.Int32
	watchConfig := rest.CopyConfig(bare.Config)
	watchConfig.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return failingPostgresClusterLists{next: rt, fail: &listsFail, failed: &failedLists}
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	must(t, startManager(ctx, bare, &wg, func(r *controllers.PostgresStackReconciler) { r.WatchConfig = watchConfig }))
	savedClient, savedWaits := k8s, waits
	k8s, waits.Client = bare.Client, bare.Client
	t.Cleanup(func() { k8s, waits = savedClient, savedWaits })
	must(t, createCatalog(bare.Client))

	o := newInstallNamespace(t, "operators")
	first := createStack(t, newStack(newNamespace(t, "team-a"), "hippo", o.ns, nil))
	o.installFirst(pkg, csv5_8_9)
	waitCondition(t, first, platformv1alpha1.ConditionClusterReady, metav1.ConditionFalse, platformv1alpha1.ReasonPGOAPIMissing)

	must(t, bare.InstallPGOCRDs())
	eventually(t, "the PostgresCluster cache's first list refused", func() (bool, error) { return failedLists.Load() > 0, nil })

	// The cache cannot sync; a new stack is reconciled all the same.
	second := createStack(t, newStack(newNamespace(t, "team-b"), "zebra", o.ns, nil))
	waitCondition(t, second, platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionTrue, platformv1alpha1.ReasonSucceeded)
	waitCondition(t, second, platformv1alpha1.ConditionClusterReady, metav1.ConditionFalse, platformv1alpha1.ReasonPGOAPIMissing)

	listsFail.Store(false)
	for _, s := range []*platformv1alpha1.PostgresStack{first, second} {
		getPostgresCluster(t, s.Namespace, s.Name)
		pgoReportsReady(t, s.Namespace, s.Name)
		waitCondition(t, s, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	}
}

// failingPostgresClusterLists refuses every list or watch of
// PostgresClusters while fail is set, as an API server that cannot serve
// them yet would.
type failingPostgresClusterLists struct {
	next   http.RoundTripper
	fail   *atomic.Bool
	failed *atomic.Int32
}

func (f failingPostgresClusterLists) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.fail.Load() && req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/postgresclusters") {
		f.failed.Add(1)
		body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"test: PostgresCluster lists refused","reason":"InternalError","code":500}`
		return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Request: req,
			Header: http.Header{"Content-Type": []string{"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}, nil
	}
	return f.next.RoundTrip(req)
}

// Two stacks share the operator; only the first one's range holds back a
// plan. When it is deleted (or asks for another channel, so the
// Subscription no longer serves it), the other is
// judged again at once and the plan approved: nothing else happens on
// OLM's side that would wake it.
func TestALeavingStackWakesTheStacksSharingItsOperator(t *testing.T) {
	for _, leave := range []struct {
		name string
		do   func(t *testing.T, s *platformv1alpha1.PostgresStack)
	}{
		{name: "deleted", do: func(t *testing.T, s *platformv1alpha1.PostgresStack) {
			must(t, k8s.Delete(context.Background(), s))
		}},
		{name: "moved to another channel, no longer served by the Subscription", do: func(t *testing.T, s *platformv1alpha1.PostgresStack) {
			updateStack(t, s, func(got *platformv1alpha1.PostgresStack) { got.Spec.Operator.Channel = "v6" })
		}},
	} {
		t.Run(leave.name, func(t *testing.T) {
			o := newInstallNamespace(t, "operators")
			holder := createStack(t, newStack(newNamespace(t, "team-a"), "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) { s.Spec.Operator.Versions = "<5.8.9" }))
			other := createStack(t, newStack(newNamespace(t, "team-b"), "zebra", o.ns, nil))
			sub := o.installFirst(pkg, csv5_8_8)
			// Both Ready, so that nothing looks at either again on a timer.
			for _, s := range []*platformv1alpha1.PostgresStack{holder, other} {
				pgoReportsReady(t, s.Namespace, s.Name)
				waitCondition(t, s, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
			}
			plan := o.resolve(sub, csv5_8_9)
			c := waitCondition(t, other, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionFalse, policy.ReasonOutsideVersionRange)
			if !strings.Contains(c.Message, holder.Namespace+"/"+holder.Name) {
				t.Fatalf("premise: %s's UpgradeApproved should cite %s/%s, got %q", other.Name, holder.Namespace, holder.Name, c.Message)
			}
			assertNotApproved(t, plan)

			leave.do(t, holder)
			soon := expect.Waiter{Client: k8s, Bound: 10 * time.Second}
			soon.Eventually(t, "the plan only "+holder.Name+" held back approved", func() (bool, error) {
				got := plan.DeepCopy()
				err := k8s.Get(context.Background(), client.ObjectKeyFromObject(plan), got)
				return err == nil && got.Spec.Approved, err
			})
			o.install(sub, plan, csv5_8_9, "Succeeded")
			c = waitCondition(t, other, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionTrue, "")
			if strings.Contains(c.Message, holder.Name) {
				t.Errorf("%s's UpgradeApproved still cites %s: %q", other.Name, holder.Name, c.Message)
			}
		})
	}
}
