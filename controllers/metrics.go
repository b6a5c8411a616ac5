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

	// Per stack, for alerting (config/prometheus/rules.yaml).
	stackReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pgstack_stack_ready",
		Help: "1 when the stack's Ready condition is True, else 0.",
	}, []string{"namespace", "name"})
	stackBackupsHealthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pgstack_stack_backups_healthy",
		Help: "1 when BackupsHealthy is True, 0 when False; absent for a stack without backups.",
	}, []string{"namespace", "name"})
	stackLastBackup = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pgstack_stack_last_backup_timestamp_seconds",
		Help: "When the stack's newest backup completed (status.backups.lastSuccessful), as a Unix time; absent until one has.",
	}, []string{"namespace", "name"})
	stackMajorUpgrade = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pgstack_stack_major_upgrade",
		Help: "1 for the step of the stack's major upgrade under way or last run (status.cluster.majorUpgrade.step); absent when none ran.",
	}, []string{"namespace", "name", "step"})
)

func init() {
	metrics.Registry.MustRegister(approvals, stacksByReady, reconcileErrors, stackReady, stackBackupsHealthy, stackLastBackup, stackMajorUpgrade)
}

// recordStackGauges sets the per-stack gauges from the status just computed.
func recordStackGauges(stack *platformv1alpha1.PostgresStack, s platformv1alpha1.PostgresStackStatus) {
	ns, name := stack.Namespace, stack.Name
	stackReady.WithLabelValues(ns, name).Set(boolGauge(meta.IsStatusConditionTrue(s.Conditions, platformv1alpha1.ConditionReady)))
	if c := meta.FindStatusCondition(s.Conditions, platformv1alpha1.ConditionBackupsHealthy); c != nil {
		stackBackupsHealthy.WithLabelValues(ns, name).Set(boolGauge(c.Status == metav1.ConditionTrue))
	} else {
		stackBackupsHealthy.DeleteLabelValues(ns, name)
	}
	if s.Backups != nil && s.Backups.LastSuccessful != nil {
		stackLastBackup.WithLabelValues(ns, name).Set(float64(s.Backups.LastSuccessful.Unix()))
	} else {
		stackLastBackup.DeleteLabelValues(ns, name)
	}
	for _, step := range []platformv1alpha1.MajorUpgradeStep{platformv1alpha1.UpgradeShuttingDown, platformv1alpha1.UpgradeRunning,
		platformv1alpha1.UpgradeSucceeded, platformv1alpha1.UpgradeFailed} {
		if u := s.Cluster.MajorUpgrade; u != nil && u.Step == step {
			stackMajorUpgrade.WithLabelValues(ns, name, string(step)).Set(1)
		} else {
			stackMajorUpgrade.DeleteLabelValues(ns, name, string(step))
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
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
	labels := prometheus.Labels{"namespace": key.Namespace, "name": key.Name}
	for _, g := range []*prometheus.GaugeVec{stackReady, stackBackupsHealthy, stackLastBackup, stackMajorUpgrade} {
		g.DeletePartialMatch(labels)
	}
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
