package controllers

import (
	"context"
	"fmt"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/policy"
	"github.com/pgstack/pgstack/internal/rollout"
)

// +kubebuilder:rbac:groups=platform.pgstack.dev,resources=postgresrolloutpolicies,verbs=get;list;watch

// rolloutPolicy is the install namespace's PostgresRolloutPolicy, or nil.
func (r *PostgresStackReconciler) rolloutPolicy(ctx context.Context, namespace string) (*platformv1alpha1.PostgresRolloutPolicy, error) {
	p := &platformv1alpha1.PostgresRolloutPolicy{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: platformv1alpha1.RolloutPolicyName}, p); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get PostgresRolloutPolicy %s/%s: %w", namespace, platformv1alpha1.RolloutPolicyName, err)
	}
	return p, nil
}

// rolloutHold says what an upgrade waits for under the install namespace's
// rollout policy: its clusters pinned to their images for exactly this
// upgrade, so approving it restarts none of them.
func (r *PostgresStackReconciler) rolloutHold(ctx context.Context, sub *operatorsv1alpha1.Subscription) (*policy.Hazard, error) {
	if sub.Status.InstalledCSV == "" {
		return nil, nil // a first install restarts nothing
	}
	p, err := r.rolloutPolicy(ctx, sub.Namespace)
	if err != nil || p == nil {
		return nil, err
	}
	ro := p.Status.Rollout
	if ro != nil && ro.Phase == platformv1alpha1.RolloutPinned && ro.ToCSV == sub.Status.CurrentCSV && ro.FromCSV == sub.Status.InstalledCSV {
		return nil, nil
	}
	state := "it has not started"
	if ro != nil && ro.ToCSV == sub.Status.CurrentCSV {
		state = ro.Message
	}
	return &policy.Hazard{Reason: policy.ReasonRolloutPinning,
		Message: fmt.Sprintf("PostgresRolloutPolicy %s/%s pins the clusters %s would restart before it is approved: %s", p.Namespace, p.Name, sub.Status.CurrentCSV, state)}, nil
}

// pinForRollout holds desired on the images the rollout pins its cluster
// to, and reports the stack's place in the rollout. force says the apply
// must happen although the live object holds everything desired asks for:
// the cluster was released, and the pins pgstack applied must go.
func (r *PostgresStackReconciler) pinForRollout(ctx context.Context, sc *scope, live, desired *unstructured.Unstructured) (force bool, err error) {
	stack := sc.stack
	p, err := r.rolloutPolicy(ctx, stack.Spec.Operator.Namespace)
	if err != nil {
		return false, err
	}
	var ro *platformv1alpha1.RolloutStatus
	if p != nil {
		ro = p.Status.Rollout
	}
	c, found, pinned := rollout.Place(ro, stack.Namespace+"/"+stack.Name)
	if !found {
		// Pinned when last reported, and the policy or its record is gone:
		// the pins go.
		was := stack.Status.Operator.Rollout
		return was != nil && was.State == platformv1alpha1.ClusterPinned && live != nil, nil
	}
	sc.obs.Operator.Rollout = &platformv1alpha1.StackRolloutStatus{ToCSV: ro.ToCSV, Wave: c.Wave, State: c.State}
	images := rollout.Images(c)
	version, _, _ := unstructured.NestedInt64(desired.Object, "spec", "postgresVersion")
	if pinned && version == c.PostgresVersion {
		return false, pgo.PinImages(desired, images)
	}
	return live != nil && pgo.NamedImages(live, images) > pgo.NamedImages(desired, images), nil
}
