package controllers

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

var (
	approvals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pgstack_installplan_decisions_total",
		Help: "InstallPlan decisions pgstack made, by verdict (Approve, Wait, Refuse).",
	}, []string{"verdict"})
	stacksByReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pgstack_stacks",
		Help: "PostgresStacks by the status of their Ready condition (True, False, Unknown) and Stalled.",
	}, []string{"ready", "stalled"})
	reconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pgstack_reconcile_errors_total",
		Help: "Reconcile errors by phase (operator, cluster, delete, status).",
	}, []string{"phase"})
)

func init() {
	metrics.Registry.MustRegister(approvals, stacksByReady, reconcileErrors)
}

// stackStates remembers each stack's last reported state, so the gauge counts
// every stack once.
var stackStates = struct {
	sync.Mutex
	m map[types.NamespacedName][2]string
}{m: map[types.NamespacedName][2]string{}}

func recordStackState(stack *platformv1alpha1.PostgresStack, s platformv1alpha1.PostgresStackStatus) {
	state := [2]string{conditionStatus(s.Conditions, platformv1alpha1.ConditionReady), conditionStatus(s.Conditions, platformv1alpha1.ConditionStalled)}
	key := types.NamespacedName{Namespace: stack.Namespace, Name: stack.Name}
	stackStates.Lock()
	defer stackStates.Unlock()
	if old, ok := stackStates.m[key]; ok {
		if old == state {
			return
		}
		stacksByReady.WithLabelValues(old[0], old[1]).Dec()
	}
	stackStates.m[key] = state
	stacksByReady.WithLabelValues(state[0], state[1]).Inc()
}

func forgetStack(key types.NamespacedName) {
	stackStates.Lock()
	defer stackStates.Unlock()
	if old, ok := stackStates.m[key]; ok {
		stacksByReady.WithLabelValues(old[0], old[1]).Dec()
		delete(stackStates.m, key)
	}
}

func conditionStatus(conds []metav1.Condition, t string) string {
	if c := meta.FindStatusCondition(conds, t); c != nil {
		return string(c.Status)
	}
	return string(metav1.ConditionUnknown)
}
