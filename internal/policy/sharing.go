package policy

import (
	"fmt"
	"sort"
	"strings"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// One Subscription per package and install namespace serves every stack that
// installs the package there. These choices say whose settings it is made
// with and who has a say on its InstallPlans.

// SubscriptionSettings are the shared Subscription's settings a stack must
// agree with to be served by it.
type SubscriptionSettings struct {
	Channel         string
	Source          string
	SourceNamespace string
}

// SettingsOf are the Subscription settings a stack asks for.
func SettingsOf(op platformv1alpha1.OperatorSpec) SubscriptionSettings {
	return SubscriptionSettings{Channel: op.Channel, Source: op.Source, SourceNamespace: op.SourceNamespace}
}

// Mismatch says how a Subscription's settings differ from what a stack asks
// for; empty when they agree.
func Mismatch(sub SubscriptionSettings, op platformv1alpha1.OperatorSpec) string {
	var diffs []string
	if sub.Channel != op.Channel {
		diffs = append(diffs, fmt.Sprintf("follows channel %q where this stack asks for %q", sub.Channel, op.Channel))
	}
	if sub.Source != op.Source || sub.SourceNamespace != op.SourceNamespace {
		diffs = append(diffs, fmt.Sprintf("uses catalog %s/%s where this stack asks for %s/%s", sub.SourceNamespace, sub.Source, op.SourceNamespace, op.Source))
	}
	return strings.Join(diffs, " and ")
}

// OldestFirst sorts stacks by creation, then by namespace/name, so that
// every reconcile, whichever stack it is for, sees them in one order.
func OldestFirst(stacks []platformv1alpha1.PostgresStack) {
	sort.SliceStable(stacks, func(i, j int) bool {
		a, b := stacks[i], stacks[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
}

// Seed is the stack whose settings the shared Subscription is created with:
// the oldest of the live stacks using the package (users, oldest first), so
// that which stack happens to reconcile first does not decide; the stack
// itself when there are none.
func Seed(users []platformv1alpha1.PostgresStack, self *platformv1alpha1.PostgresStack) *platformv1alpha1.PostgresStack {
	if len(users) > 0 {
		return &users[0]
	}
	return self
}

// Voters are the policies that judge the Subscription's InstallPlans: every
// stack it serves (its settings agree), never a conflicting one; the judging
// stack alone when none agree (it is then stalled on the conflict anyway,
// and its own policy is the strictest say left).
func Voters(sub SubscriptionSettings, users []platformv1alpha1.PostgresStack, self *platformv1alpha1.PostgresStack) []StackPolicy {
	var out []StackPolicy
	for i := range users {
		if Mismatch(sub, users[i].Spec.Operator) == "" {
			out = append(out, PolicyOf(&users[i]))
		}
	}
	if len(out) == 0 {
		out = []StackPolicy{PolicyOf(self)}
	}
	return out
}

// PolicyOf is a stack's say over the operator it shares.
func PolicyOf(s *platformv1alpha1.PostgresStack) StackPolicy {
	return StackPolicy{Stack: s.Namespace + "/" + s.Name, Approval: s.Spec.Operator.Approval,
		Versions: s.Spec.Operator.Versions, MaintenanceWindow: s.Spec.Operator.MaintenanceWindow}
}
