package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/crdcompat"
	"github.com/pgstack/pgstack/internal/installplan"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/policy"
	"github.com/pgstack/pgstack/internal/render"
)

// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get

// planReview is what a plan's contents say, read once per plan version and
// Subscription spec however many stacks judge it: the image catalog of the
// PGO it installs, and its CRDs' breaking changes.
type planReview struct {
	key     string
	next    pgo.Catalog
	version string
	unsafe  []crdcompat.Violation

	// impacts are the plan's latest preview per stack (by UID), with the
	// impactKey it was made for: every stack judging the plan previews
	// every stack sharing the operator, and without them a plan cost N²
	// previews (each reading its cluster's spec) where N suffice, as a
	// thousand stacks reconcile through an upgrade. One per stack, so a
	// plan that waits for days keeps N, however often PGO writes.
	impactsMu sync.Mutex
	impacts   map[types.UID]keptImpact
}

// keptImpact is a stack's preview and the impactKey it was made for.
type keptImpact struct {
	key    string
	impact pgo.UpgradeImpact
}

// impact is the plan's preview for one stack: what PGO would pick for req
// now and after the upgrade, worked out once per key.
func (review *planReview) impact(uid types.UID, key string, req func() (pgo.ImageRequest, bool), current pgo.Catalog) (pgo.UpgradeImpact, bool) {
	review.impactsMu.Lock()
	defer review.impactsMu.Unlock()
	if kept, ok := review.impacts[uid]; ok && kept.key == key {
		return kept.impact, true
	}
	r, ok := req()
	if !ok {
		return pgo.UpgradeImpact{}, false
	}
	got := pgo.PreviewOperatorUpgrade(r, current, review.next, review.version)
	if review.impacts == nil {
		review.impacts = map[types.UID]keptImpact{}
	}
	review.impacts[uid] = keptImpact{key: key, impact: got}
	return got, true
}

// impactKey names what a stack's preview depends on beside the review:
// the stack's spec (its generation) and its PostgresCluster as PGO sees it
// (its resourceVersion; none before it exists).
func impactKey(stack *platformv1alpha1.PostgresStack, live map[types.NamespacedName]*unstructured.Unstructured) string {
	clusterVersion := ""
	if pc := live[client.ObjectKeyFromObject(stack)]; pc != nil {
		clusterVersion = pc.GetResourceVersion()
	}
	return fmt.Sprintf("%d/%s", stack.Generation, clusterVersion)
}

// planReviews keeps the last review of each plan. A review is made once
// however many reconciles ask for it at the same time: each holds the
// plan's CRDs decoded while it runs (singleflight).
type planReviews struct {
	mu     sync.Mutex
	m      map[string]*planReview
	flight singleflight.Group
}

// reviewPlan reads the CSV and CRDs the plan installs for the Subscription's
// package (inline, or from the ConfigMap OLM unpacked the bundle into) and
// compares each CRD with the one served now. Reads go past the cache: they
// are rare (once per plan version), and caching every CRD, ConfigMap and
// plan step in the cluster would cost far more. A served CRD changed while
// the plan waits is not seen until the plan or the Subscription changes.
func (r *PostgresStackReconciler) reviewPlan(ctx context.Context, sub *operatorsv1alpha1.Subscription, plan *operatorsv1alpha1.InstallPlan) (*planReview, error) {
	name := plan.Namespace + "/" + plan.Name
	key := fmt.Sprintf("%s@%s %s sub@%d", plan.UID, plan.ResourceVersion, sub.Status.CurrentCSV, sub.Generation)
	r.reviews.mu.Lock()
	if rv := r.reviews.m[name]; rv != nil && rv.key == key {
		r.reviews.mu.Unlock()
		return rv, nil
	}
	r.reviews.mu.Unlock()
	v, err, _ := r.reviews.flight.Do(key, func() (any, error) { return r.makeReview(ctx, key, sub, plan) })
	if err != nil {
		return nil, err
	}
	return v.(*planReview), nil
}

// makeReview reads and judges a plan's contents, and keeps the review.
func (r *PostgresStackReconciler) makeReview(ctx context.Context, key string, sub *operatorsv1alpha1.Subscription, plan *operatorsv1alpha1.InstallPlan) (*planReview, error) {
	name := plan.Namespace + "/" + plan.Name
	// The cache keeps plans without their steps (cache.go): read this one whole.
	whole := &operatorsv1alpha1.InstallPlan{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(plan), whole); err != nil {
		return nil, fmt.Errorf("get install plan %s: %w", name, err)
	}
	contents, err := installplan.Read(whole, sub.Status.CurrentCSV, func(namespace, name string) (*corev1.ConfigMap, error) {
		cm := &corev1.ConfigMap{}
		return cm, r.APIReader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, cm)
	})
	if err != nil {
		return nil, err
	}
	review := &planReview{key: key, next: *imageCatalog(contents.CSV, sub), version: contents.CSV.Spec.Version.String()}
	// One CRD at a time, and only those served now: a plan's CRD is decoded
	// only to be compared.
	for _, crdName := range contents.CRDNames() {
		served := &apiextensionsv1.CustomResourceDefinition{}
		if err := r.APIReader.Get(ctx, client.ObjectKey{Name: crdName}, served); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("get CRD %s to compare with install plan %s: %w", crdName, name, err)
		}
		crd, err := contents.CRD(crdName)
		if err != nil {
			return nil, err
		}
		review.unsafe = append(review.unsafe, crdcompat.Check(served, crd)...)
	}
	r.reviews.mu.Lock()
	if r.reviews.m == nil {
		r.reviews.m = map[string]*planReview{}
	}
	r.reviews.m[name] = review
	r.reviews.mu.Unlock()
	return review, nil
}

// previewUpgrade fills the facts' hazards and preview for a plan that
// upgrades an installed PGO, and returns what it would do to this stack.
func (r *PostgresStackReconciler) previewUpgrade(ctx context.Context, sc *scope, sub *operatorsv1alpha1.Subscription, plan *operatorsv1alpha1.InstallPlan,
	users []platformv1alpha1.PostgresStack, facts *policy.Facts) (*platformv1alpha1.PendingUpgradeStatus, error) {
	review, err := r.reviewPlan(ctx, sub, plan)
	if err != nil {
		return nil, err
	}
	if len(review.unsafe) > 0 {
		facts.Hazards = append(facts.Hazards, policy.Hazard{Reason: policy.ReasonUnsafeCRDChange, Message: unsafeMessage(plan.Name, review.unsafe)})
	}
	preview := &platformv1alpha1.PendingUpgradeStatus{Version: review.version, InstallPlan: plan.Name}
	if sc.images == nil || sub.Status.InstalledCSV == "" {
		// A first install restarts nothing; only its CRDs are judged.
		preview.Blocked = firstHazard(facts.Hazards)
		return preview, nil
	}
	live, err := r.liveClusters(ctx)
	if err != nil {
		return nil, err
	}
	var restarting, stranded []string
	strandedWhy := ""
	for i := range users {
		u := &users[i]
		impact, ok := review.impact(u.UID, impactKey(u, live), func() (pgo.ImageRequest, bool) { return imageRequest(u, live) }, *sc.images)
		if !ok {
			continue
		}
		name := u.Namespace + "/" + u.Name
		if impact.Restarts {
			restarting = append(restarting, name)
		}
		if impact.Stranded != "" {
			stranded = append(stranded, name)
			strandedWhy = impact.Stranded
		}
		if u.UID == sc.stack.UID {
			preview.ClusterRestarts = impact.Restarts
			for _, c := range impact.Changes {
				preview.Images = append(preview.Images, platformv1alpha1.ImageChange{Component: c.Component, From: c.From, To: c.To})
			}
		}
	}
	if len(stranded) > 0 {
		sort.Strings(stranded)
		facts.Hazards = append(facts.Hazards, policy.Hazard{Reason: policy.ReasonUpgradeStrandsClusters,
			Message: fmt.Sprintf("PGO %s would leave %s without a PostgreSQL image, and PGO stops reconciling such a cluster: %s; pin spec.postgres.image on them, or hold the upgrade",
				review.version, nameList(stranded), strandedWhy)})
	}
	sort.Strings(restarting)
	facts.Preview = fmt.Sprintf("approving it restarts %d of the %d clusters sharing PGO", len(restarting), len(users))
	if len(restarting) > 0 {
		facts.Preview += ": " + nameList(restarting)
	}
	preview.Blocked = firstHazard(facts.Hazards)
	return preview, nil
}

// imageRequest is what PGO picks a stack's images by: its PostgresCluster
// as PGO sees it (from live), or, before one exists, the one pgstack would
// create.
func imageRequest(stack *platformv1alpha1.PostgresStack, live map[types.NamespacedName]*unstructured.Unstructured) (pgo.ImageRequest, bool) {
	pc := live[client.ObjectKeyFromObject(stack)]
	if pc == nil {
		desired, err := render.Render(stack)
		if err != nil {
			// A stack that cannot be rendered reports that itself; it has
			// no cluster an upgrade could restart.
			return pgo.ImageRequest{}, false
		}
		pc = desired
	}
	return pgo.ImageRequestFor(pc), true
}

// liveClusters are the PostgresClusters pgstack manages, by name, straight
// from the cache and not copied: read them, never change them. Every stack
// judging a plan previews every stack sharing the operator, so a copy per
// cluster per reconcile was N² copies per plan (with the rollout
// controller's copy per member, 150 of 482 MB the manager allocated in the
// 10:31 N=20 bench). The resident peak at an operator upgrade is not theirs:
// it stayed (55 to 83 MiB at N=100, 11:34 bench) once they were gone.
func (r *PostgresStackReconciler) liveClusters(ctx context.Context) (map[types.NamespacedName]*unstructured.Unstructured, error) {
	out := map[types.NamespacedName]*unstructured.Unstructured{}
	if r.pgo() == nil {
		return out, nil
	}
	list := pgo.NewPostgresClusterList()
	if err := r.pgo().List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list PostgresClusters: %w", err)
	}
	for i := range list.Items {
		out[client.ObjectKeyFromObject(&list.Items[i])] = &list.Items[i]
	}
	return out, nil
}

// unsafeMessage names up to three violations, each with its CRD, field and rule.
func unsafeMessage(plan string, unsafe []crdcompat.Violation) string {
	const shown = 3
	list := make([]string, 0, shown)
	for i := 0; i < len(unsafe) && i < shown; i++ {
		list = append(list, unsafe[i].String())
	}
	msg := fmt.Sprintf("install plan %s would replace CRDs unsafely: %s", plan, strings.Join(list, "; "))
	if len(unsafe) > shown {
		msg += fmt.Sprintf(" (and %d more)", len(unsafe)-shown)
	}
	return msg
}

func firstHazard(h []policy.Hazard) string {
	if len(h) == 0 {
		return ""
	}
	return h[0].Message
}

// nameList names up to five stacks, then counts the rest.
func nameList(names []string) string {
	const shown = 5
	if len(names) <= shown {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:shown], ", "), len(names)-shown)
}
