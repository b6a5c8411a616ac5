package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/contains"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/policy"
	"github.com/pgstack/pgstack/internal/render"
	"github.com/pgstack/pgstack/internal/status"
)

// +kubebuilder:rbac:groups=postgres-operator.crunchydata.com,resources=postgresclusters,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=list;watch

// reconcileCluster applies the rendered PostgresCluster once PGO is installed,
// and reports PGO's view of it. An existing PostgresCluster is reported even
// while the operator upgrades.
func (r *PostgresStackReconciler) reconcileCluster(ctx context.Context, sc *scope) error {
	obs := &sc.obs.Cluster
	if r.pgo() == nil {
		obs.APIMissing = true
		if r.apiPending(ctx, pgo.PostgresClusterCRD) {
			return errAPIPending
		}
		return nil
	}
	live, err := r.getPostgresCluster(ctx, sc.stack)
	if err != nil {
		return err
	}
	// The leader's pod: the status reports it, and a switchover to it
	// needs no PGO. Applying the cluster does not move it.
	var leader *metav1.PartialObjectMetadata
	if live != nil {
		if leader, err = r.primaryOf(ctx, live); err != nil {
			return err
		}
	}
	applied := false
	if sc.obs.Operator.Installed() {
		desired, err := render.Render(sc.stack)
		if err != nil {
			obs.Problem = &status.Problem{Reason: platformv1alpha1.ReasonInvalidSpec, Message: "cannot render the PostgresCluster: " + err.Error()}
			return nil
		}
		// The major version reaches a running cluster only through PGO's
		// major upgrade (internal/pgo PlanMajorUpgrade): what to apply now,
		// and the PGUpgrade to create when an upgrade starts.
		upgrades, err := r.pgUpgrades(ctx, sc.stack)
		if err != nil {
			return err
		}
		version, _ := policy.CSVVersion(sc.obs.Operator.InstalledCSV)
		plan := pgo.PlanMajorUpgrade(pgo.UpgradeInput{Live: live, Desired: desired, Upgrades: upgrades,
			Settings: sc.stack.Spec.Postgres.Upgrade, Images: sc.images, PGOVersion: version,
			Busy: pgo.OperationsBusy(r.written.current(sc.stack).Operations), Now: r.now()})
		desired = plan.Apply
		obs.PostgresVersion, obs.MajorUpgrade = plan.Running, plan.Report
		obs.Held, obs.Pending, obs.Down, obs.Failed = problem(plan.Held), problem(plan.Pending), problem(plan.Down), problem(plan.Failed)
		// Under a staged rollout the cluster keeps the images it ran until
		// its wave (postgresstack_rollout.go).
		unpin, err := r.pinForRollout(ctx, sc, live, desired)
		if err != nil {
			return err
		}
		desired, ops, err := r.planOperations(ctx, sc, live, leader, desired, plan)
		if err != nil {
			return err
		}
		// PGO would refuse a cluster it has no PostgreSQL image for and never
		// observe it (PGO v5.8.9 internal/controller/postgrescluster/controller.go:118-128),
		// and would silently ignore tablespaces without its feature gate:
		// say so before applying anything.
		if sc.images != nil {
			if msg, missing := sc.images.MissingPostgresImage(pgo.ImageRequestFor(desired), version); missing {
				obs.Problem = &status.Problem{Reason: platformv1alpha1.ReasonNoImageForVersion, Message: msg}
				return nil
			}
			if msg, refused := sc.images.TablespacesRefused(desired, version); refused {
				obs.Problem = &status.Problem{Reason: platformv1alpha1.ReasonTablespacesNeedFeatureGate, Message: msg}
				return nil
			}
		}
		if plan.Create != nil {
			if err := r.createPGUpgrade(ctx, sc.stack, plan.Create); err != nil {
				return err
			}
		}
		// Only Delete makes the stack the PostgresCluster's owner. Under Retain
		// there is no owner reference at all: a foreground (cascading) delete of
		// the stack must not reach the database.
		if sc.stack.Spec.DeletionPolicy == platformv1alpha1.DeletionDelete {
			if err := controllerutil.SetControllerReference(sc.stack, desired, r.Scheme()); err != nil {
				return fmt.Errorf("set owner of PostgresCluster %s: %w", desired.GetName(), err)
			}
		}
		// Apply when the live object lacks what we would apply (the stamp
		// makes a field pgstack stops applying count too: a pooler turned
		// off), or when its ownership disagrees with deletionPolicy (a switch
		// to Retain must drop the owner reference at once, not at deletion).
		if err := contains.Stamp(desired); err != nil {
			return err
		}
		if live == nil || plan.Force || unpin || !contains.Fields(live.Object, desired.Object) || ownedBy(live, sc.stack) != ownedBy(desired, sc.stack) {
			got, err := r.apply(ctx, desired)
			if err != nil {
				if apierrors.IsInvalid(err) {
					obs.Problem = &status.Problem{Reason: platformv1alpha1.ReasonInvalidSpec, Message: "PGO rejects the PostgresCluster: " + err.Error()}
					return nil
				}
				obs.ApplyError = err.Error()
				return fmt.Errorf("apply PostgresCluster %s/%s: %w", desired.GetNamespace(), desired.GetName(), err)
			}
			// A new stack's first status says the cluster was created; an
			// Event tells only a cluster created again after it was gone.
			if live == nil && sc.stack.Status.Cluster.PostgresVersion != 0 {
				r.Recorder.Eventf(sc.stack, desired, corev1.EventTypeWarning, platformv1alpha1.EventPostgresClusterCreated, "Create",
					"created PostgresCluster %s again (PGO %s): it was gone", desired.GetName(), sc.obs.Operator.InstalledCSV)
			}
			if plan.Event.Reason != "" {
				r.Recorder.Eventf(sc.stack, desired, corev1.EventTypeNormal, plan.Event.Reason, "Upgrade", "%s", plan.Event.Message)
			}
			// Judge what the API server now holds: its generation is the
			// one just sent, so a status PGO wrote for an older one reads as
			// not yet observed.
			live, applied = got, true
		}
		for _, e := range ops.Events {
			r.Recorder.Eventf(sc.stack, desired, e.Type, e.Reason, "Operation", "%s", e.Message)
		}
		if ops.Running != nil {
			sc.requeueAt(r.now().Add(r.pgoRecheck()), r.now())
		}
	}
	if live != nil {
		obs.Exists = true
		conn := pgo.Connection(live)
		obs.Connection = &conn
		if !sc.obs.Operator.Installed() {
			// Nothing was planned while the operator is away: report the
			// version that runs and the upgrade as last seen.
			obs.PostgresVersion, _, _ = unstructured.NestedInt64(live.Object, "spec", "postgresVersion")
			obs.MajorUpgrade = sc.stack.Status.Cluster.MajorUpgrade
			sc.obs.Operator.Rollout = sc.stack.Status.Operator.Rollout
		}
		var events pgo.Events
		// PGO cannot have answered what was just applied; its Events are
		// read on the next look.
		if !applied && pgo.WantsEvents(live) {
			if events, err = r.pgoEvents(ctx, live); err != nil {
				return err
			}
		}
		obs.Readiness = pgo.Judge(live, events)
		if leader != nil {
			obs.Primary = leader.Name
		}
		obs.Restore = pgo.ReadRestore(live, sc.stack.Spec.Postgres, r.written.current(sc.stack).Cluster.Restore)
		backups := pgo.ReadBackups(pgo.BackupsInput{Live: live, Previous: r.written.current(sc.stack).Backups,
			MaxAge: sc.stack.Spec.Postgres.Backups.MaxBackupAge, Now: r.now()})
		obs.Backups, obs.BackupsHealth = backups.Status, backups.Health
		// maxBackupAge runs out with no event to tell: look again then.
		if !backups.RecheckAt.IsZero() {
			sc.requeueAt(backups.RecheckAt, r.now())
		}
	}
	return nil
}

// planOperations decides spec.operations against the live cluster and
// returns desired with what asks PGO for them. Nothing that restarts pods
// starts while a major upgrade runs or the staged operator rollout
// restarts the cluster, and no backup repository on a volume is removed
// without a backupRemoval token naming it.
func (r *PostgresStackReconciler) planOperations(ctx context.Context, sc *scope, live *unstructured.Unstructured, leader *metav1.PartialObjectMetadata,
	desired *unstructured.Unstructured, upgrade pgo.UpgradePlan) (*unstructured.Unstructured, pgo.OperationsPlan, error) {
	stack, obs := sc.stack, &sc.obs.Cluster
	// What this manager last wrote, should the cache not have it yet: a
	// stale record would ask PGO again.
	previous := r.written.current(stack).Operations
	spec := stack.Spec.Operations
	if spec == nil {
		spec = &platformv1alpha1.Operations{}
	}
	var removalBefore *platformv1alpha1.OperationStatus
	if previous != nil {
		removalBefore = previous.BackupRemoval
	}
	removal := pgo.PlanBackupRemoval(pgo.BackupRemovalInput{Cluster: desired.GetName(), Live: live, Desired: desired,
		Spec: spec.BackupRemoval, Previous: removalBefore, Now: r.now()})
	desired = removal.Apply
	if obs.Held == nil {
		obs.Held = problem(removal.Held)
	}
	if stack.Spec.Operations == nil && previous == nil {
		return desired, pgo.OperationsPlan{}, nil
	}
	var sets []appsv1.StatefulSet
	if live != nil {
		var err error
		if sets, err = instanceSets(ctx, r.Client, stack.Namespace, live.GetName()); err != nil {
			return nil, pgo.OperationsPlan{}, err
		}
	}
	busy := ""
	switch {
	case upgrade.Down != nil || upgrade.Failed != nil || upgrade.Create != nil:
		busy = "a major upgrade of the cluster is under way"
	case sc.obs.Operator.Rollout != nil && sc.obs.Operator.Rollout.State == platformv1alpha1.ClusterRestarting:
		busy = "the staged operator rollout is moving the cluster to new images"
	}
	primary := ""
	if leader != nil {
		primary = leader.Labels[labelPGOInstance]
	}
	plan := pgo.PlanOperations(pgo.OperationsInput{Cluster: desired.GetName(), Spec: stack.Spec.Operations, Previous: previous,
		Live: live, Instances: sets, Primary: primary, Busy: busy, Now: r.now()})
	if removal.Status != nil {
		if plan.Status == nil {
			plan.Status = &platformv1alpha1.OperationsStatus{}
		}
		plan.Status.BackupRemoval = removal.Status
	}
	plan.Events = append(removal.Events, plan.Events...)
	if plan.Running == nil {
		plan.Running = removal.Running
	}
	obs.Operations = plan.Status
	for _, f := range []*pgo.Finding{plan.Pending, plan.Running} {
		if obs.Pending == nil && f != nil {
			obs.Pending = problem(f)
		}
	}
	if err := pgo.RenderOperations(desired, live, stack.Spec.Operations, plan.Status); err != nil {
		return nil, pgo.OperationsPlan{}, fmt.Errorf("render the operations of %s/%s: %w", stack.Namespace, stack.Name, err)
	}
	return desired, plan, nil
}

// problem is a finding of the upgrade plan as status reports it.
func problem(f *pgo.Finding) *status.Problem {
	if f == nil {
		return nil
	}
	return &status.Problem{Reason: f.Reason, Message: f.Message}
}

// +kubebuilder:rbac:groups=postgres-operator.crunchydata.com,resources=pgupgrades,verbs=get;list;watch;create

// pgUpgrades are PGO's reports on the stack's PGUpgrades, from the cache of
// the objects pgstack manages.
func (r *PostgresStackReconciler) pgUpgrades(ctx context.Context, stack *platformv1alpha1.PostgresStack) ([]pgo.UpgradeReport, error) {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(pgo.PGUpgradeGVK.GroupVersion().WithKind(pgo.PGUpgradeGVK.Kind + "List"))
	if err := r.pgo().List(ctx, list, client.InNamespace(stack.Namespace),
		client.MatchingLabels{ManagedLabel: ManagedValue, render.LabelStack: stack.Name}); err != nil {
		return nil, fmt.Errorf("list PGUpgrades of %s/%s: %w", stack.Namespace, stack.Name, err)
	}
	out := make([]pgo.UpgradeReport, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, pgo.ReadPGUpgrade(&list.Items[i]))
	}
	return out, nil
}

// createPGUpgrade creates the PGUpgrade that starts a major upgrade, owned
// by the stack (it is not data: it goes with the stack whatever
// deletionPolicy says). An existing one is left as it is.
func (r *PostgresStackReconciler) createPGUpgrade(ctx context.Context, stack *platformv1alpha1.PostgresStack, upgrade *unstructured.Unstructured) error {
	if err := controllerutil.SetControllerReference(stack, upgrade, r.Scheme()); err != nil {
		return fmt.Errorf("set owner of PGUpgrade %s: %w", upgrade.GetName(), err)
	}
	if err := r.Create(ctx, upgrade); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create PGUpgrade %s/%s: %w", upgrade.GetNamespace(), upgrade.GetName(), err)
	}
	return nil
}

func (r *PostgresStackReconciler) pgoRecheck() time.Duration {
	if r.PGORecheck > 0 {
		return r.PGORecheck
	}
	return DefaultPGORecheck
}

// pgoEvents reads the Warning Events recorded on a PostgresCluster from the
// cache (only Warnings on PostgresClusters are cached and watched), and when
// the PostgresCluster was last written: PGO reconciles every write, so what
// it recorded before speaks of an older spec.
func (r *PostgresStackReconciler) pgoEvents(ctx context.Context, pc *unstructured.Unstructured) (pgo.Events, error) {
	list := &corev1.EventList{}
	if err := r.List(ctx, list, client.InNamespace(pc.GetNamespace())); err != nil {
		return pgo.Events{}, fmt.Errorf("list Events of PostgresCluster %s/%s: %w", pc.GetNamespace(), pc.GetName(), err)
	}
	events := pgo.Events{Since: lastWritten(pc.GetManagedFields())}
	for _, e := range list.Items {
		if e.InvolvedObject.UID == pc.GetUID() {
			events.Items = append(events.Items, pgo.Event{Type: e.Type, Source: e.Source.Component, Reason: e.Reason, Message: e.Message, LastSeen: lastSeen(&e)})
		}
	}
	return events, nil
}

// lastWritten is the newest time a field manager wrote the object outside
// its status; zero when unknown.
func lastWritten(fields []metav1.ManagedFieldsEntry) time.Time {
	var latest time.Time
	for _, f := range fields {
		if f.Subresource == "" && f.Time != nil && f.Time.After(latest) {
			latest = f.Time.Time
		}
	}
	return latest
}

// lastSeen is when an Event was last recorded, whichever API recorded it.
func lastSeen(e *corev1.Event) time.Time {
	latest := e.CreationTimestamp.Time
	for _, t := range []time.Time{e.FirstTimestamp.Time, e.LastTimestamp.Time, e.EventTime.Time} {
		if t.After(latest) {
			latest = t
		}
	}
	if e.Series != nil && e.Series.LastObservedTime.After(latest) {
		latest = e.Series.LastObservedTime.Time
	}
	return latest
}

// getPostgresCluster reads the stack's PostgresCluster from the cache of
// managed ones; nil when there is none. A PostgresCluster of the stack's name
// that pgstack does not manage yet reads as none, and the apply takes it over.
func (r *PostgresStackReconciler) getPostgresCluster(ctx context.Context, stack *platformv1alpha1.PostgresStack) (*unstructured.Unstructured, error) {
	pc := pgo.NewPostgresCluster()
	if err := r.pgo().Get(ctx, client.ObjectKeyFromObject(stack), pc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get PostgresCluster %s/%s: %w", stack.Namespace, stack.Name, err)
	}
	return pc, nil
}

// apply writes obj with server-side apply under pgstack's one field owner,
// taking back fields someone else changed and leaving fields we do not set
// alone. It returns the object as the API server holds it after the write.
func (r *PostgresStackReconciler) apply(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	got := obj.DeepCopy()
	if err := r.Patch(ctx, got, client.Apply, client.ForceOwnership); err != nil {
		return nil, err
	}
	return got, nil
}

// ownedBy reports whether obj carries an owner reference to the stack.
func ownedBy(obj client.Object, stack *platformv1alpha1.PostgresStack) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID == stack.UID {
			return true
		}
	}
	return false
}

// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch

// primaryOf is the pod Patroni made the cluster's leader, from the cache
// of leader pods' metadata; nil when none leads, or when Patroni's labels
// name more than one (a moment of failover: the next label change brings
// the stack back).
func (r *PostgresStackReconciler) primaryOf(ctx context.Context, pc *unstructured.Unstructured) (*metav1.PartialObjectMetadata, error) {
	leaders := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"}}
	if err := r.List(ctx, leaders, client.InNamespace(pc.GetNamespace()),
		client.MatchingLabels{labelPGOCluster: pc.GetName(), labelPGORole: rolePatroniLeader}); err != nil {
		return nil, fmt.Errorf("list the leader pods of PostgresCluster %s/%s: %w", pc.GetNamespace(), pc.GetName(), err)
	}
	if len(leaders.Items) != 1 {
		return nil, nil
	}
	return &leaders.Items[0], nil
}
