package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/render"
)

// indexOperatorNamespace indexes stacks by spec.operator.namespace, so that an
// event on an OLM object finds the stacks it concerns without a full scan.
const indexOperatorNamespace = "spec.operator.namespace"

// SetupWithManager registers the reconciler, its index and its watches. OLM's
// and PGO's kinds are watched as soon as their APIs are served, which may be
// after the manager starts (dynamicWatch).
func (r *PostgresStackReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &platformv1alpha1.PostgresStack{}, indexOperatorNamespace,
		func(o client.Object) []string {
			return []string{o.(*platformv1alpha1.PostgresStack).Spec.Operator.Namespace}
		}); err != nil {
		return err
	}
	// A dynamic watch's cache, once synced, wakes every stack through here:
	// the stacks that waited on its kind were only retried with backoff.
	synced := make(chan event.GenericEvent, 2)
	c, err := ctrl.NewControllerManagedBy(mgr).
		// Status writes (our own) do not wake a stack; spec changes, deletion
		// and annotations (a person asking for a look now) do.
		For(&platformv1alpha1.PostgresStack{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionStarted{}))).
		// A stack that leaves, or changes operator, takes its vote on shared
		// InstallPlans with it: the others are judged again at once.
		Watches(&platformv1alpha1.PostgresStack{}, r.neighbourEvents()).
		// A rollout policy's decisions (pin, release) reach the stacks
		// installing into its namespace.
		Watches(&platformv1alpha1.PostgresRolloutPolicy{}, handler.EnqueueRequestsFromMapFunc(r.stacksInNamespaceOf)).
		// PGO's Warnings on a PostgresCluster (a spec it refuses) reach its
		// stack; only those are cached (CacheOptions).
		Watches(&corev1.Event{}, handler.EnqueueRequestsFromMapFunc(stackOfPGOWarning)).
		// A new primary (Patroni moving its leader label) is status.cluster.primary.
		WatchesMetadata(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(stackOfPrimary), builder.WithPredicates(leaderArrivesOrLeaves)).
		WatchesMetadata(&apiextensionsv1.CustomResourceDefinition{}, handler.EnqueueRequestsFromMapFunc(r.allStacks),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return watchedCRDs[o.GetName()] }))).
		WatchesRawSource(source.Channel(synced, handler.EnqueueRequestsFromMapFunc(r.allStacks))).
		Named("postgresstack").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Build(r)
	if err != nil {
		return err
	}
	config := mgr.GetConfig()
	r.olmWatch = newDynamicWatch("OLM's Subscriptions, InstallPlans, CSVs, OperatorGroups and CatalogSources", mgr, c, synced,
		olmServed, func() (cache.Cache, error) { return cache.New(config, olmCacheOptions(mgr)) }, r.olmSources)
	r.pgoWatch = newDynamicWatch("the PostgresClusters pgstack manages", mgr, c, synced,
		pgoServed, func() (cache.Cache, error) { return cache.New(config, pgoCacheOptions(mgr)) }, r.pgoSources)
	for _, w := range []*dynamicWatch{r.olmWatch, r.pgoWatch} {
		if err := mgr.Add(w); err != nil {
			return fmt.Errorf("add dynamic watch of %s: %w", w.name, err)
		}
	}
	return nil
}

// deletionStarted lets through the update that sets deletionTimestamp.
type deletionStarted struct{ predicate.Funcs }

func (deletionStarted) Update(e event.UpdateEvent) bool {
	return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
}

// olmSources are the watches on OLM's kinds, from OLM's cache.
func (r *PostgresStackReconciler) olmSources(olmCache cache.Cache) []source.Source {
	toStacks := handler.EnqueueRequestsFromMapFunc(r.stacksInNamespaceOf)
	var sources []source.Source
	for _, obj := range []client.Object{&operatorsv1alpha1.Subscription{}, &operatorsv1alpha1.InstallPlan{},
		&operatorsv1alpha1.ClusterServiceVersion{}, &operatorsv1.OperatorGroup{}} {
		sources = append(sources, source.Kind(olmCache, obj, toStacks))
	}
	// A first install waits on its catalog; wake the stacks that name it
	// when it appears, goes, or its connection changes state (OLM writes
	// CatalogSource status often; nothing else in it matters here).
	return append(sources, source.Kind[client.Object](olmCache, &operatorsv1alpha1.CatalogSource{},
		handler.EnqueueRequestsFromMapFunc(r.stacksUsingCatalog), catalogStateChanged{}))
}

// pgoSources are the watches on the managed PostgresClusters and PGUpgrades.
func (r *PostgresStackReconciler) pgoSources(pgoCache cache.Cache) []source.Source {
	return []source.Source{
		source.Kind[client.Object](pgoCache, pgo.NewPostgresCluster(), handler.EnqueueRequestsFromMapFunc(stackOfPostgresCluster)),
		source.Kind[client.Object](pgoCache, pgo.NewPGUpgrade(), handler.EnqueueRequestsFromMapFunc(stackOfPGUpgrade)),
	}
}

// dynamicWatch starts the cache and watches of kinds whose API may be served
// only after the manager started (OLM's, PGO's). It runs beside the
// controller: a reconcile only kicks it and never waits on it; the cache is
// made and its watches registered once; and a cache that does not sync (its
// informer retries a failing list with backoff) holds up only the stacks that
// need its kind, which are retried as pending meanwhile.
type dynamicWatch struct {
	name     string
	mapper   meta.RESTMapper
	served   func(meta.RESTMapper) bool
	newCache func() (cache.Cache, error)
	sources  func(cache.Cache) []source.Source
	mgr      ctrl.Manager
	ctrl     controller.Controller
	synced   chan<- event.GenericEvent
	kicks    chan struct{}

	mu     sync.Mutex
	reader client.Reader
}

func newDynamicWatch(name string, mgr ctrl.Manager, c controller.Controller, synced chan<- event.GenericEvent,
	served func(meta.RESTMapper) bool, newCache func() (cache.Cache, error), sources func(cache.Cache) []source.Source) *dynamicWatch {
	w := &dynamicWatch{name: name, mapper: mgr.GetRESTMapper(), served: served, newCache: newCache, sources: sources,
		mgr: mgr, ctrl: c, synced: synced, kicks: make(chan struct{}, 1)}
	w.kick() // look once at start
	return w
}

// discoveryRechecks is how many seconds after a kick an API not served yet
// is looked for again.
const discoveryRechecks = 30

// kick asks for a look at discovery, without waiting for it.
func (w *dynamicWatch) kick() {
	if w == nil {
		return
	}
	select {
	case w.kicks <- struct{}{}:
	default:
	}
}

// Reader reads the kind's cache; nil until it has synced.
func (w *dynamicWatch) Reader() client.Reader {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reader
}

// Start waits for kicks until the kind is served, then makes its cache and
// registers its watches (once), waits for the cache to sync and publishes
// its reader. It runs on the leader, as the controller does.
func (w *dynamicWatch) Start(ctx context.Context) error {
	log := ctrl.Log.WithName("watches").WithValues("kinds", w.name)
	var started cache.Cache
	// A kick says the API may be served now; discovery follows a CRD by a
	// moment, so an unserved API is looked at again every second for a
	// while, rather than when the kicking stack's backoff next runs out.
	recheck := time.NewTicker(time.Second)
	defer recheck.Stop()
	rechecks := 0
	for started == nil {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kicks:
			rechecks = discoveryRechecks
		case <-recheck.C:
			if rechecks == 0 {
				continue
			}
			rechecks--
		}
		if !w.served(w.mapper) {
			continue
		}
		c, err := w.newCache()
		if err != nil {
			// Nothing is registered yet: the next kick tries again.
			log.Error(err, "create cache")
			continue
		}
		if err := w.mgr.Add(c); err != nil {
			return fmt.Errorf("start cache of %s: %w", w.name, err)
		}
		for _, src := range w.sources(c) {
			if err := w.ctrl.Watch(src); err != nil {
				return fmt.Errorf("watch %s: %w", w.name, err)
			}
		}
		started = c
	}
	log.Info("waiting for the cache to sync")
	if !started.WaitForCacheSync(ctx) {
		return nil // stopping
	}
	w.mu.Lock()
	w.reader = started
	w.mu.Unlock()
	log.Info("watching")
	select {
	case w.synced <- event.GenericEvent{Object: &platformv1alpha1.PostgresStack{}}:
	case <-ctx.Done():
	}
	return nil
}

// neighbourEvents wakes the stacks that share an operator (install namespace
// and package) with a stack that is deleted, starts deleting, or changes
// spec.operator: every stack the Subscription serves has a say on its
// InstallPlans, so a plan only the leaving stack held back must be judged
// again now, not on some unrelated event. It works from the event's own
// object, since a stack without a finalizer is gone before any reconcile.
func (r *PostgresStackReconciler) neighbourEvents() handler.EventHandler {
	return handler.Funcs{
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			before, ok1 := e.ObjectOld.(*platformv1alpha1.PostgresStack)
			after, ok2 := e.ObjectNew.(*platformv1alpha1.PostgresStack)
			if !ok1 || !ok2 {
				return
			}
			leaving := before.DeletionTimestamp.IsZero() && !after.DeletionTimestamp.IsZero()
			moved := !equality.Semantic.DeepEqual(before.Spec.Operator, after.Spec.Operator)
			if leaving || moved {
				r.wakeNeighbours(ctx, q, before)
			}
			if moved {
				r.wakeNeighbours(ctx, q, after)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if stack, ok := e.Object.(*platformv1alpha1.PostgresStack); ok {
				r.wakeNeighbours(ctx, q, stack)
			}
		},
	}
}

func (r *PostgresStackReconciler) wakeNeighbours(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], stack *platformv1alpha1.PostgresStack) {
	list := &platformv1alpha1.PostgresStackList{}
	if err := r.List(ctx, list, client.MatchingFields{indexOperatorNamespace: stack.Spec.Operator.Namespace}); err != nil {
		logf.FromContext(ctx).Error(err, "list the stacks sharing an operator", "namespace", stack.Spec.Operator.Namespace)
		return
	}
	self := client.ObjectKeyFromObject(stack)
	for i := range list.Items {
		n := &list.Items[i]
		if key := client.ObjectKeyFromObject(n); key != self && n.Spec.Operator.Package == stack.Spec.Operator.Package {
			q.Add(reconcile.Request{NamespacedName: key})
		}
	}
}

// stacksInNamespaceOf maps an OLM object to the stacks installing into its namespace.
func (r *PostgresStackReconciler) stacksInNamespaceOf(ctx context.Context, o client.Object) []reconcile.Request {
	list := &platformv1alpha1.PostgresStackList{}
	if err := r.List(ctx, list, client.MatchingFields{indexOperatorNamespace: o.GetNamespace()}); err != nil {
		logf.FromContext(ctx).Error(err, "map OLM object to stacks", "namespace", o.GetNamespace())
		return nil
	}
	return requests(list)
}

func (r *PostgresStackReconciler) allStacks(ctx context.Context, _ client.Object) []reconcile.Request {
	list := &platformv1alpha1.PostgresStackList{}
	if err := r.List(ctx, list); err != nil {
		logf.FromContext(ctx).Error(err, "list stacks")
		return nil
	}
	return requests(list)
}

// stackOfPGOWarning maps a Warning PGO recorded on a PostgresCluster to the
// stack of the same name.
func stackOfPGOWarning(_ context.Context, o client.Object) []reconcile.Request {
	e, ok := o.(*corev1.Event)
	if !ok || e.Source.Component != pgo.EventSource || e.InvolvedObject.Kind != pgo.PostgresClusterGVK.Kind {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: e.InvolvedObject.Namespace, Name: e.InvolvedObject.Name}}}
}

// stackOfPostgresCluster maps a PostgresCluster pgstack manages to its stack,
// which has the same name and namespace.
func stackOfPostgresCluster(_ context.Context, o client.Object) []reconcile.Request {
	if o.GetLabels()[ManagedLabel] != ManagedValue {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
}

// stackOfPrimary maps a leader pod to the stack of its cluster: pgstack's
// PostgresClusters take their stack's name.
func stackOfPrimary(_ context.Context, o client.Object) []reconcile.Request {
	cluster := o.GetLabels()[labelPGOCluster]
	if cluster == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: cluster}}}
}

// leaderArrivesOrLeaves lets through a pod becoming or ceasing to be leader,
// which the cache's role selector delivers as a create or a delete, and no
// update: a cached pod is a leader before and after, and Patroni rewrites
// its status annotation on every change of WAL position.
var leaderArrivesOrLeaves = predicate.Funcs{UpdateFunc: func(event.UpdateEvent) bool { return false }}

// stackOfPGUpgrade maps a PGUpgrade pgstack made to its stack, named by
// the stack label the PGUpgrade takes from its PostgresCluster.
func stackOfPGUpgrade(_ context.Context, o client.Object) []reconcile.Request {
	stack := o.GetLabels()[render.LabelStack]
	if o.GetLabels()[ManagedLabel] != ManagedValue || stack == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: stack}}}
}

func requests(list *platformv1alpha1.PostgresStackList) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, s := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
	}
	return out
}

// pgo is the reader of the managed PostgresClusters' cache, nil until PGO's
// API is served and the cache synced.
func (r *PostgresStackReconciler) pgo() client.Reader { return r.pgoWatch.Reader() }

// olm is the reader of OLM's cache, nil until OLM's API is served and the
// cache synced.
func (r *PostgresStackReconciler) olm() client.Reader { return r.olmWatch.Reader() }

// stacksUsingCatalog maps a CatalogSource to the stacks that install from it.
func (r *PostgresStackReconciler) stacksUsingCatalog(ctx context.Context, o client.Object) []reconcile.Request {
	list := &platformv1alpha1.PostgresStackList{}
	if err := r.List(ctx, list); err != nil {
		logf.FromContext(ctx).Error(err, "map CatalogSource to stacks")
		return nil
	}
	var out []reconcile.Request
	for _, s := range list.Items {
		if s.Spec.Operator.Source == o.GetName() && s.Spec.Operator.SourceNamespace == o.GetNamespace() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
		}
	}
	return out
}

// catalogStateChanged passes a CatalogSource's creation and deletion, and
// updates that change its connection state.
type catalogStateChanged struct{ predicate.Funcs }

func (catalogStateChanged) Update(e event.UpdateEvent) bool {
	return connectionState(e.ObjectOld) != connectionState(e.ObjectNew)
}

func connectionState(o client.Object) string {
	if cs, ok := o.(*operatorsv1alpha1.CatalogSource); ok && cs.Status.GRPCConnectionState != nil {
		return cs.Status.GRPCConnectionState.LastObservedState
	}
	return ""
}
