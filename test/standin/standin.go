// Package standin is the pgo stand-in: a small controller that moves
// PostgresCluster status the way PGO does, for a local cluster where PGO's
// operator image cannot run (kwok nodes run no containers).
//
// It acts only while PGO's CSV in the install namespace is Succeeded, as
// the real operator only runs then. It never runs inside pgstack's manager.
// For each PostgresCluster it sets, as PGO v5.8 does:
//   - status.observedGeneration;
//   - status.instances[] {name, replicas, readyReplicas, updatedReplicas} per
//     instance set, ready after Options.ReadyDelay;
//   - conditions PGBackRestReplicaRepoReady and PGBackRestReplicaCreate
//     (True once the instances are ready) when spec.backups.pgbackrest is set;
//   - condition ProxyAvailable when spec.proxy.pgBouncer is set;
//   - condition Progressing=False, reason Paused, when spec.paused (and
//     nothing else, as PGO stops reconciling a paused cluster).
//
// Faults on demand: the annotation NeverReadyAnnotation lists instance sets
// (comma-separated, or "*") that never become ready.
package standin

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pgstack/pgstack/internal/testenv"
)

// PostgresClusterGVK is the kind the stand-in moves.
var PostgresClusterGVK = schema.GroupVersionKind{Group: "postgres-operator.crunchydata.com", Version: "v1beta1", Kind: "PostgresCluster"}

// NeverReadyAnnotation on a PostgresCluster names instance sets
// (comma-separated, or "*" for all) that never become ready.
const NeverReadyAnnotation = "standin.pgstack.dev/never-ready"

// FieldManager is the field manager of the stand-in's status writes.
const FieldManager = "pgo-standin"

// Condition types PGO sets, and the reasons the stand-in uses.
const (
	ConditionRepoReady     = "PGBackRestReplicaRepoReady"
	ConditionReplicaCreate = "PGBackRestReplicaCreate"
	ConditionProxy         = "ProxyAvailable"
	ConditionProgressing   = "Progressing"
	ReasonPaused           = "Paused"
)

// Options configure the stand-in.
type Options struct {
	// OperatorNamespace is where PGO's CSV is installed (default "operators").
	OperatorNamespace string
	// CSVPrefix identifies PGO's CSV by name (default "postgresoperator.v").
	CSVPrefix string
	// ReadyDelay is how long an instance set takes to become ready after the
	// stand-in first sees a generation (default 0).
	ReadyDelay time.Duration
	// Workers is how many PostgresClusters it moves at once (default 1).
	Workers int
}

func (o *Options) defaults() {
	if o.OperatorNamespace == "" {
		o.OperatorNamespace = "operators"
	}
	if o.CSVPrefix == "" {
		o.CSVPrefix = "postgresoperator.v"
	}
}

// Start runs the stand-in with its own manager against cfg until ctx ends.
// It returns once the stand-in's caches have synced.
func Start(ctx context.Context, cfg *rest.Config, opts Options) error {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testenv.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return fmt.Errorf("pgo stand-in: create manager: %w", err)
	}
	if err := SetupWithManager(mgr, opts); err != nil {
		return err
	}
	errs := make(chan error, 1)
	go func() { errs <- mgr.Start(ctx) }()
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !mgr.GetCache().WaitForCacheSync(syncCtx) {
		select {
		case err := <-errs:
			return fmt.Errorf("pgo stand-in: start: %w", err)
		default:
			return fmt.Errorf("pgo stand-in: caches did not sync")
		}
	}
	return nil
}

// SetupWithManager adds the stand-in to an existing manager (never
// pgstack's own: the stand-in is not part of the product).
func SetupWithManager(mgr manager.Manager, opts Options) error {
	opts.defaults()
	r := &reconciler{client: mgr.GetClient(), opts: opts, firstSeen: map[types.UID]seen{}}
	skipNameValidation := true
	pc := &unstructured.Unstructured{}
	pc.SetGroupVersionKind(PostgresClusterGVK)
	isPGOCSV := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == opts.OperatorNamespace && strings.HasPrefix(o.GetName(), opts.CSVPrefix)
	})
	err := ctrl.NewControllerManagedBy(mgr).
		Named("pgo-standin").
		For(pc).
		Watches(&operatorsv1alpha1.ClusterServiceVersion{}, handler.EnqueueRequestsFromMapFunc(r.everyCluster), builder.WithPredicates(isPGOCSV)).
		// One process may start a stand-in per cluster (test/bench does, a round each).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.Workers, SkipNameValidation: &skipNameValidation}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("pgo stand-in: set up controller: %w", err)
	}
	return nil
}

type seen struct {
	generation int64
	at         time.Time
}

type reconciler struct {
	client client.Client
	opts   Options

	mu        sync.Mutex
	firstSeen map[types.UID]seen
}

// everyCluster enqueues every PostgresCluster: the operator's CSV changed.
func (r *reconciler) everyCluster(ctx context.Context, _ client.Object) []reconcile.Request {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(PostgresClusterGVK.GroupVersion().WithKind("PostgresClusterList"))
	if err := r.client.List(ctx, list); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, pc := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pc)})
	}
	return reqs
}

// operatorRunning says whether PGO's CSV in the install namespace is
// Succeeded (copied CSVs elsewhere do not count).
func (r *reconciler) operatorRunning(ctx context.Context) (bool, error) {
	csvs := &operatorsv1alpha1.ClusterServiceVersionList{}
	if err := r.client.List(ctx, csvs, client.InNamespace(r.opts.OperatorNamespace)); err != nil {
		return false, err
	}
	for _, csv := range csvs.Items {
		if strings.HasPrefix(csv.Name, r.opts.CSVPrefix) && !csv.IsCopied() && csv.Status.Phase == operatorsv1alpha1.CSVPhaseSucceeded {
			return true, nil
		}
	}
	return false, nil
}

func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pc := &unstructured.Unstructured{}
	pc.SetGroupVersionKind(PostgresClusterGVK)
	if err := r.client.Get(ctx, req.NamespacedName, pc); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	running, err := r.operatorRunning(ctx)
	if err != nil || !running {
		return reconcile.Result{}, err
	}
	if pc.GetDeletionTimestamp() != nil {
		return reconcile.Result{}, nil
	}
	now := time.Now()
	since := r.since(pc, now)
	status, wait := r.desiredStatus(pc, now.Sub(since))
	old, _, _ := unstructured.NestedMap(pc.Object, "status")
	if !reflect.DeepEqual(normalize(old), normalize(status)) {
		pc.Object["status"] = status
		if err := r.client.Status().Update(ctx, pc, client.FieldOwner(FieldManager)); err != nil {
			return reconcile.Result{}, fmt.Errorf("update status of %s: %w", req, err)
		}
	}
	return reconcile.Result{RequeueAfter: wait}, nil
}

// since is when the stand-in first saw the cluster's current generation.
func (r *reconciler) since(pc *unstructured.Unstructured, now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.firstSeen[pc.GetUID()]
	if !ok || s.generation != pc.GetGeneration() {
		s = seen{generation: pc.GetGeneration(), at: now}
		r.firstSeen[pc.GetUID()] = s
	}
	return s.at
}

// desiredStatus is PGO's status for pc after age of the current
// generation, and how long until it would change by itself (0: never).
func (r *reconciler) desiredStatus(pc *unstructured.Unstructured, age time.Duration) (map[string]any, time.Duration) {
	old, _, _ := unstructured.NestedMap(pc.Object, "status")
	status := runtime.DeepCopyJSON(orEmpty(old))
	conditions := readConditions(status)
	generation := pc.GetGeneration()
	status["observedGeneration"] = generation

	if paused, _, _ := unstructured.NestedBool(pc.Object, "spec", "paused"); paused {
		meta.SetStatusCondition(&conditions, metav1.Condition{
			Type: ConditionProgressing, Status: metav1.ConditionFalse, Reason: ReasonPaused, ObservedGeneration: generation,
			Message: "No spec changes will be applied and no other statuses will be updated.",
		})
		writeConditions(status, conditions)
		return status, 0
	}
	meta.RemoveStatusCondition(&conditions, ConditionProgressing)

	neverReady := map[string]bool{}
	for _, name := range strings.Split(pc.GetAnnotations()[NeverReadyAnnotation], ",") {
		if name = strings.TrimSpace(name); name != "" {
			neverReady[name] = true
		}
	}
	delayOver := age >= r.opts.ReadyDelay
	sets, _, _ := unstructured.NestedSlice(pc.Object, "spec", "instances")
	instances := make([]any, 0, len(sets))
	allReady := len(sets) > 0
	for _, s := range sets {
		set, _ := s.(map[string]any)
		name, _ := set["name"].(string)
		replicas := int64(1)
		if v, ok := set["replicas"].(int64); ok {
			replicas = v
		}
		ready := delayOver && !neverReady[name] && !neverReady["*"]
		var readyReplicas int64
		if ready {
			readyReplicas = replicas
		} else {
			allReady = false
		}
		instances = append(instances, map[string]any{
			"name": name, "replicas": replicas, "readyReplicas": readyReplicas, "updatedReplicas": readyReplicas,
		})
	}
	status["instances"] = instances

	if _, backups, _ := unstructured.NestedMap(pc.Object, "spec", "backups", "pgbackrest"); backups {
		repo := metav1.Condition{Type: ConditionRepoReady, Status: metav1.ConditionFalse, Reason: "StanzaNotCreated", ObservedGeneration: generation}
		create := metav1.Condition{Type: ConditionReplicaCreate, Status: metav1.ConditionFalse, Reason: "RepoBackupNotComplete", ObservedGeneration: generation}
		if allReady {
			repo.Status, repo.Reason = metav1.ConditionTrue, "StanzaCreated"
			create.Status, create.Reason = metav1.ConditionTrue, "RepoBackupComplete"
		}
		meta.SetStatusCondition(&conditions, repo)
		meta.SetStatusCondition(&conditions, create)
	} else {
		meta.RemoveStatusCondition(&conditions, ConditionRepoReady)
		meta.RemoveStatusCondition(&conditions, ConditionReplicaCreate)
	}

	if _, pooler, _ := unstructured.NestedMap(pc.Object, "spec", "proxy", "pgBouncer"); pooler {
		proxy := metav1.Condition{Type: ConditionProxy, Status: metav1.ConditionFalse, Reason: "DeploymentNotAvailable", ObservedGeneration: generation}
		if delayOver {
			proxy.Status, proxy.Reason = metav1.ConditionTrue, "DeploymentAvailable"
		}
		meta.SetStatusCondition(&conditions, proxy)
	} else {
		meta.RemoveStatusCondition(&conditions, ConditionProxy)
	}
	writeConditions(status, conditions)

	if !delayOver {
		return status, r.opts.ReadyDelay - age
	}
	return status, 0
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func readConditions(status map[string]any) []metav1.Condition {
	raw, _, _ := unstructured.NestedSlice(status, "conditions")
	var conditions []metav1.Condition
	for _, c := range raw {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		var cond metav1.Condition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &cond); err == nil {
			conditions = append(conditions, cond)
		}
	}
	return conditions
}

func writeConditions(status map[string]any, conditions []metav1.Condition) {
	out := make([]any, 0, len(conditions))
	for i := range conditions {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&conditions[i])
		if err == nil {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		delete(status, "conditions")
		return
	}
	status["conditions"] = out
}

// normalize makes numbers comparable between what the API server returned
// (int64) and what the stand-in computed.
func normalize(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return runtime.DeepCopyJSON(m)
}
