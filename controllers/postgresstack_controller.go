// Package controllers holds the PostgresStack reconciler. Each phase has its
// own file: _operator (the OLM install), _installplan (judging and approving
// plans), _cluster (the PostgresCluster), _delete (finalizer and data
// safety), _status (the one status write); watches (what wakes a stack up),
// cache (what the caches keep) and discovery (which APIs are served).
package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/status"
)

const (
	// FieldOwner is the one field manager pgstack writes with.
	FieldOwner = "pgstack"
	// Finalizer holds a stack until its PostgresCluster is retained or deleted as it asks.
	Finalizer = "platform.pgstack.dev/finalizer"
	// ManagedLabel marks objects pgstack manages (the shared Subscription, the PostgresCluster).
	ManagedLabel = "app.kubernetes.io/managed-by"
	// ManagedValue is ManagedLabel's value.
	ManagedValue = "pgstack"
)

// PostgresStackReconciler installs PGO through OLM for each PostgresStack and
// stamps out its PostgresCluster.
type PostgresStackReconciler struct {
	client.Client
	// APIReader reads past the cache, for the few reads that must be fresh.
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	// Now is the clock maintenance windows are judged by; time.Now when nil.
	Now func() time.Time
	// MaxConcurrentReconciles is how many stacks are reconciled at once (1 when 0).
	MaxConcurrentReconciles int
	// PGORecheck is how soon a stack is looked at again while an operation
	// it asked PGO for runs (DefaultPGORecheck when 0): a restart completes
	// in the instance StatefulSets, which wake no stack.
	PGORecheck time.Duration
	// ProgressInterval is the least time between two status writes that
	// only describe work in progress differently (status.Pacing); 0
	// writes every change at once. A change a reader acts on is never
	// held back.
	ProgressInterval time.Duration
	// ShowClusterProgress writes PGO's steps toward a new cluster
	// (instances, primary, stanza) as progress; without it they are
	// written with the next change a reader acts on (Ready, mostly).
	ShowClusterProgress bool

	// written is the last status written per stack, for reads the cache
	// has not caught up with.
	written writtenStatuses
	// reviews keeps each waiting plan's contents as judged once.
	reviews planReviews

	// olmWatch and pgoWatch start the caches of OLM's objects and of the
	// PostgresClusters pgstack manages once their APIs are served; see
	// watches.go.
	olmWatch, pgoWatch *dynamicWatch
}

// scope carries what one reconcile learned, so phases do not read twice.
type scope struct {
	stack *platformv1alpha1.PostgresStack
	obs   status.Observations
	// requeueAfter asks for a later look (a maintenance window opening).
	requeueAfter time.Duration
	// images are the default images the installed PGO runs clusters with,
	// read from its CSV and Subscription; nil when no CSV was read.
	images *pgo.Catalog
}

// DefaultPGORecheck is PGORecheck's default.
const DefaultPGORecheck = 15 * time.Second

// DefaultProgressInterval is the manager's --status-progress-interval
// default: PGO takes a new cluster through its states in seconds.
const DefaultProgressInterval = 10 * time.Second

func (s *scope) requeueAt(at time.Time, now time.Time) {
	d := at.Sub(now)
	if d <= 0 {
		d = time.Second
	}
	if s.requeueAfter == 0 || d < s.requeueAfter {
		s.requeueAfter = d
	}
}

// +kubebuilder:rbac:groups=platform.pgstack.dev,resources=postgresstacks,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=platform.pgstack.dev,resources=postgresstacks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=platform.pgstack.dev,resources=postgresstacks/finalizers,verbs=update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// Reconcile brings one PostgresStack closer to what it asks for.
func (r *PostgresStackReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	log := logf.FromContext(ctx)
	stack := &platformv1alpha1.PostgresStack{}
	if err := r.Get(ctx, req.NamespacedName, stack); err != nil {
		if client.IgnoreNotFound(err) == nil {
			forgetStack(req.NamespacedName)
			r.written.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	// A kind not watched yet may be served by now (a CRD event or a retry
	// brought the stack here): have a look, without waiting for it.
	if r.olm() == nil {
		r.olmWatch.kick()
	}
	if r.pgo() == nil {
		r.pgoWatch.kick()
	}

	sc := &scope{stack: stack, obs: status.Observations{Generation: stack.Generation, Deleting: !stack.DeletionTimestamp.IsZero()}}
	sc.obs.Cluster.Name = stack.Name

	// Every return path reports: status is computed from what was observed and
	// written once, only when it changed.
	defer func() {
		if !controllerutil.ContainsFinalizer(stack, Finalizer) && sc.obs.Deleting {
			return // released: the stack is gone or going, nothing to report on
		}
		// OLM's or PGO's cache is not synced yet (a manager just started):
		// this reconcile saw neither, and would unsay what the stack last
		// reported. The cache's sync wakes every stack.
		if errors.Is(retErr, errAPIPending) {
			return
		}
		if err := r.patchStatus(ctx, sc); err != nil {
			reconcileErrors.WithLabelValues("status").Inc()
			log.Error(err, "patch status")
			if retErr == nil {
				retErr = err
			}
		}
		if retErr == nil && sc.requeueAfter > 0 {
			result.RequeueAfter = sc.requeueAfter
		}
	}()

	if sc.obs.Deleting {
		if err := r.reconcileDelete(ctx, sc); err != nil {
			reconcileErrors.WithLabelValues("delete").Inc()
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, nil
	}
	if needsFinalizer(stack) && !controllerutil.ContainsFinalizer(stack, Finalizer) {
		patch := client.MergeFrom(stack.DeepCopy())
		controllerutil.AddFinalizer(stack, Finalizer)
		if err := r.Patch(ctx, stack, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer: %w", err)
		}
	}
	if err := r.reconcileOperator(ctx, sc); err != nil {
		reconcileErrors.WithLabelValues("operator").Inc()
		return ctrl.Result{}, err
	}
	if err := r.reconcileCluster(ctx, sc); err != nil {
		reconcileErrors.WithLabelValues("cluster").Inc()
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

func (r *PostgresStackReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// patchStatus writes the computed status when it differs from the stored one,
// and records the transitions a person wants to see in `kubectl describe`.
//
// It judges against the status this manager last wrote when the cache has
// not caught up with that write yet (writtenStatuses): under load a stack
// is often reconciled again before its own status write reaches the cache,
// and would otherwise write the same status, and tell the same Events, twice.
func (r *PostgresStackReconciler) patchStatus(ctx context.Context, sc *scope) error {
	stack := sc.stack
	current := r.written.current(stack)
	next := status.Compute(current, sc.obs, metav1.NewTime(r.now()))
	recordStackState(stack, next)
	recordStackGauges(stack, next)
	if equality.Semantic.DeepEqual(current, next) {
		return nil
	}
	// PGO's steps toward a new cluster wait for news a reader acts on;
	// other work in progress described differently waits until the
	// interval since the last write has passed, and the requeue writes it
	// then, unless a later reconcile has news first. Pacing is wall time,
	// not r.now (the clock windows are judged by).
	wallNow := time.Now()
	switch pace := status.Pacing(current, next); {
	case pace == status.HoldClusterProgress && !r.ShowClusterProgress:
		return nil
	case pace != status.WriteNow:
		if wait := r.written.since(stack, wallNow); wait < r.ProgressInterval {
			sc.requeueAt(wallNow.Add(r.ProgressInterval-wait), wallNow)
			return nil
		}
	}
	r.recordTransitions(stack, current, next)
	base := stack.DeepCopy()
	base.Status = current
	over := stack.ResourceVersion
	patch := client.MergeFrom(base)
	stack.Status = next
	// Which facts a write carries, for whoever counts the writes
	// (--zap-log-level=debug): the merge patch is the change itself.
	if log := logf.FromContext(ctx).V(1); log.Enabled() {
		if data, err := patch.Data(stack); err == nil {
			log.Info("writing status", "patch", string(data))
		}
	}
	if err := r.Status().Patch(ctx, stack, patch); err != nil {
		return fmt.Errorf("patch status of %s/%s: %w", stack.Namespace, stack.Name, err)
	}
	r.written.wrote(stack, over, wallNow)
	return nil
}

// NewReconciler wires a reconciler to mgr's client, reader and event recorder.
func NewReconciler(mgr ctrl.Manager) *PostgresStackReconciler {
	return &PostgresStackReconciler{
		// Every write pgstack makes carries its one field owner.
		Client:    client.WithFieldOwner(mgr.GetClient(), FieldOwner),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder(FieldOwner),
	}
}
