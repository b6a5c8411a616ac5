package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/policy"
	"github.com/pgstack/pgstack/test/expect"
)

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
