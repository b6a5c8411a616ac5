package controllers

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	corev1 "k8s.io/api/core/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/render"
	"github.com/pgstack/pgstack/internal/status"
)

// +kubebuilder:rbac:groups=postgres-operator.crunchydata.com,resources=postgresclusters,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch

// reconcileCluster applies the rendered PostgresCluster once PGO is installed,
// and reports PGO's view of it. An existing PostgresCluster is reported even
// while the operator upgrades.
func (r *PostgresStackReconciler) reconcileCluster(ctx context.Context, sc *scope) error {
	obs := &sc.obs.Cluster
	if r.pgo() == nil {
		obs.APIMissing = true
		if r.apiPending(ctx, pgo.PostgresClusterCRD) {
			return errAPIPending
		}
		return nil
	}
	live, err := r.getPostgresCluster(ctx, sc.stack)
	if err != nil {
		return err
	}
	if sc.obs.Operator.Installed() {
		desired, err := render.Render(sc.stack)
		if err != nil {
			obs.Problem = &status.Problem{Reason: platformv1alpha1.ReasonInvalidSpec, Message: "cannot render the PostgresCluster: " + err.Error()}
			return nil
		}
		// Only Delete makes the stack the PostgresCluster's owner. Under Retain
		// there is no owner reference at all: a foreground (cascading) delete of
		// the stack must not reach the database.
		if sc.stack.Spec.DeletionPolicy == platformv1alpha1.DeletionDelete {
			if err := controllerutil.SetControllerReference(sc.stack, desired, r.Scheme()); err != nil {
				return fmt.Errorf("set owner of PostgresCluster %s: %w", desired.GetName(), err)
			}
		}
		// Apply when the live object lacks what we would apply, or when its
		// ownership disagrees with deletionPolicy (a switch to Retain must drop
		// the owner reference at once, not at deletion).
		if live == nil || !Contains(live.Object, desired.Object) || ownedBy(live, sc.stack) != ownedBy(desired, sc.stack) {
			if err := r.apply(ctx, desired); err != nil {
				if apierrors.IsInvalid(err) {
					obs.Problem = &status.Problem{Reason: platformv1alpha1.ReasonInvalidSpec, Message: "PGO rejects the PostgresCluster: " + err.Error()}
					return nil
				}
				obs.ApplyError = err.Error()
				return fmt.Errorf("apply PostgresCluster %s/%s: %w", desired.GetNamespace(), desired.GetName(), err)
			}
			if live == nil {
				r.Recorder.Eventf(sc.stack, desired, corev1.EventTypeNormal, "PostgresClusterCreated", "Create",
					"created PostgresCluster %s (PGO %s)", desired.GetName(), sc.obs.Operator.InstalledCSV)
			}
			live = desired
		}
	}
	if live != nil {
		obs.Exists = true
		obs.Readiness = pgo.ClusterReadiness(live)
	}
	return nil
}

// getPostgresCluster reads the stack's PostgresCluster from the cache of
// managed ones; nil when there is none. A PostgresCluster of the stack's name
// that pgstack does not manage yet reads as none, and the apply takes it over.
func (r *PostgresStackReconciler) getPostgresCluster(ctx context.Context, stack *platformv1alpha1.PostgresStack) (*unstructured.Unstructured, error) {
	pc := pgo.NewPostgresCluster()
	if err := r.pgo().Get(ctx, client.ObjectKeyFromObject(stack), pc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get PostgresCluster %s/%s: %w", stack.Namespace, stack.Name, err)
	}
	return pc, nil
}

// apply writes obj with server-side apply under pgstack's one field owner,
// taking back fields someone else changed and leaving fields we do not set alone.
func (r *PostgresStackReconciler) apply(ctx context.Context, obj *unstructured.Unstructured) error {
	return r.Patch(ctx, obj.DeepCopy(), client.Apply, client.FieldOwner(FieldOwner), client.ForceOwnership)
}

// ownedBy reports whether obj carries an owner reference to the stack.
func ownedBy(obj client.Object, stack *platformv1alpha1.PostgresStack) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID == stack.UID {
			return true
		}
	}
	return false
}
