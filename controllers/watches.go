package controllers

import (
	"context"
	"errors"
	"fmt"

	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
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
)

// indexOperatorNamespace indexes stacks by spec.operator.namespace, so that an
// event on an OLM object finds the stacks it concerns without a full scan.
const indexOperatorNamespace = "spec.operator.namespace"

var olmSubscriptionGK = schema.GroupKind{Group: operatorsv1alpha1.GroupName, Kind: operatorsv1alpha1.SubscriptionKind}

// The CRDs whose arrival lets a stalled stack go on.
var watchedCRDs = map[string]bool{
	"subscriptions.operators.coreos.com":          true,
	"installplans.operators.coreos.com":           true,
	"clusterserviceversions.operators.coreos.com": true,
	"operatorgroups.operators.coreos.com":         true,
	pgo.PostgresClusterCRD:                        true,
}

// CacheOptions are the manager's cache options: managed fields are dropped
// from everything cached.
func CacheOptions() cache.Options {
	return cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
}

// olmCacheOptions keep memory flat as namespaces grow: copied CSVs (one per
// namespace under an AllNamespaces OperatorGroup) never enter the cache, and
// InstallPlans are cached without the manifests they carry (PGO's CRD alone
// is 1.4 MB). OLM's kinds live in a cache of their own because a label
// selector per kind needs the kind served when the cache is made, and OLM
// may be installed after pgstack.
func olmCacheOptions(mgr ctrl.Manager) cache.Options {
	notCopied, err := labels.NewRequirement(operatorsv1alpha1.CopiedLabelKey, selection.DoesNotExist, nil)
	if err != nil {
		panic(err)
	}
	return cache.Options{
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&operatorsv1alpha1.ClusterServiceVersion{}: {
				Label:     labels.NewSelector().Add(*notCopied),
				Transform: stripCSV,
			},
			&operatorsv1alpha1.InstallPlan{}: {Transform: stripInstallPlan},
		},
	}
}

// stripInstallPlan keeps what approval needs: spec, phase, conditions.
func stripInstallPlan(obj any) (any, error) {
	if ip, ok := obj.(*operatorsv1alpha1.InstallPlan); ok {
		ip.ManagedFields = nil
		ip.Status.Plan = nil
		ip.Status.BundleLookups = nil
		ip.Status.AttenuatedServiceAccountRef = nil
	}
	return obj, nil
}

// stripCSV keeps a CSV's identity, its status and its Deployments'
// containers' names and env (PGO's RELATED_IMAGE_* defaults, which the image
// check reads); the rest of its spec (permissions, descriptions, icons,
// pod templates) is not read.
func stripCSV(obj any) (any, error) {
	if csv, ok := obj.(*operatorsv1alpha1.ClusterServiceVersion); ok {
		csv.ManagedFields = nil
		var deployments []operatorsv1alpha1.StrategyDeploymentSpec
		for _, d := range csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs {
			kept := operatorsv1alpha1.StrategyDeploymentSpec{Name: d.Name}
			for _, c := range d.Spec.Template.Spec.Containers {
				kept.Spec.Template.Spec.Containers = append(kept.Spec.Template.Spec.Containers,
					corev1.Container{Name: c.Name, Env: c.Env, EnvFrom: c.EnvFrom})
			}
			deployments = append(deployments, kept)
		}
		csv.Spec = operatorsv1alpha1.ClusterServiceVersionSpec{Version: csv.Spec.Version, Replaces: csv.Spec.Replaces,
			InstallStrategy: operatorsv1alpha1.NamedInstallStrategy{StrategyName: csv.Spec.InstallStrategy.StrategyName,
				StrategySpec: operatorsv1alpha1.StrategyDetailsDeployment{DeploymentSpecs: deployments}}}
		csv.Annotations = nil
	}
	return obj, nil
}

var _ toolscache.TransformFunc = stripInstallPlan

// SetupWithManager registers the reconciler, its index and its watches. OLM's
// and PGO's kinds are watched as soon as their APIs are served, which may be
// after the manager starts.
func (r *PostgresStackReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &platformv1alpha1.PostgresStack{}, indexOperatorNamespace,
		func(o client.Object) []string {
			return []string{o.(*platformv1alpha1.PostgresStack).Spec.Operator.Namespace}
		}); err != nil {
		return err
	}
	r.manager = mgr
	c, err := ctrl.NewControllerManagedBy(mgr).
		// Status writes (our own) do not wake a stack; spec changes, deletion
		// and annotations (a person asking for a look now) do.
		For(&platformv1alpha1.PostgresStack{}, builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, deletionStarted{}))).
		WatchesMetadata(&apiextensionsv1.CustomResourceDefinition{}, handler.EnqueueRequestsFromMapFunc(r.allStacks),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return watchedCRDs[o.GetName()] }))).
		Named("postgresstack").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Build(r)
	if err != nil {
		return err
	}
	r.controller = c
	return nil
}

// deletionStarted lets through the update that sets deletionTimestamp.
type deletionStarted struct{ predicate.Funcs }

func (deletionStarted) Update(e event.UpdateEvent) bool {
	return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
}

// ensureWatches starts the watches on OLM's and PGO's kinds once their APIs
// are served.
func (r *PostgresStackReconciler) ensureWatches(ctx context.Context) error {
	r.watchedMu.Lock()
	defer r.watchedMu.Unlock()
	if r.controller == nil {
		return nil
	}
	log := logf.FromContext(ctx)
	if r.olmReader == nil && r.olmServed() {
		olmCache, err := cache.New(r.manager.GetConfig(), olmCacheOptions(r.manager))
		if err != nil {
			return fmt.Errorf("create OLM cache: %w", err)
		}
		if err := r.manager.Add(olmCache); err != nil {
			return fmt.Errorf("start OLM cache: %w", err)
		}
		toStacks := handler.EnqueueRequestsFromMapFunc(r.stacksInNamespaceOf)
		for _, obj := range []client.Object{&operatorsv1alpha1.Subscription{}, &operatorsv1alpha1.InstallPlan{},
			&operatorsv1alpha1.ClusterServiceVersion{}, &operatorsv1.OperatorGroup{}} {
			if err := r.controller.Watch(source.Kind(olmCache, obj, toStacks)); err != nil {
				return fmt.Errorf("watch OLM kind %T: %w", obj, err)
			}
		}
		// A first install waits on its catalog; wake the stacks that name it
		// when it appears, goes, or its connection changes state (OLM writes
		// CatalogSource status often; nothing else in it matters here).
		if err := r.controller.Watch(source.Kind[client.Object](olmCache, &operatorsv1alpha1.CatalogSource{},
			handler.EnqueueRequestsFromMapFunc(r.stacksUsingCatalog), catalogStateChanged{})); err != nil {
			return fmt.Errorf("watch CatalogSources: %w", err)
		}
		if !olmCache.WaitForCacheSync(ctx) {
			return fmt.Errorf("OLM cache did not sync")
		}
		r.olmReader = olmCache
		log.Info("watching OLM's Subscriptions, InstallPlans, CSVs and OperatorGroups")
	}
	if r.pgoReader == nil && r.pgoServed() {
		// Only the PostgresClusters pgstack manages are cached: a cluster with
		// many PostgresClusters of its own costs the manager no memory.
		managed := labels.SelectorFromSet(labels.Set{ManagedLabel: ManagedValue})
		pgoCache, err := cache.New(r.manager.GetConfig(), cache.Options{
			Scheme: r.manager.GetScheme(), Mapper: r.manager.GetRESTMapper(),
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject:         map[client.Object]cache.ByObject{pgo.NewPostgresCluster(): {Label: managed}},
		})
		if err != nil {
			return fmt.Errorf("create PostgresCluster cache: %w", err)
		}
		if err := r.manager.Add(pgoCache); err != nil {
			return fmt.Errorf("start PostgresCluster cache: %w", err)
		}
		if err := r.controller.Watch(source.Kind[client.Object](pgoCache, pgo.NewPostgresCluster(), handler.EnqueueRequestsFromMapFunc(stackOfPostgresCluster))); err != nil {
			return fmt.Errorf("watch PostgresClusters: %w", err)
		}
		if !pgoCache.WaitForCacheSync(ctx) {
			return fmt.Errorf("PostgresCluster cache did not sync")
		}
		r.pgoReader = pgoCache
		log.Info("watching the PostgresClusters pgstack manages")
	}
	return nil
}

// apiPending reports whether a CRD exists that its API server does not serve
// yet: discovery follows a CRD's Established condition by a moment, and no
// further CRD event comes to say it caught up, so the caller looks again soon.
func (r *PostgresStackReconciler) apiPending(ctx context.Context, crd string) bool {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	return r.Get(ctx, client.ObjectKey{Name: crd}, meta) == nil
}

// errAPIPending is transient: the stack is retried with backoff until
// discovery serves the CRD's API.
var errAPIPending = errors.New("a CRD exists whose API is not served yet; retrying")

func (r *PostgresStackReconciler) olmServed() bool {
	_, err := r.RESTMapper().RESTMapping(olmSubscriptionGK, operatorsv1alpha1.SchemeGroupVersion.Version)
	return err == nil
}

func (r *PostgresStackReconciler) pgoServed() bool {
	_, err := r.RESTMapper().RESTMapping(pgo.PostgresClusterGVK.GroupKind(), pgo.PostgresClusterGVK.Version)
	return err == nil
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

// stackOfPostgresCluster maps a PostgresCluster pgstack manages to its stack,
// which has the same name and namespace.
func stackOfPostgresCluster(_ context.Context, o client.Object) []reconcile.Request {
	if o.GetLabels()[ManagedLabel] != ManagedValue {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
}

func requests(list *platformv1alpha1.PostgresStackList) []reconcile.Request {
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, s := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&s)})
	}
	return out
}

// pgo is the reader of the managed PostgresClusters' cache, nil until PGO's
// API is served.
func (r *PostgresStackReconciler) pgo() client.Reader {
	r.watchedMu.Lock()
	defer r.watchedMu.Unlock()
	return r.pgoReader
}

// olm is the reader of OLM's cache, nil until OLM's API is served. It is
// read under the lock ensureWatches sets it under, so that reconciles may run
// concurrently.
func (r *PostgresStackReconciler) olm() client.Reader {
	r.watchedMu.Lock()
	defer r.watchedMu.Unlock()
	return r.olmReader
}

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
