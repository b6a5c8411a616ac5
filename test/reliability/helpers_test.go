package reliability

import (
	"context"
	"testing"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
)

// pgoPackage is PGO's package in the local catalog; its Subscription lives in
// the default install namespace unless a stack says otherwise.
const (
	pgoPackage      = "postgresql"
	installNS       = "operators"
	someoneElse     = "someone-else" // the field manager of writers that are not pgstack
	pgstackApprover = "pgstack"
)

func csvName(version string) string { return "postgresoperator.v" + version }

// newStack creates a stack (its namespace first). A Retain stack's
// PostgresCluster is registered with the invariants before it can exist.
func newStack(t *testing.T, ns, name string, change func(*platformv1alpha1.PostgresStack)) *platformv1alpha1.PostgresStack {
	t.Helper()
	if err := lc.CreateNamespace(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	s := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if change != nil {
		change(s)
	}
	if s.Spec.DeletionPolicy != platformv1alpha1.DeletionDelete {
		guard.retain(client.ObjectKeyFromObject(s))
	}
	must(t, k8s.Create(context.Background(), s))
	return s
}

// deleteStack asks for the stack's deletion, retrying through an API server
// that is restarting.
func deleteStack(t *testing.T, s *platformv1alpha1.PostgresStack) {
	t.Helper()
	waits.Eventually(t, "delete stack "+s.Namespace+"/"+s.Name, func() (bool, error) {
		err := k8s.Delete(context.Background(), s)
		return err == nil || apierrors.IsNotFound(err), nil
	})
}

// postgresCluster is the stack's PostgresCluster, nil when there is none.
func postgresCluster(t *testing.T, s *platformv1alpha1.PostgresStack) *unstructured.Unstructured {
	t.Helper()
	pc := pgo.NewPostgresCluster()
	var found bool
	waits.Eventually(t, "read PostgresCluster "+s.Name, func() (bool, error) {
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(s), pc)
		found = err == nil
		return err == nil || apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if !found {
		return nil
	}
	return pc
}

// subscriptionsFor lists the Subscriptions for pkg in ns.
func subscriptionsFor(ctx context.Context, ns, pkg string) ([]operatorsv1alpha1.Subscription, error) {
	list := &operatorsv1alpha1.SubscriptionList{}
	if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	var out []operatorsv1alpha1.Subscription
	for _, s := range list.Items {
		if s.Spec != nil && s.Spec.Package == pkg {
			out = append(out, s)
		}
	}
	return out, nil
}

// oneSubscription waits until there is exactly one Subscription for PGO in
// the install namespace and returns it.
func oneSubscription(t *testing.T) operatorsv1alpha1.Subscription {
	t.Helper()
	var sub operatorsv1alpha1.Subscription
	waits.Eventually(t, "exactly one Subscription for "+pgoPackage+" in "+installNS, func() (bool, error) {
		subs, err := subscriptionsFor(context.Background(), installNS, pgoPackage)
		if err != nil || len(subs) != 1 {
			return false, err
		}
		sub = subs[0]
		return true, nil
	})
	return sub
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func clientKey(s *platformv1alpha1.PostgresStack) client.ObjectKey {
	return client.ObjectKeyFromObject(s)
}
