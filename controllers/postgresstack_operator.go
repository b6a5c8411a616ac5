package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"

	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/policy"
	"github.com/pgstack/pgstack/internal/status"
)

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=operators.coreos.com,resources=subscriptions,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=operators.coreos.com,resources=installplans,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=operators.coreos.com,resources=clusterserviceversions,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=operators.coreos.com,resources=operatorgroups,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=operators.coreos.com,resources=catalogsources,verbs=get;list;watch

// DefaultOperatorGroup is the name of the AllNamespaces OperatorGroup pgstack
// creates in an install namespace that has none.
const DefaultOperatorGroup = "pgstack-global-operators"

// reconcileOperator makes sure PGO is installed through OLM under the stack's
// policy, and records what it saw in sc.obs.Operator. Problems a person must
// fix are recorded, not returned: they stall the stack without a requeue, and
// a watch wakes it when something changes.
func (r *PostgresStackReconciler) reconcileOperator(ctx context.Context, sc *scope) error {
	op := sc.stack.Spec.Operator
	obs := &sc.obs.Operator
	obs.Observed = true
	if r.olm() == nil {
		obs.Problem = &status.Problem{Reason: platformv1alpha1.ReasonOLMNotInstalled,
			Message: "OLM is not installed: the operators.coreos.com API (Subscription, InstallPlan, ClusterServiceVersion) is not served; install OLM and pgstack continues"}
		if r.apiPending(ctx, "subscriptions.operators.coreos.com") {
			return errAPIPending
		}
		return nil
	}
	if op.Versions != "" {
		if err := policy.ValidateRange(op.Versions); err != nil {
			obs.Problem = &status.Problem{Reason: platformv1alpha1.ReasonInvalidPolicy, Message: "spec.operator.versions: " + err.Error()}
			return nil
		}
	}
	if err := r.ensureNamespace(ctx, op.Namespace); err != nil {
		return err
	}
	if problem, err := r.ensureOperatorGroup(ctx, sc.stack); err != nil || problem != nil {
		obs.Problem = problem
		return err
	}
	sub, problem, err := r.ensureSubscription(ctx, sc.stack)
	if err != nil || problem != nil {
		obs.Problem = problem
		return err
	}
	observeSubscription(obs, sub)
	if sub.Status.InstalledCSV == "" {
		if err := r.observeCatalog(ctx, obs, sub); err != nil {
			return err
		}
	}

	if sub.Status.InstalledCSV != "" {
		csv := &operatorsv1alpha1.ClusterServiceVersion{}
		err := r.olm().Get(ctx, client.ObjectKey{Namespace: op.Namespace, Name: sub.Status.InstalledCSV}, csv)
		switch {
		case apierrors.IsNotFound(err):
			obs.CSVPhase, obs.CSVMessage = "", "the CSV does not exist yet"
		case err != nil:
			return fmt.Errorf("get CSV %s/%s: %w", op.Namespace, sub.Status.InstalledCSV, err)
		default:
			obs.CSVPhase, obs.CSVReason, obs.CSVMessage = string(csv.Status.Phase), string(csv.Status.Reason), csv.Status.Message
			sc.images = imageCatalog(csv, sub)
		}
	}
	// The plan is judged knowing the images PGO runs today, to preview
	// what the next one would change.
	if sub.Status.InstallPlanRef != nil {
		if err := r.reconcileInstallPlan(ctx, sc, sub); err != nil {
			return err
		}
	}
	return nil
}

func observeSubscription(obs *status.Operator, sub *operatorsv1alpha1.Subscription) {
	obs.Subscription = sub.Name
	obs.InstalledCSV = sub.Status.InstalledCSV
	obs.CurrentCSV = sub.Status.CurrentCSV
	for _, c := range sub.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case operatorsv1alpha1.SubscriptionResolutionFailed:
			obs.ResolutionFailed = strings.TrimSpace(c.Reason + ": " + c.Message)
		case operatorsv1alpha1.SubscriptionCatalogSourcesUnhealthy:
			obs.CatalogUnhealthy = strings.TrimSpace(c.Message)
		}
	}
	if sub.Status.InstallPlanRef != nil {
		obs.Plan = sub.Status.InstallPlanRef.Name
	}
}

// observeCatalog checks the CatalogSource a first install depends on. OLM
// v0 neither flags a Subscription whose catalog, served by address, stopped
// answering, nor always says plainly that the catalog does not exist.
func (r *PostgresStackReconciler) observeCatalog(ctx context.Context, obs *status.Operator, sub *operatorsv1alpha1.Subscription) error {
	key := client.ObjectKey{Namespace: sub.Spec.CatalogSourceNamespace, Name: sub.Spec.CatalogSource}
	catalog := &operatorsv1alpha1.CatalogSource{}
	if err := r.olm().Get(ctx, key, catalog); err != nil {
		if apierrors.IsNotFound(err) {
			obs.CatalogMissing = key.String()
			return nil
		}
		return fmt.Errorf("get CatalogSource %s: %w", key, err)
	}
	if state := catalog.Status.GRPCConnectionState; obs.CatalogUnhealthy == "" && state != nil && state.LastObservedState != "" && state.LastObservedState != "READY" {
		obs.CatalogUnhealthy = fmt.Sprintf("CatalogSource %s's connection is %s", key, state.LastObservedState)
	}
	return nil
}

func (r *PostgresStackReconciler) ensureNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{}
	err := r.Get(ctx, client.ObjectKey{Name: name}, ns)
	if apierrors.IsNotFound(err) {
		ns.Name = name
		ns.Labels = map[string]string{ManagedLabel: ManagedValue}
		if err := r.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create install namespace %s: %w", name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get install namespace %s: %w", name, err)
	}
	return nil
}

// ensureOperatorGroup makes sure the install namespace has exactly one
// OperatorGroup: OLM installs nothing with none, and fails CSVs with two.
func (r *PostgresStackReconciler) ensureOperatorGroup(ctx context.Context, stack *platformv1alpha1.PostgresStack) (*status.Problem, error) {
	ns := stack.Spec.Operator.Namespace
	groups := &operatorsv1.OperatorGroupList{}
	if err := r.olm().List(ctx, groups, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list OperatorGroups in %s: %w", ns, err)
	}
	switch len(groups.Items) {
	case 1:
		return nil, nil
	case 0:
		og := &operatorsv1.OperatorGroup{ObjectMeta: metav1.ObjectMeta{Name: DefaultOperatorGroup, Namespace: ns,
			Labels: map[string]string{ManagedLabel: ManagedValue}}}
		if err := r.Create(ctx, og); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create OperatorGroup %s/%s: %w", ns, og.Name, err)
		}
		r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, platformv1alpha1.EventOperatorGroupCreated, "Create",
			"created OperatorGroup %s/%s (all namespaces), since the install namespace had none", ns, og.Name)
		return nil, nil
	default:
		names := make([]string, 0, len(groups.Items))
		for _, g := range groups.Items {
			names = append(names, g.Name)
		}
		sort.Strings(names)
		return &status.Problem{Reason: platformv1alpha1.ReasonOperatorGroupConflict,
			Message: fmt.Sprintf("namespace %s has %d OperatorGroups (%s); OLM installs nothing there until exactly one is left", ns, len(names), strings.Join(names, ", "))}, nil
	}
}

// ensureSubscription finds the one Subscription for the stack's package in the
// install namespace, adopting a hand-made one, or creates it. It never changes
// what another stack or a person chose: a stack whose channel or catalog
// differs from the Subscription's stalls instead.
func (r *PostgresStackReconciler) ensureSubscription(ctx context.Context, stack *platformv1alpha1.PostgresStack) (*operatorsv1alpha1.Subscription, *status.Problem, error) {
	op := stack.Spec.Operator
	subs, err := r.subscriptionsFor(ctx, op.Namespace, op.Package)
	if err != nil {
		return nil, nil, err
	}
	switch len(subs) {
	case 0:
		return r.createSubscription(ctx, stack)
	case 1:
	default:
		names := make([]string, 0, len(subs))
		for _, s := range subs {
			names = append(names, s.Name)
		}
		return nil, &status.Problem{Reason: platformv1alpha1.ReasonSubscriptionConflict,
			Message: fmt.Sprintf("namespace %s has %d Subscriptions for package %s (%s); OLM cannot resolve them; delete all but one", op.Namespace, len(subs), op.Package, strings.Join(names, ", "))}, nil
	}
	sub := subs[0]
	if mismatch := subscriptionMismatch(sub, op); mismatch != "" {
		users, err := r.stacksUsing(ctx, op.Namespace, op.Package)
		if err != nil {
			return nil, nil, err
		}
		var agreeing []string
		for _, s := range users {
			if subscriptionMismatch(sub, s.Spec.Operator) == "" {
				agreeing = append(agreeing, s.Namespace+"/"+s.Name)
			}
		}
		owner := "someone outside pgstack"
		if len(agreeing) > 0 {
			owner = "stack " + strings.Join(agreeing, ", stack ")
		}
		return nil, &status.Problem{Reason: platformv1alpha1.ReasonSubscriptionConflict,
			Message: fmt.Sprintf("Subscription %s/%s, set up by %s, %s; one Subscription serves every stack in the namespace, so this stack cannot change it: align spec.operator or use another operator.namespace", sub.Namespace, sub.Name, owner, mismatch)}, nil
	}
	if err := r.adoptSubscription(ctx, stack, sub); err != nil {
		return nil, nil, err
	}
	return sub, nil, nil
}

// subscriptionMismatch says how a Subscription differs from what a stack asks for.
func subscriptionMismatch(sub *operatorsv1alpha1.Subscription, op platformv1alpha1.OperatorSpec) string {
	return policy.Mismatch(subscriptionSettings(sub), op)
}

func subscriptionSettings(sub *operatorsv1alpha1.Subscription) policy.SubscriptionSettings {
	return policy.SubscriptionSettings{Channel: sub.Spec.Channel, Source: sub.Spec.CatalogSource, SourceNamespace: sub.Spec.CatalogSourceNamespace}
}

func (r *PostgresStackReconciler) subscriptionsFor(ctx context.Context, namespace, pkg string) ([]*operatorsv1alpha1.Subscription, error) {
	list := &operatorsv1alpha1.SubscriptionList{}
	if err := r.olm().List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list Subscriptions in %s: %w", namespace, err)
	}
	var out []*operatorsv1alpha1.Subscription
	for i := range list.Items {
		if s := &list.Items[i]; s.Spec != nil && s.Spec.Package == pkg {
			out = append(out, s)
		}
	}
	return out, nil
}

// createSubscription creates the shared Subscription with Manual approval, so
// that every InstallPlan waits for pgstack's policy. It takes the settings of
// the oldest stack using the package, so that which stack reconciles first
// does not decide.
func (r *PostgresStackReconciler) createSubscription(ctx context.Context, stack *platformv1alpha1.PostgresStack) (*operatorsv1alpha1.Subscription, *status.Problem, error) {
	users, err := r.stacksUsing(ctx, stack.Spec.Operator.Namespace, stack.Spec.Operator.Package)
	if err != nil {
		return nil, nil, err
	}
	seed := policy.Seed(users, stack)
	settings := seed.Spec.Operator
	sub := &operatorsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: settings.Package, Namespace: settings.Namespace,
			Labels: map[string]string{ManagedLabel: ManagedValue}},
		Spec: &operatorsv1alpha1.SubscriptionSpec{
			Package:                settings.Package,
			Channel:                settings.Channel,
			CatalogSource:          settings.Source,
			CatalogSourceNamespace: settings.SourceNamespace,
			InstallPlanApproval:    operatorsv1alpha1.ApprovalManual,
		},
	}
	if err := r.Create(ctx, sub); err != nil {
		// AlreadyExists too: another stack or a person was first, and the retry adopts theirs.
		return nil, nil, fmt.Errorf("create Subscription %s/%s: %w", sub.Namespace, sub.Name, err)
	}
	r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, platformv1alpha1.EventSubscriptionCreated, "Create",
		"created Subscription %s/%s for package %s, channel %s, with Manual approval so pgstack's policy decides", sub.Namespace, sub.Name, settings.Package, settings.Channel)
	if settings != stack.Spec.Operator && subscriptionMismatch(sub, stack.Spec.Operator) != "" {
		return nil, &status.Problem{Reason: platformv1alpha1.ReasonSubscriptionConflict,
			Message: fmt.Sprintf("Subscription %s/%s follows stack %s/%s's settings: %s", sub.Namespace, sub.Name, seed.Namespace, seed.Name, subscriptionMismatch(sub, stack.Spec.Operator))}, nil
	}
	return sub, nil, nil
}

// adoptSubscription takes over a Subscription pgstack did not create (such as
// my-postgresql from OperatorHub's install): it is labelled as managed and
// switched to Manual approval, so OLM installs nothing pgstack's policy has
// not allowed. Channel, catalog and config are left as they are.
func (r *PostgresStackReconciler) adoptSubscription(ctx context.Context, stack *platformv1alpha1.PostgresStack, sub *operatorsv1alpha1.Subscription) error {
	if sub.Labels[ManagedLabel] == ManagedValue && sub.Spec.InstallPlanApproval == operatorsv1alpha1.ApprovalManual {
		return nil
	}
	patch := client.MergeFromWithOptions(sub.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if sub.Labels == nil {
		sub.Labels = map[string]string{}
	}
	previous := sub.Spec.InstallPlanApproval
	sub.Labels[ManagedLabel] = ManagedValue
	sub.Spec.InstallPlanApproval = operatorsv1alpha1.ApprovalManual
	if err := r.Patch(ctx, sub, patch); err != nil {
		return fmt.Errorf("adopt Subscription %s/%s: %w", sub.Namespace, sub.Name, err)
	}
	r.Recorder.Eventf(stack, nil, corev1.EventTypeNormal, platformv1alpha1.EventSubscriptionAdopted, "Adopt",
		"adopted Subscription %s/%s: installPlanApproval %s -> Manual, so pgstack's policy approves its InstallPlans", sub.Namespace, sub.Name, orNone(string(previous)))
	logf.FromContext(ctx).Info("adopted Subscription", "subscription", client.ObjectKeyFromObject(sub), "previousApproval", previous)
	return nil
}

// stacksUsing lists the live stacks that install pkg into namespace, oldest
// first, straight from the cache and not copied: read them, never change
// them. Every stack judging a waiting plan lists every stack sharing the
// operator, and a copy of each was N² copies of whole stacks per plan.
func (r *PostgresStackReconciler) stacksUsing(ctx context.Context, namespace, pkg string) ([]platformv1alpha1.PostgresStack, error) {
	list := &platformv1alpha1.PostgresStackList{}
	if err := r.List(ctx, list, client.MatchingFields{indexOperatorNamespace: namespace}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list stacks installing into %s: %w", namespace, err)
	}
	var out []platformv1alpha1.PostgresStack
	for _, s := range list.Items {
		if s.Spec.Operator.Package == pkg && s.DeletionTimestamp.IsZero() {
			out = append(out, s)
		}
	}
	policy.OldestFirst(out)
	return out, nil
}

func orNone(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// imageCatalog is the default images the installed PGO runs clusters with:
// the env of its operator container as the CSV declares it, with the
// Subscription's spec.config.env replacing same-named entries, as OLM merges
// them into the Deployment it installs.
func imageCatalog(csv *operatorsv1alpha1.ClusterServiceVersion, sub *operatorsv1alpha1.Subscription) *pgo.Catalog {
	container, envFrom := operatorContainer(csv)
	var subEnv []corev1.EnvVar
	if cfg := sub.Spec.Config; cfg != nil {
		subEnv = cfg.Env
		envFrom = envFrom || len(cfg.EnvFrom) > 0
	}
	var csvEnv []corev1.EnvVar
	if container != nil {
		csvEnv = container.Env
	}
	c := pgo.NewCatalog(csvEnv, subEnv, envFrom)
	return &c
}

// operatorContainer finds PGO's operator container in a CSV's install
// strategy: the one that declares RELATED_IMAGE_* defaults, else the first.
// envFrom says whether it also takes env from ConfigMaps or Secrets.
func operatorContainer(csv *operatorsv1alpha1.ClusterServiceVersion) (*corev1.Container, bool) {
	var first *corev1.Container
	for i := range csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs {
		containers := csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs[i].Spec.Template.Spec.Containers
		for j := range containers {
			c := &containers[j]
			if first == nil {
				first = c
			}
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "RELATED_IMAGE_") {
					return c, len(c.EnvFrom) > 0
				}
			}
		}
	}
	if first == nil {
		return nil, false
	}
	return first, len(first.EnvFrom) > 0
}
