package controllers

import (
	"context"
	"fmt"
	"strings"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/policy"
)

// reconcileInstallPlan judges the plan the Subscription points at and
// approves it when every stack's policy allows every CSV in it.
func (r *PostgresStackReconciler) reconcileInstallPlan(ctx context.Context, sc *scope, sub *operatorsv1alpha1.Subscription) error {
	obs := &sc.obs.Operator
	ref := sub.Status.InstallPlanRef
	plan := &operatorsv1alpha1.InstallPlan{}
	if err := r.olm().Get(ctx, client.ObjectKey{Namespace: sub.Namespace, Name: ref.Name}, plan); err != nil {
		if apierrors.IsNotFound(err) {
			obs.PlanPhase = ""
			return nil
		}
		return fmt.Errorf("get install plan %s/%s: %w", sub.Namespace, ref.Name, err)
	}
	obs.PlanPhase = string(plan.Status.Phase)
	if plan.Spec.Approved || plan.Status.Phase != operatorsv1alpha1.InstallPlanPhaseRequiresApproval {
		return nil
	}
	facts, err := r.planFacts(ctx, sc, sub, plan)
	if err != nil {
		return err
	}
	decision := policy.Decide(facts)
	obs.Decision = &decision
	countDecision(sc.stack, decision)
	logf.FromContext(ctx).V(1).Info("judged install plan", "installPlan", plan.Name, "csvs", plan.Spec.ClusterServiceVersionNames,
		"verdict", decision.Verdict, "reason", decision.Reason, "stacks", policy.Describe(facts.Policies))
	switch decision.Verdict {
	case policy.Approve:
		approved, err := r.approve(ctx, sc.stack, plan, decision)
		if err != nil {
			return err
		}
		if approved {
			obs.PlanApproved = true
		}
	case policy.Wait:
		if !decision.RetryAt.IsZero() {
			sc.requeueAt(decision.RetryAt, facts.Now)
		}
	}
	return nil
}

func (r *PostgresStackReconciler) planFacts(ctx context.Context, sc *scope, sub *operatorsv1alpha1.Subscription, plan *operatorsv1alpha1.InstallPlan) (policy.Facts, error) {
	stack := sc.stack
	users, err := r.stacksUsing(ctx, sub.Namespace, sub.Spec.Package)
	if err != nil {
		return policy.Facts{}, err
	}
	facts := policy.Facts{
		Plan: policy.Plan{Name: plan.Name, Phase: string(plan.Status.Phase), Approved: plan.Spec.Approved,
			CSVNames: plan.Spec.ClusterServiceVersionNames},
		OurCSV:             sub.Status.CurrentCSV,
		InstalledCSV:       sub.Status.InstalledCSV,
		NeighbourAutomatic: map[string]bool{},
		Now:                r.now(),
	}
	facts.Policies = policy.Voters(subscriptionSettings(sub), users, stack)
	neighbours := &operatorsv1alpha1.SubscriptionList{}
	if err := r.olm().List(ctx, neighbours, client.InNamespace(sub.Namespace)); err != nil {
		return policy.Facts{}, fmt.Errorf("list Subscriptions in %s: %w", sub.Namespace, err)
	}
	for _, n := range neighbours.Items {
		if n.Name == sub.Name || n.Spec == nil || n.Status.CurrentCSV == "" {
			continue
		}
		facts.NeighbourAutomatic[n.Status.CurrentCSV] = n.Spec.InstallPlanApproval != operatorsv1alpha1.ApprovalManual
	}
	// What the plan's new CSV and CRDs would do, before anyone approves it.
	preview, err := r.previewUpgrade(ctx, sc, sub, plan, users, &facts)
	if err != nil {
		return policy.Facts{}, fmt.Errorf("preview install plan %s: %w", plan.Name, err)
	}
	sc.obs.Operator.Preview = preview
	if facts.Hold, err = r.rolloutHold(ctx, sub); err != nil {
		return policy.Facts{}, err
	}
	return facts, nil
}

// approve sets spec.approved on the plan, with a resourceVersion precondition:
// if OLM replaced or changed the plan since it was judged, the write fails and
// the plan is judged again.
func (r *PostgresStackReconciler) approve(ctx context.Context, stack *platformv1alpha1.PostgresStack, plan *operatorsv1alpha1.InstallPlan, decision policy.Decision) (bool, error) {
	patch := client.MergeFromWithOptions(plan.DeepCopy(), client.MergeFromWithOptimisticLock{})
	plan.Spec.Approved = true
	if err := r.Patch(ctx, plan, patch); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			// The plan changed since it was judged (OLM moved it on, or another
			// stack sharing it approved it first): its own event brings every
			// stack back to judge what it is now. Nothing is approved blindly.
			logf.FromContext(ctx).V(1).Info("install plan changed before approval; judging it again on its next event", "installPlan", plan.Name)
			return false, nil
		}
		return false, fmt.Errorf("approve install plan %s: %w", plan.Name, err)
	}
	approvals.WithLabelValues(string(policy.Approve)).Inc()
	r.Recorder.Eventf(stack, plan, corev1.EventTypeNormal, platformv1alpha1.EventInstallPlanApproved, "Approve",
		"approved install plan %s/%s for %s: %s", plan.Namespace, plan.Name, strings.Join(plan.Spec.ClusterServiceVersionNames, ", "), decision.Message)
	logf.FromContext(ctx).Info("approved install plan", "installPlan", client.ObjectKeyFromObject(plan), "csvs", plan.Spec.ClusterServiceVersionNames)
	return true, nil
}

// countDecision counts a verdict to wait or refuse once per stack and
// reason, when the stack's UpgradeApproved does not say it already; an
// approval is counted when it is written.
func countDecision(stack *platformv1alpha1.PostgresStack, d policy.Decision) {
	if d.Verdict != policy.Wait && d.Verdict != policy.Refuse {
		return
	}
	if c := meta.FindStatusCondition(stack.Status.Conditions, platformv1alpha1.ConditionUpgradeApproved); c != nil &&
		c.Status == metav1.ConditionFalse && c.Reason == d.Reason {
		return
	}
	approvals.WithLabelValues(string(d.Verdict)).Inc()
}
