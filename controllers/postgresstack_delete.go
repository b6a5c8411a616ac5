package controllers

import (
	"context"
	"fmt"
	"strings"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
)

// reconcileDelete honours deletionPolicy before letting the stack go. Retain
// (the default) orphans the PostgresCluster so that neither garbage collection
// nor PGO touches the database or its volumes; Delete deletes it and waits
// until it is gone. The operator goes only with removal: DeleteIfUnused and
// only when no other stack uses it.
func (r *PostgresStackReconciler) reconcileDelete(ctx context.Context, sc *scope) error {
	stack := sc.stack
	if !controllerutil.ContainsFinalizer(stack, Finalizer) {
		return nil
	}
	if r.pgo() != nil {
		pc, err := r.getPostgresCluster(ctx, stack)
		if err != nil {
			return err
		}
		if pc != nil {
			sc.obs.Cluster.Exists = true
			sc.obs.Cluster.Readiness = pgo.ClusterReadiness(pc)
			switch stack.Spec.DeletionPolicy {
			case platformv1alpha1.DeletionDelete:
				sc.obs.DeletionWaitsFor = fmt.Sprintf("PGO to delete PostgresCluster %s (deletionPolicy Delete)", pc.GetName())
				if pc.GetDeletionTimestamp().IsZero() {
					if err := r.Delete(ctx, pc, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
						return fmt.Errorf("delete PostgresCluster %s/%s: %w", pc.GetNamespace(), pc.GetName(), err)
					}
					r.Recorder.Eventf(stack, pc, corev1.EventTypeNormal, platformv1alpha1.EventPostgresClusterDeleting, "Delete",
						"deleting PostgresCluster %s as deletionPolicy Delete asks; PGO deletes its volumes", pc.GetName())
				}
				return nil // the PostgresCluster's deletion event brings the stack back
			default:
				if err := r.orphan(ctx, stack, pc); err != nil {
					return err
				}
			}
		}
	}
	waitsFor, err := r.removeOperatorIfUnused(ctx, stack)
	if err != nil {
		return err
	}
	if waitsFor != "" {
		sc.obs.DeletionWaitsFor = waitsFor
		return nil // the Subscription's and CSV's deletion events bring the stack back
	}
	patch := client.MergeFrom(stack.DeepCopy())
	controllerutil.RemoveFinalizer(stack, Finalizer)
	// NotFound: a reconcile from a cache that still held the stack; it went
	// with its finalizer, so the release is done.
	if err := r.Patch(ctx, stack, patch); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("remove finalizer: %w", err)
	}
	forgetStack(client.ObjectKeyFromObject(stack))
	return nil
}

// needsFinalizer: deletion has work to do only when it deletes the
// PostgresCluster (Delete) or may remove the operator (DeleteIfUnused).
// Under Retain with Keep the PostgresCluster carries no owner reference
// (postgresstack_cluster.go), so a stack can go at once and leave it
// untouched: no finalizer, one write fewer per stack. Once added, the
// finalizer stays until deletion, so a switch back to Retain still has the
// owner reference removed if the stack is deleted before the next apply.
func needsFinalizer(stack *platformv1alpha1.PostgresStack) bool {
	return stack.Spec.DeletionPolicy == platformv1alpha1.DeletionDelete ||
		stack.Spec.Operator.Removal == platformv1alpha1.RemovalDeleteIfUnused
}

// orphan removes the stack's owner reference from the PostgresCluster, so that
// deleting the stack leaves the database in place.
func (r *PostgresStackReconciler) orphan(ctx context.Context, stack *platformv1alpha1.PostgresStack, pc client.Object) error {
	refs := pc.GetOwnerReferences()
	kept := refs[:0:0]
	for _, ref := range refs {
		if ref.UID != stack.UID {
			kept = append(kept, ref)
		}
	}
	if len(kept) == len(refs) {
		return nil
	}
	patch := client.MergeFromWithOptions(pc.DeepCopyObject().(client.Object), client.MergeFromWithOptimisticLock{})
	pc.SetOwnerReferences(kept)
	if err := r.Patch(ctx, pc, patch); err != nil {
		return fmt.Errorf("orphan PostgresCluster %s/%s: %w", pc.GetNamespace(), pc.GetName(), err)
	}
	r.Recorder.Eventf(stack, pc, corev1.EventTypeNormal, platformv1alpha1.EventPostgresClusterRetained, "Orphan",
		"left PostgresCluster %s and its data in place (deletionPolicy Retain); delete it yourself when it is no longer needed", pc.GetName())
	return nil
}

// removeOperatorIfUnused removes the operator when the stack asks for it
// and no other stack installs the same package there: the Subscriptions
// pgstack made first, then their CSVs, the order OLM documents for an
// uninstall (a CSV deleted under a live Subscription is resolved and
// installed again). It returns what the removal still waits on; until that
// is nothing, the stack keeps its finalizer and the Subscription's and CSV's
// deletion events bring it back. The CSV names come from the Subscriptions and from
// the stack's own status, which deletion keeps: a crash after the
// Subscription went (and its status with it) still finds the CSV.
func (r *PostgresStackReconciler) removeOperatorIfUnused(ctx context.Context, stack *platformv1alpha1.PostgresStack) (string, error) {
	op := stack.Spec.Operator
	if op.Removal != platformv1alpha1.RemovalDeleteIfUnused || r.olm() == nil {
		return "", nil
	}
	users, err := r.stacksUsing(ctx, op.Namespace, op.Package)
	if err != nil {
		return "", err
	}
	if len(users) > 0 {
		logf.FromContext(ctx).Info("keeping the operator: other stacks use it", "stacks", len(users))
		return "", nil
	}
	subs, err := r.subscriptionsFor(ctx, op.Namespace, op.Package)
	if err != nil {
		return "", err
	}
	csvNames := sets.New[string]()
	for _, name := range []string{stack.Status.Operator.InstalledCSV, stack.Status.Operator.CurrentCSV} {
		csvNames.Insert(name)
	}
	for _, sub := range subs {
		if sub.Labels[ManagedLabel] != ManagedValue {
			// Someone else's install of the package: its CSVs are theirs.
			logf.FromContext(ctx).Info("keeping the operator: a Subscription pgstack did not make installs it", "subscription", sub.Name)
			return "", nil
		}
		csvNames.Insert(sub.Status.InstalledCSV, sub.Status.CurrentCSV)
	}
	csvNames.Delete("")
	for _, sub := range subs {
		if err := r.Delete(ctx, sub); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("delete Subscription %s/%s: %w", sub.Namespace, sub.Name, err)
		}
		r.Recorder.Eventf(stack, sub, corev1.EventTypeNormal, platformv1alpha1.EventOperatorRemoved, "Delete",
			"removed Subscription %s/%s and CSV %s: the last stack using the operator is gone (removal DeleteIfUnused); PGO's CRDs stay",
			sub.Namespace, sub.Name, strings.Join(sets.List(csvNames), ", "))
	}
	var left []string
	for _, sub := range subs {
		left = append(left, "Subscription "+sub.Name)
	}
	for _, name := range sets.List(csvNames) {
		csv := &operatorsv1alpha1.ClusterServiceVersion{}
		err := r.olm().Get(ctx, client.ObjectKey{Namespace: op.Namespace, Name: name}, csv)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("get CSV %s/%s: %w", op.Namespace, name, err)
		}
		left = append(left, "CSV "+name) // gone when OLM's finalizer on it has run
		if csv.DeletionTimestamp.IsZero() {
			if err := r.Delete(ctx, csv); err != nil && !apierrors.IsNotFound(err) {
				return "", fmt.Errorf("delete CSV %s/%s: %w", op.Namespace, name, err)
			}
		}
	}
	if len(left) == 0 {
		return "", nil
	}
	return fmt.Sprintf("OLM to remove %s (removal DeleteIfUnused)", strings.Join(left, ", ")), nil
}
