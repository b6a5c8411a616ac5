package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/policy"
	"github.com/pgstack/pgstack/internal/render"
	"github.com/pgstack/pgstack/internal/rollout"
)

// +kubebuilder:rbac:groups=platform.pgstack.dev,resources=postgresrolloutpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get

// Labels PGO puts on what it makes for a cluster.
const (
	labelPGOCluster  = "postgres-operator.crunchydata.com/cluster"
	labelPGOInstance = "postgres-operator.crunchydata.com/instance"
	// labelPGORole is the role Patroni gives each instance pod;
	// rolePatroniLeader the primary's (PGO v5.8.9 internal/naming/labels.go:87-96).
	labelPGORole      = "postgres-operator.crunchydata.com/role"
	rolePatroniLeader = "master"
)

// rolloutRecheck is how soon a rollout under way is looked at again when no
// event comes: PGO writes some of what it decides from (observedGeneration)
// without the stack's status changing.
const rolloutRecheck = 5 * time.Second

// RolloutPolicyReconciler coordinates the staged rollout of operator
// upgrades: one per install namespace, so that the decision to release a
// cluster is taken in one place, and kept in the policy's status.
type RolloutPolicyReconciler struct {
	client.Client
	Recorder recorder.EventRecorder
	// Stacks is the stack reconciler, whose caches of OLM's and PGO's kinds
	// and plan reviews this one reads.
	Stacks *PostgresStackReconciler
	Now    func() time.Time
}

// NewRolloutReconciler wires the rollout reconciler beside the stacks'.
func NewRolloutReconciler(mgr ctrl.Manager, stacks *PostgresStackReconciler) *RolloutPolicyReconciler {
	return &RolloutPolicyReconciler{Client: client.WithFieldOwner(mgr.GetClient(), FieldOwner),
		Recorder: mgr.GetEventRecorder(FieldOwner), Stacks: stacks}
}

// SetupWithManager registers the reconciler: its policy (spec changes), the
// stacks installing into its namespace (any change: their status says what
// their clusters and the operator do) and PGO's instance StatefulSets.
func (r *RolloutPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&platformv1alpha1.PostgresRolloutPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&platformv1alpha1.PostgresStack{}, handler.EnqueueRequestsFromMapFunc(policyOfStack)).
		Watches(&appsv1.StatefulSet{}, handler.EnqueueRequestsFromMapFunc(r.policyOfStatefulSet)).
		Named("postgresrolloutpolicy").
		Complete(r)
}

func policyOfStack(_ context.Context, o client.Object) []reconcile.Request {
	s, ok := o.(*platformv1alpha1.PostgresStack)
	if !ok || s.Spec.Operator.Namespace == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: s.Spec.Operator.Namespace, Name: platformv1alpha1.RolloutPolicyName}}}
}

// policyOfStatefulSet maps an instance StatefulSet to the policy of the
// stack whose cluster it runs.
func (r *RolloutPolicyReconciler) policyOfStatefulSet(ctx context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[labelPGOCluster]
	if name == "" {
		return nil
	}
	stack := &platformv1alpha1.PostgresStack{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: name}, stack); err != nil {
		return nil
	}
	return policyOfStack(ctx, stack)
}

func (r *RolloutPolicyReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile observes the operator and every cluster sharing it, lets
// rollout.Step decide, and writes the decision to the policy's status.
func (r *RolloutPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	p := &platformv1alpha1.PostgresRolloutPolicy{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	if r.Stacks.olm() == nil || r.Stacks.pgo() == nil {
		// The stacks' reconciles start those caches; look again soon.
		return ctrl.Result{RequeueAfter: rolloutRecheck}, nil
	}
	in, sub, err := r.observe(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	out := rollout.Step(in)

	next := p.Status.DeepCopy()
	next.ObservedGeneration = p.Generation
	next.Rollout = out.Rollout
	setRolloutConditions(next, p.Generation, metav1.NewTime(r.now()))
	if !equality.Semantic.DeepEqual(&p.Status, next) {
		// Decided from what this policy's status said: if the cache is
		// behind an earlier write, the precondition fails and the next look
		// decides again, so a decision (and its Event) is never taken twice.
		patch := client.MergeFromWithOptions(p.DeepCopy(), client.MergeFromWithOptimisticLock{})
		p.Status = *next
		if err := r.Status().Patch(ctx, p, patch); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: time.Second}, nil
			}
			return ctrl.Result{}, fmt.Errorf("patch status of PostgresRolloutPolicy %s: %w", req.NamespacedName, err)
		}
		for _, e := range out.Events {
			kind := corev1.EventTypeNormal
			if e.Warning {
				kind = corev1.EventTypeWarning
			}
			r.Recorder.Eventf(p, nil, kind, e.Reason, "Rollout", "%s", e.Message)
		}
		logf.FromContext(ctx).Info("rollout", "phase", phaseOf(next.Rollout), "events", len(out.Events))
	}
	// Every cluster is pinned for the policy's configuration: apply it.
	if out.ApplyConfig && sub != nil && p.Spec.OperatorConfig != nil {
		patch := client.MergeFromWithOptions(sub.DeepCopy(), client.MergeFromWithOptimisticLock{})
		applyConfig(sub, *p.Spec.OperatorConfig)
		if err := r.Patch(ctx, sub, patch); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{RequeueAfter: time.Second}, nil
			}
			return ctrl.Result{}, fmt.Errorf("apply the operator configuration to Subscription %s/%s: %w", sub.Namespace, sub.Name, err)
		}
		r.Recorder.Eventf(p, sub, corev1.EventTypeNormal, rollout.EventConfigApplied, "Configure",
			"every cluster is pinned; wrote the operator configuration %s to Subscription %s/%s", next.Rollout.ToConfig, sub.Namespace, sub.Name)
	}
	result := ctrl.Result{RequeueAfter: out.RequeueAfter}
	if ro := next.Rollout; ro != nil && (ro.Phase == platformv1alpha1.RolloutPinning || ro.Phase == platformv1alpha1.RolloutRolling) &&
		(result.RequeueAfter == 0 || result.RequeueAfter > rolloutRecheck) {
		result.RequeueAfter = rolloutRecheck
	}
	return result, nil
}

func phaseOf(r *platformv1alpha1.RolloutStatus) string {
	if r == nil {
		return "none"
	}
	return string(r.Phase)
}

// observe gathers what rollout.Step decides from.
func (r *RolloutPolicyReconciler) observe(ctx context.Context, p *platformv1alpha1.PostgresRolloutPolicy) (rollout.Input, *operatorsv1alpha1.Subscription, error) {
	in := rollout.Input{Spec: p.Spec, Previous: p.Status.Rollout, Now: r.now(), Members: map[string]rollout.Member{}}
	list := &platformv1alpha1.PostgresStackList{}
	if err := r.List(ctx, list, client.MatchingFields{indexOperatorNamespace: p.Namespace}); err != nil {
		return in, nil, fmt.Errorf("list stacks installing into %s: %w", p.Namespace, err)
	}
	var users []platformv1alpha1.PostgresStack
	for _, s := range list.Items {
		if s.DeletionTimestamp.IsZero() {
			users = append(users, s)
		}
	}
	if len(users) == 0 {
		return in, nil, nil
	}
	sub, err := r.subscription(ctx, p.Namespace, users[0].Spec.Operator.Package)
	if err != nil || sub == nil {
		return in, nil, err
	}
	in.Operator.InstalledCSV = sub.Status.InstalledCSV
	var installed *operatorsv1alpha1.ClusterServiceVersion
	if sub.Status.InstalledCSV != "" {
		installed = &operatorsv1alpha1.ClusterServiceVersion{}
		if err := r.Stacks.olm().Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: sub.Status.InstalledCSV}, installed); err != nil {
			if !apierrors.IsNotFound(err) {
				return in, sub, fmt.Errorf("get CSV %s: %w", sub.Status.InstalledCSV, err)
			}
			installed = nil
		}
		in.Operator.Succeeded = installed != nil && installed.Status.Phase == operatorsv1alpha1.CSVPhaseSucceeded
	}
	var plan *operatorsv1alpha1.InstallPlan
	if ref := sub.Status.InstallPlanRef; ref != nil && sub.Status.CurrentCSV != sub.Status.InstalledCSV {
		plan = &operatorsv1alpha1.InstallPlan{}
		if err := r.Stacks.olm().Get(ctx, client.ObjectKey{Namespace: sub.Namespace, Name: ref.Name}, plan); err != nil {
			if !apierrors.IsNotFound(err) {
				return in, sub, fmt.Errorf("get install plan %s: %w", ref.Name, err)
			}
			plan = nil
		}
		if plan != nil && plan.Status.Phase != operatorsv1alpha1.InstallPlanPhaseComplete && plan.Status.Phase != operatorsv1alpha1.InstallPlanPhaseFailed {
			in.Operator.PendingCSV = sub.Status.CurrentCSV
		}
	}

	in.Operator.Config = configHash(subscriptionConfig(sub))
	if want := p.Spec.OperatorConfig; want != nil {
		in.Operator.DesiredConfig = configHash(*want)
	}
	if ro := in.Previous; ro != nil && ro.FromConfig != ro.ToConfig && ro.ToConfig == in.Operator.Config && installed != nil {
		if in.Operator.ConfigRunning, err = r.configRunning(ctx, installed, subscriptionConfig(sub)); err != nil {
			return in, sub, err
		}
	}

	// The images each cluster would lose are read only when a rollout may
	// (re)start: before anything is released.
	var current, next *pgo.Catalog
	nextVersion := ""
	mayStart := installed != nil && (in.Previous == nil || in.Previous.Phase == platformv1alpha1.RolloutComplete ||
		in.Previous.Phase == platformv1alpha1.RolloutPinning || in.Previous.Phase == platformv1alpha1.RolloutPinned)
	switch {
	case mayStart && in.Operator.PendingCSV != "" && plan != nil:
		review, err := r.Stacks.reviewPlan(ctx, sub, plan)
		if err != nil {
			return in, sub, err
		}
		current, next, nextVersion = imageCatalog(installed, sub), &review.next, review.version
	case mayStart && in.Operator.DesiredConfig != "" && in.Operator.DesiredConfig != in.Operator.Config:
		// The installed PGO under the policy's configuration.
		configured := sub.DeepCopy()
		applyConfig(configured, *p.Spec.OperatorConfig)
		current, next = imageCatalog(installed, sub), imageCatalog(installed, configured)
		nextVersion, _ = policy.CSVVersion(installed.Name)
	}
	starting := next != nil

	clusters, err := r.Stacks.liveClusters(ctx)
	if err != nil {
		return in, sub, err
	}
	for i := range users {
		s := &users[i]
		key := s.Namespace + "/" + s.Name
		m := rollout.Member{Stack: key, Wave: rollout.Wave(s), Busy: pgo.OperationsBusy(s.Status.Operations) != ""}
		if live := clusters[client.ObjectKeyFromObject(s)]; live != nil {
			m.PostgresVersion, _, _ = unstructured.NestedInt64(live.Object, "spec", "postgresVersion")
			sets, err := instanceSets(ctx, r.Client, s.Namespace, s.Name)
			if err != nil {
				return in, sub, err
			}
			m.Templates = revisions(sets)
			if c, found, _ := rollout.Place(in.Previous, key); found {
				images := rollout.Images(c)
				observed, _, _ := unstructured.NestedInt64(live.Object, "status", "observedGeneration")
				named := pgo.NamedImages(live, images)
				m.PinsApplied = named == len(images) && observed == live.GetGeneration()
				m.Updated = named == 0 && pgo.Judge(live, pgo.Events{}).Ready && setsRunWithout(sets, images)
			}
			if starting {
				m.Pins = pinsFor(s, live, *current, *next, nextVersion)
			}
		}
		in.Members[key] = m
	}
	return in, sub, nil
}

// subscriptionConfig is the part of a Subscription's config a policy owns.
func subscriptionConfig(sub *operatorsv1alpha1.Subscription) platformv1alpha1.OperatorConfig {
	if sub.Spec == nil || sub.Spec.Config == nil {
		return platformv1alpha1.OperatorConfig{}
	}
	return platformv1alpha1.OperatorConfig{Env: sub.Spec.Config.Env, Resources: sub.Spec.Config.Resources}
}

// applyConfig writes the policy's configuration into the Subscription,
// leaving the rest of its config (node selector, tolerations, volumes) alone.
func applyConfig(sub *operatorsv1alpha1.Subscription, c platformv1alpha1.OperatorConfig) {
	if sub.Spec.Config == nil {
		sub.Spec.Config = &operatorsv1alpha1.SubscriptionConfig{}
	}
	sub.Spec.Config.Env, sub.Spec.Config.Resources = c.Env, c.Resources
}

// configHash names an operator configuration: the first 10 hex digits of
// the SHA-256 of its JSON (an empty env and none are the same).
func configHash(c platformv1alpha1.OperatorConfig) string {
	if len(c.Env) == 0 {
		c.Env = nil
	}
	data, _ := json.Marshal(c)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:10]
}

// configRunning reports whether PGO's Deployment runs with the
// configuration: every variable set as configured on the operator
// container (OLM puts the Subscription's env over the CSV's), its resources
// when configured, and the Deployment rolled out.
func (r *RolloutPolicyReconciler) configRunning(ctx context.Context, csv *operatorsv1alpha1.ClusterServiceVersion, c platformv1alpha1.OperatorConfig) (bool, error) {
	specs := csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs
	if len(specs) == 0 {
		return false, nil
	}
	d := &appsv1.Deployment{}
	if err := r.Stacks.APIReader.Get(ctx, client.ObjectKey{Namespace: csv.Namespace, Name: specs[0].Name}, d); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas != replicas || d.Status.AvailableReplicas != replicas || d.Status.Replicas != replicas {
		return false, nil
	}
	// What OLM makes of the CSV's operator container with the
	// Subscription's env over it: a variable the configuration no longer
	// sets is back to the CSV's value.
	operator, _ := operatorContainer(csv)
	if operator == nil {
		return false, nil
	}
	want := map[string]corev1.EnvVar{}
	for _, list := range [][]corev1.EnvVar{operator.Env, c.Env} {
		for _, e := range list {
			want[e.Name] = e
		}
	}
	for _, container := range d.Spec.Template.Spec.Containers {
		if container.Name != operator.Name {
			continue
		}
		if c.Resources != nil && !equality.Semantic.DeepEqual(container.Resources, *c.Resources) {
			return false, nil
		}
		got := map[string]corev1.EnvVar{}
		for _, e := range container.Env {
			got[e.Name] = e
		}
		for name, e := range want {
			if !sameEnv(got[name], e) {
				return false, nil
			}
		}
		return true, nil
	}
	return false, nil
}

// sameEnv compares a variable as the Deployment holds it with the one
// wanted: by value, or, for one taken from elsewhere, by being so (the API
// server fills in defaults such as a field reference's apiVersion).
func sameEnv(got, want corev1.EnvVar) bool {
	if want.ValueFrom != nil {
		return got.Name == want.Name && got.ValueFrom != nil
	}
	return got.Name == want.Name && got.ValueFrom == nil && got.Value == want.Value
}

// subscription is the Subscription pgstack manages for pkg in namespace.
func (r *RolloutPolicyReconciler) subscription(ctx context.Context, namespace, pkg string) (*operatorsv1alpha1.Subscription, error) {
	subs, err := r.Stacks.subscriptionsFor(ctx, namespace, pkg)
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if s.Labels[ManagedLabel] == ManagedValue {
			return s, nil
		}
	}
	return nil, nil
}

// pinsFor are the images the upgrade would change for a stack's cluster, as
// it runs them now. The request is the stack's own rendering, not the live
// cluster: images pgstack pinned for an earlier offer are not the stack's.
func pinsFor(stack *platformv1alpha1.PostgresStack, live *unstructured.Unstructured, current, next pgo.Catalog, nextVersion string) []platformv1alpha1.PinnedImage {
	source := live
	if desired, err := render.Render(stack); err == nil {
		source = desired
	}
	var pins []platformv1alpha1.PinnedImage
	for _, c := range pgo.PreviewOperatorUpgrade(pgo.ImageRequestFor(source), current, next, nextVersion).Changes {
		if c.From != "unknown" && c.From != "none" {
			pins = append(pins, platformv1alpha1.PinnedImage{Component: c.Component, Image: c.From})
		}
	}
	return pins
}

// instanceSets are the cluster's instance StatefulSets, from the cache.
func instanceSets(ctx context.Context, c client.Reader, namespace, cluster string) ([]appsv1.StatefulSet, error) {
	list := &appsv1.StatefulSetList{}
	if err := c.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{labelPGOCluster: cluster}); err != nil {
		return nil, fmt.Errorf("list StatefulSets of %s/%s: %w", namespace, cluster, err)
	}
	return list.Items, nil
}

func revisions(sets []appsv1.StatefulSet) []string {
	var out []string
	for _, s := range sets {
		if s.Status.UpdateRevision != "" {
			out = append(out, s.Status.UpdateRevision)
		}
	}
	sort.Strings(out)
	return out
}

// setsRunWithout reports whether every instance StatefulSet has a template
// without the images, seen by its controller, with every replica updated
// to it and ready: "from the first pod deletion until all its pods are
// Ready on the new template".
func setsRunWithout(sets []appsv1.StatefulSet, images map[string]string) bool {
	if len(sets) == 0 {
		return false
	}
	old := map[string]bool{}
	for _, ref := range images {
		old[ref] = true
	}
	for _, s := range sets {
		want := int32(1)
		if s.Spec.Replicas != nil {
			want = *s.Spec.Replicas
		}
		if s.Status.ObservedGeneration < s.Generation || s.Status.UpdatedReplicas != want || s.Status.ReadyReplicas != want {
			return false
		}
		for _, c := range s.Spec.Template.Spec.Containers {
			if old[c.Image] {
				return false
			}
		}
	}
	return true
}

// setRolloutConditions: Ready while no rollout is under way (none, pinned
// waiting for approval, complete), Reconciling while pgstack moves one on,
// Stalled when it halted or a person rolled back.
func setRolloutConditions(s *platformv1alpha1.PostgresRolloutPolicyStatus, generation int64, now metav1.Time) {
	ready := metav1.Condition{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "NoRollout", Message: "no operator upgrade is rolling out"}
	reconciling := metav1.Condition{Type: platformv1alpha1.ConditionReconciling, Status: metav1.ConditionFalse, Reason: "NoRollout", Message: ready.Message}
	stalled := metav1.Condition{Type: platformv1alpha1.ConditionStalled, Status: metav1.ConditionFalse, Reason: "NoRollout", Message: ready.Message}
	if ro := s.Rollout; ro != nil {
		reason, message := string(ro.Phase), ro.Message
		ready.Reason, ready.Message = reason, message
		reconciling.Reason, reconciling.Message = reason, message
		stalled.Reason, stalled.Message = reason, message
		switch ro.Phase {
		case platformv1alpha1.RolloutPinning, platformv1alpha1.RolloutRolling:
			ready.Status, reconciling.Status = metav1.ConditionFalse, metav1.ConditionTrue
		case platformv1alpha1.RolloutHalted, platformv1alpha1.RolloutRolledBack:
			ready.Status, stalled.Status = metav1.ConditionFalse, metav1.ConditionTrue
		}
	}
	for _, c := range []metav1.Condition{ready, reconciling, stalled} {
		c.ObservedGeneration, c.LastTransitionTime = generation, now
		meta.SetStatusCondition(&s.Conditions, c)
	}
}
