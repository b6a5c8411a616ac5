package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
)

var (
	stacksGVR   = platformv1alpha1.GroupVersion.WithResource("postgresstacks")
	csvsGVR     = operatorsv1alpha1.SchemeGroupVersion.WithResource("clusterserviceversions")
	clustersGVR = schema.GroupVersionResource{Group: pgo.PostgresClusterGVK.Group, Version: pgo.PostgresClusterGVK.Version, Resource: "postgresclusters"}
)

// tracker watches, from the bench process, what the figures are judged on,
// and stamps each event with the time it was received here.
type tracker struct {
	dynamic   dynamic.Interface
	metadata  metadata.Interface
	discovery discovery.DiscoveryInterface
	operators string // PGO's install namespace

	mu sync.Mutex
	// csvSucceeded is when PGO's CSV (not a copy) was first seen Succeeded.
	csvSucceeded time.Time
	clusterReady map[string]bool // by pgo.ClusterReadiness
	stackReady   map[string]bool // Ready=True for the current generation
	// clusterReadyAt and stackReadyAt are when each was first seen ready,
	// by the bench's clock: the lag from PGO's word to the stack's.
	clusterReadyAt map[string]time.Time
	stackReadyAt   map[string]time.Time
	// updates counts changes by kind, to say what woke the manager in steady state.
	updates map[string]float64
	// lastCopy is when the latest of OLM's copied CSVs was seen.
	lastCopy time.Time
}

func newTracker(cfg *rest.Config, operatorsNamespace string) (*tracker, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	return &tracker{dynamic: dyn, discovery: disc, metadata: meta, operators: operatorsNamespace,
		clusterReady: map[string]bool{}, stackReady: map[string]bool{}, updates: map[string]float64{},
		clusterReadyAt: map[string]time.Time{}, stackReadyAt: map[string]time.Time{}}, nil
}

// start watches stacks and PGO's CSV now, and PostgresClusters as soon as
// their API is served (OLM installs PGO's CRDs with its CSV).
func (t *tracker) start(ctx context.Context) error {
	all := dynamicinformer.NewDynamicSharedInformerFactory(t.dynamic, 0)
	stacks := all.ForResource(stacksGVR).Informer()
	if _, err := stacks.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.observeStack(o) },
		UpdateFunc: func(_, o any) { t.observeStack(o) },
	}); err != nil {
		return fmt.Errorf("watch stacks: %w", err)
	}
	pgoCSVs := dynamicinformer.NewFilteredDynamicSharedInformerFactory(t.dynamic, 0, t.operators, func(o *metav1.ListOptions) {
		o.LabelSelector = "!" + operatorsv1alpha1.CopiedLabelKey
	})
	csvs := pgoCSVs.ForResource(csvsGVR).Informer()
	if _, err := csvs.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.observeCSV(o) },
		UpdateFunc: func(_, o any) { t.observeCSV(o) },
	}); err != nil {
		return fmt.Errorf("watch CSVs: %w", err)
	}
	synced := []toolscache.InformerSynced{stacks.HasSynced, csvs.HasSynced}
	// What else the manager watches, counted only.
	inOperators := dynamicinformer.NewFilteredDynamicSharedInformerFactory(t.dynamic, 0, t.operators, nil)
	for _, watched := range []struct {
		kind     string
		informer toolscache.SharedIndexInformer
	}{
		{"PostgresStack", stacks},
		{"ClusterServiceVersion", csvs},
		{"Subscription", inOperators.ForResource(operatorsv1alpha1.SchemeGroupVersion.WithResource("subscriptions")).Informer()},
		{"InstallPlan", inOperators.ForResource(operatorsv1alpha1.SchemeGroupVersion.WithResource("installplans")).Informer()},
		{"OperatorGroup", inOperators.ForResource(operatorsv1.SchemeGroupVersion.WithResource("operatorgroups")).Informer()},
		{"CustomResourceDefinition", all.ForResource(apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")).Informer()},
	} {
		if _, err := watched.informer.AddEventHandler(t.counter(watched.kind)); err != nil {
			return fmt.Errorf("watch %s: %w", watched.kind, err)
		}
		synced = append(synced, watched.informer.HasSynced)
	}
	// OLM's copies, by metadata only (each is a whole CSV).
	copies := metadatainformer.NewFilteredSharedInformerFactory(t.metadata, 0, metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.LabelSelector = operatorsv1alpha1.CopiedLabelKey
	})
	copied := copies.ForResource(csvsGVR).Informer()
	if _, err := copied.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(any) {
		t.mu.Lock()
		t.lastCopy = time.Now()
		t.mu.Unlock()
	}}); err != nil {
		return fmt.Errorf("watch copied CSVs: %w", err)
	}
	synced = append(synced, copied.HasSynced)
	all.Start(ctx.Done())
	pgoCSVs.Start(ctx.Done())
	inOperators.Start(ctx.Done())
	copies.Start(ctx.Done())
	for _, synced := range synced {
		if !toolscache.WaitForCacheSync(ctx.Done(), synced) {
			return fmt.Errorf("the bench's watches did not sync")
		}
	}
	go t.watchClustersOnceServed(ctx)
	return nil
}

func (t *tracker) watchClustersOnceServed(ctx context.Context) {
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for !t.clustersServed() {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(t.dynamic, 0)
	clusters := factory.ForResource(clustersGVR).Informer()
	_, _ = clusters.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    t.observeCluster,
		UpdateFunc: func(_, o any) { t.observeCluster(o) },
	})
	_, _ = clusters.AddEventHandler(t.counter("PostgresCluster"))
	factory.Start(ctx.Done())
	toolscache.WaitForCacheSync(ctx.Done(), clusters.HasSynced)
}

func (t *tracker) clustersServed() bool {
	list, err := t.discovery.ServerResourcesForGroupVersion(clustersGVR.GroupVersion().String())
	if err != nil {
		return false
	}
	return slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == clustersGVR.Resource })
}

func key(o *unstructured.Unstructured) string { return o.GetNamespace() + "/" + o.GetName() }

func (t *tracker) observeStack(o any) {
	now := time.Now()
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	ready := false
	observed, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		m, _ := c.(map[string]any)
		if m["type"] == platformv1alpha1.ConditionReady && m["status"] == string(metav1.ConditionTrue) && observed == u.GetGeneration() {
			ready = true
		}
	}
	t.mu.Lock()
	t.stackReady[key(u)] = ready
	if _, seen := t.stackReadyAt[key(u)]; ready && !seen {
		t.stackReadyAt[key(u)] = now
	}
	t.mu.Unlock()
}

func (t *tracker) observeCSV(o any) {
	now := time.Now()
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	if phase != string(operatorsv1alpha1.CSVPhaseSucceeded) {
		return
	}
	t.mu.Lock()
	if t.csvSucceeded.IsZero() {
		t.csvSucceeded = now
	}
	t.mu.Unlock()
}

func (t *tracker) observeCluster(o any) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	now := time.Now()
	ready := pgo.ClusterReadiness(u).Ready
	t.mu.Lock()
	defer t.mu.Unlock()
	t.clusterReady[key(u)] = ready
	if _, seen := t.clusterReadyAt[key(u)]; ready && !seen {
		t.clusterReadyAt[key(u)] = now
	}
}

// readyLags is, for each of keys whose PostgresCluster and stack were both
// seen ready, how long after PGO's readiness the stack turned Ready (zero
// when the stack's Ready was seen first: both came from one watch each, so
// their order is the order the bench received them).
func (t *tracker) readyLags(keys []string) []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lags []time.Duration
	for _, k := range keys {
		pc, ok1 := t.clusterReadyAt[k]
		st, ok2 := t.stackReadyAt[k]
		if !ok1 || !ok2 {
			continue
		}
		lags = append(lags, max(st.Sub(pc), 0))
	}
	return lags
}

// countReady counts the stacks (or PostgresClusters) among keys that are ready.
func (t *tracker) countReady(keys []string, clusters bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.stackReady
	if clusters {
		m = t.clusterReady
	}
	n := 0
	for _, k := range keys {
		if m[k] {
			n++
		}
	}
	return n
}

func (t *tracker) csvSucceededAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.csvSucceeded
}

// counter counts a kind's changes (adds, updates, deletes).
func (t *tracker) counter(kind string) toolscache.ResourceEventHandler {
	count := func() {
		t.mu.Lock()
		t.updates[kind]++
		t.mu.Unlock()
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { count() },
		UpdateFunc: func(any, any) { count() },
		DeleteFunc: func(any) { count() },
	}
}

// changes are the running counts of changes by kind.
func (t *tracker) changes() writeCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := writeCounts{}
	for k, n := range t.updates {
		out[k] = n
	}
	return out
}

// lastCopyAt is when the latest of OLM's copied CSVs was seen.
func (t *tracker) lastCopyAt() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastCopy
}
