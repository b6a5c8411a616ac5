package controllers_test

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/controllers"
)

// staleStacks answers Gets of one stack with a copy from before it was
// released, as the manager's cache does for a moment after the API server
// has removed the stack.
type staleStacks struct {
	client.Client
	stale *platformv1alpha1.PostgresStack
}

func (c staleStacks) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if s, ok := obj.(*platformv1alpha1.PostgresStack); ok && key == client.ObjectKeyFromObject(c.stale) {
		c.stale.DeepCopyInto(s)
		return nil
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// A deleted stack is often reconciled once more from a cache that still
// holds it with the finalizer (test/reliability saw it after every deletion:
// "remove finalizer: ... not found"). Its finalizer is already gone with it,
// so that is done, not an error to retry and count.
func TestReleasingAStackThatIsAlreadyGoneIsNoError(t *testing.T) {
	ns := newNamespace(t, "stale-release")
	now := metav1.Now()
	stale := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gone",
		Finalizers: []string{controllers.Finalizer}, DeletionTimestamp: &now}}
	r := &controllers.PostgresStackReconciler{Client: staleStacks{Client: k8s, stale: stale}, APIReader: k8s}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(stale)}); err != nil {
		t.Fatalf("releasing a stack the API server no longer has: %v", err)
	}
}
