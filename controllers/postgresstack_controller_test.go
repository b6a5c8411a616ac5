package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/controllers"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/internal/policy"
)

const (
	pkg      = "postgresql"
	csv5_8_8 = "postgresoperator.v5.8.8"
	csv5_8_9 = "postgresoperator.v5.8.9"
)

func TestFirstInstallAutomaticToReady(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, nil))

	waitCondition(t, stack, platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionFalse, platformv1alpha1.ReasonAwaitingInstallPlan)
	sub := o.subscription(pkg)
	if sub.Spec.InstallPlanApproval != operatorsv1alpha1.ApprovalManual || sub.Spec.Channel != "v5" || sub.Spec.CatalogSource != "operatorhubio-catalog" {
		t.Errorf("Subscription spec = %+v; want Manual approval on OperatorHub's v5 channel", sub.Spec)
	}
	groups := &operatorsv1.OperatorGroupList{}
	must(t, k8s.List(context.Background(), groups, client.InNamespace(o.ns)))
	if len(groups.Items) != 1 || len(groups.Items[0].Spec.TargetNamespaces) != 0 {
		t.Errorf("want one AllNamespaces OperatorGroup in %s, got %+v", o.ns, groups.Items)
	}

	plan := o.resolve(sub, csv5_8_9)
	o.waitApproved(plan)
	waitEvent(t, stack, "InstallPlanApproved")
	o.install(sub, plan, csv5_8_9, operatorsv1alpha1.CSVPhaseSucceeded)

	waitCondition(t, stack, platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionTrue, platformv1alpha1.ReasonSucceeded)
	pc := getPostgresCluster(t, ns, "hippo")
	if pc.GetLabels()[controllers.ManagedLabel] != controllers.ManagedValue {
		t.Errorf("PostgresCluster labels = %v, want managed by pgstack", pc.GetLabels())
	}
	if len(pc.GetOwnerReferences()) != 0 {
		t.Errorf("under Retain the PostgresCluster must have no owner reference, got %v", pc.GetOwnerReferences())
	}
	// Deletion under Retain with Keep has nothing to do: no finalizer.
	if got := getStack(t, stack); controllerutil.ContainsFinalizer(got, controllers.Finalizer) {
		t.Errorf("a Retain stack with removal Keep carries finalizers %v; deletion has nothing to hold it for", got.Finalizers)
	}
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionFalse, "")
	if k := kstatusOf(t, stack); k != kstatus.InProgressStatus {
		t.Errorf("kstatus while PGO works = %s, want InProgress", k)
	}

	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionFalse, "")
	waitCondition(t, stack, platformv1alpha1.ConditionReconciling, metav1.ConditionFalse, "")
	if k := kstatusOf(t, stack); k != kstatus.CurrentStatus {
		t.Errorf("kstatus of a Ready stack = %s, want Current", k)
	}
	got := getStack(t, stack)
	if got.Status.Operator.Version != "5.8.9" || got.Status.Cluster.Name != "hippo" || got.Status.Cluster.ReadyInstances != 1 {
		t.Errorf("status = %+v", got.Status)
	}
	waitEvent(t, stack, platformv1alpha1.ReasonReady)
}

func TestManualApprovalWaitsForAPerson(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Operator.Approval = platformv1alpha1.ApprovalManual
	}))
	sub := o.subscription(pkg)
	plan := o.resolve(sub, csv5_8_9)

	c := waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, policy.ReasonManualApprovalRequired)
	if !containsAll(c.Message, plan.Name, "5.8.9") {
		t.Errorf("Stalled message %q should name the plan and the version", c.Message)
	}
	waitEvent(t, stack, policy.ReasonManualApprovalRequired)
	if got := getStack(t, stack); got.Status.Operator.PendingVersion != "5.8.9" {
		t.Errorf("pendingVersion = %q, want 5.8.9", got.Status.Operator.PendingVersion)
	}
	if k := kstatusOf(t, stack); k != kstatus.FailedStatus {
		t.Errorf("kstatus while a person must approve = %s, want Failed (Stalled)", k)
	}
	assertNotApproved(t, plan)

	// A person approves, as the user document says.
	got := &operatorsv1alpha1.InstallPlan{}
	must(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(plan), got))
	got.Spec.Approved = true
	must(t, k8s.Update(context.Background(), got))
	o.install(sub, plan, csv5_8_9, operatorsv1alpha1.CSVPhaseSucceeded)
	getPostgresCluster(t, ns, "hippo")
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
}

func TestVersionRangeExcludingTheCatalogHeadApprovesNothing(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Operator.Versions = ">=5.7.0 <5.8.9"
	}))
	plan := o.resolve(o.subscription(pkg), csv5_8_9)
	c := waitCondition(t, stack, platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionFalse, policy.ReasonOutsideVersionRange)
	if !containsAll(c.Message, "5.8.9", ">=5.7.0 <5.8.9") {
		t.Errorf("message %q should say which version and which range", c.Message)
	}
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, policy.ReasonOutsideVersionRange)
	assertNotApproved(t, plan)
}

func TestUpgradeInsideRangeApprovedOutsideWindowHeld(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	// A window on Saturdays 02:00-06:00 UTC.
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Operator.Versions = ">=5.8.0 <5.9.0"
		s.Spec.Operator.MaintenanceWindow = &platformv1alpha1.MaintenanceWindow{Days: []platformv1alpha1.Weekday{"Sat"}, Start: "02:00", Duration: "4h", TimeZone: "UTC"}
	}))
	sub := o.installFirst(pkg, csv5_8_8) // the first install ignores the window
	getPostgresCluster(t, ns, "hippo")
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")

	// Friday noon: the upgrade waits, and the stack stays Ready.
	friday := time.Date(2026, time.November, 27, 12, 0, 0, 0, time.UTC)
	clock.Store(&friday)
	t.Cleanup(func() { now := time.Now(); clock.Store(&now) })
	plan := o.resolve(sub, csv5_8_9)
	c := waitCondition(t, stack, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionFalse, policy.ReasonOutsideMaintenanceWindow)
	if !containsAll(c.Message, "5.8.9", "2026-11-28T02:00:00Z") {
		t.Errorf("message %q should name the version and when the window opens", c.Message)
	}
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	assertNotApproved(t, plan)

	// Saturday 03:00: inside the window; the next look approves it.
	saturday := time.Date(2026, time.November, 28, 3, 0, 0, 0, time.UTC)
	clock.Store(&saturday)
	touch(t, stack)
	o.waitApproved(plan)
	o.install(sub, plan, csv5_8_9, operatorsv1alpha1.CSVPhaseSucceeded)
	waitCondition(t, stack, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionTrue, "")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9 is installed")
}

func TestUpgradeOutsideRangeNotApproved(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) { s.Spec.Operator.Versions = "<5.8.9" }))
	sub := o.installFirst(pkg, csv5_8_8)
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	plan := o.resolve(sub, csv5_8_9)
	waitCondition(t, stack, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionFalse, policy.ReasonOutsideVersionRange)
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	assertNotApproved(t, plan)
}

func TestSharedPlanCarryingANeighboursManualCSVIsNotApproved(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	// A neighbour's operator in the same namespace, approved by hand.
	neighbour := &operatorsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: "redis", Namespace: o.ns},
		Spec: &operatorsv1alpha1.SubscriptionSpec{Package: "redis-operator", Channel: "stable", CatalogSource: "operatorhubio-catalog",
			CatalogSourceNamespace: "olm", InstallPlanApproval: operatorsv1alpha1.ApprovalManual},
	}
	must(t, k8s.Create(context.Background(), neighbour))
	o.setSubscriptionStatus("redis", func(s *operatorsv1alpha1.SubscriptionStatus) { s.CurrentCSV = "redis-operator.v0.18.0" })

	stack := createStack(t, newStack(ns, "hippo", o.ns, nil))
	plan := o.resolve(o.subscription(pkg), csv5_8_9, "redis-operator.v0.18.0")
	c := waitCondition(t, stack, platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionFalse, policy.ReasonForeignCSV)
	if !containsAll(c.Message, "redis-operator.v0.18.0") {
		t.Errorf("message %q should name the neighbour's CSV", c.Message)
	}
	assertNotApproved(t, plan)
}

func TestTwoStacksShareOneSubscriptionAndAConflictingOneStalls(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	a := createStack(t, newStack(newNamespace(t, "team-a"), "hippo", o.ns, nil))
	b := createStack(t, newStack(newNamespace(t, "team-b"), "zebra", o.ns, nil))
	o.installFirst(pkg, csv5_8_9)
	for _, s := range []*platformv1alpha1.PostgresStack{a, b} {
		waitCondition(t, s, platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionTrue, "")
		pgoReportsReady(t, s.Namespace, s.Name)
		waitCondition(t, s, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
	}
	c := createStack(t, newStack(newNamespace(t, "team-c"), "lion", o.ns, func(s *platformv1alpha1.PostgresStack) { s.Spec.Operator.Channel = "v6" }))
	stalled := waitCondition(t, c, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonSubscriptionConflict)
	if !containsAll(stalled.Message, a.Namespace+"/hippo", `"v5"`, `"v6"`) {
		t.Errorf("conflict message %q should name the other stack and both channels", stalled.Message)
	}
	if sub := o.subscription(pkg); sub.Spec.Channel != "v5" {
		t.Errorf("the conflicting stack changed the Subscription's channel to %q", sub.Spec.Channel)
	}
}

func TestAdoptsAHandMadeSubscription(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	// my-postgresql, as OperatorHub's install YAML creates it.
	mine := &operatorsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: "my-postgresql", Namespace: o.ns},
		Spec: &operatorsv1alpha1.SubscriptionSpec{Package: pkg, Channel: "v5", CatalogSource: "operatorhubio-catalog",
			CatalogSourceNamespace: "olm", InstallPlanApproval: operatorsv1alpha1.ApprovalAutomatic},
	}
	must(t, k8s.Create(context.Background(), mine))
	og := &operatorsv1.OperatorGroup{ObjectMeta: metav1.ObjectMeta{Name: "global-operators", Namespace: o.ns}}
	must(t, k8s.Create(context.Background(), og))

	stack := createStack(t, newStack(newNamespace(t, "team-a"), "hippo", o.ns, nil))
	waitEvent(t, stack, "SubscriptionAdopted")
	sub := o.subscription(pkg) // fails if a second Subscription appeared
	if sub.Name != "my-postgresql" || sub.Spec.InstallPlanApproval != operatorsv1alpha1.ApprovalManual || sub.Labels[controllers.ManagedLabel] != controllers.ManagedValue {
		t.Errorf("adopted Subscription = %s %+v labels %v; want my-postgresql switched to Manual and labelled", sub.Name, sub.Spec, sub.Labels)
	}
	groups := &operatorsv1.OperatorGroupList{}
	must(t, k8s.List(context.Background(), groups, client.InNamespace(o.ns)))
	if len(groups.Items) != 1 {
		t.Errorf("want the existing OperatorGroup kept alone, got %d", len(groups.Items))
	}
	o.installFirst(pkg, csv5_8_9)
	waitCondition(t, stack, platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionTrue, "")
}

func TestTwoOperatorGroupsStall(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	for _, name := range []string{"one", "two"} {
		must(t, k8s.Create(context.Background(), &operatorsv1.OperatorGroup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.ns}}))
	}
	stack := createStack(t, newStack(newNamespace(t, "team-a"), "hippo", o.ns, nil))
	c := waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonOperatorGroupConflict)
	if !containsAll(c.Message, "one, two") {
		t.Errorf("message %q should list the OperatorGroups", c.Message)
	}
	// Removing one lets the install go on.
	must(t, k8s.Delete(context.Background(), &operatorsv1.OperatorGroup{ObjectMeta: metav1.ObjectMeta{Name: "two", Namespace: o.ns}}))
	o.subscription(pkg)
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionFalse, "")
}

func TestCSVFailedIsReportedAndRecovers(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	stack := createStack(t, newStack(newNamespace(t, "team-a"), "hippo", o.ns, nil))
	sub := o.subscription(pkg)
	plan := o.resolve(sub, csv5_8_9)
	o.waitApproved(plan)
	o.install(sub, plan, csv5_8_9, operatorsv1alpha1.CSVPhaseFailed)
	o.setCSVPhase(csv5_8_9, operatorsv1alpha1.CSVPhaseFailed, operatorsv1alpha1.CSVReasonComponentFailed, "install strategy failed: deployment not available")
	// The message carries OLM's reason and message.
	waitCondition(t, stack, platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionFalse, platformv1alpha1.ReasonCSVFailed,
		string(operatorsv1alpha1.CSVReasonComponentFailed), "deployment not available")
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonCSVFailed)
	waitEvent(t, stack, platformv1alpha1.ReasonCSVFailed)

	o.setCSVPhase(csv5_8_9, operatorsv1alpha1.CSVPhaseSucceeded, operatorsv1alpha1.CSVReasonInstallSuccessful, "")
	waitCondition(t, stack, platformv1alpha1.ConditionOperatorInstalled, metav1.ConditionTrue, "")
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionFalse, "")
}

func TestDriftOnOwnedFieldsIsRestoredOthersLeftAlone(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, nil))
	o.installFirst(pkg, csv5_8_9)
	pc := getPostgresCluster(t, ns, "hippo")

	// Someone edits a field pgstack owns, and adds one it does not. (Not
	// postgresVersion: a version set by hand is taken as what runs and held,
	// see TestAVersionBelowTheRunningOneIsHeld.)
	patch := client.MergeFrom(pc.DeepCopy())
	sets, _, _ := unstructured.NestedSlice(pc.Object, "spec", "instances")
	sets[0].(map[string]any)["replicas"] = int64(3)
	must(t, unstructured.SetNestedSlice(pc.Object, sets, "spec", "instances"))
	must(t, unstructured.SetNestedField(pc.Object, "hand-set", "metadata", "annotations", "team/note"))
	must(t, k8s.Patch(context.Background(), pc, patch, client.FieldOwner("kubectl-edit")))

	eventually(t, "replicas restored", func() (bool, error) {
		got := pgo.NewPostgresCluster()
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(pc), got); err != nil {
			return false, err
		}
		sets, _, _ := unstructured.NestedSlice(got.Object, "spec", "instances")
		return len(sets) == 1 && sets[0].(map[string]any)["replicas"] == int64(1) && got.GetAnnotations()["team/note"] == "hand-set", nil
	})
	_ = stack
}

func TestDeleteWithRetainLeavesTheDatabase(t *testing.T) {
	o, ns, stack := installedHippo(t)
	// Foreground deletion needs the garbage collector, which envtest does not
	// run; with no owner reference under Retain, GC has nothing to cascade to.
	must(t, k8s.Delete(context.Background(), stack))
	waits.StackGone(t, stack)
	pc := getPostgresCluster(t, ns, "hippo")
	if !pc.GetDeletionTimestamp().IsZero() || len(pc.GetOwnerReferences()) != 0 {
		t.Errorf("PostgresCluster after Retain: deletionTimestamp %v, owners %v; want untouched and unowned", pc.GetDeletionTimestamp(), pc.GetOwnerReferences())
	}
	// The operator stays too (removal Keep).
	o.subscription(pkg)
}

func TestDeleteWithDeleteRemovesTheClusterAndDeleteIfUnusedTheOperatorAfterTheLastStack(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	nsA, nsB := newNamespace(t, "team-a"), newNamespace(t, "team-b")
	deleting := func(s *platformv1alpha1.PostgresStack) {
		s.Spec.DeletionPolicy = platformv1alpha1.DeletionDelete
		s.Spec.Operator.Removal = platformv1alpha1.RemovalDeleteIfUnused
	}
	a := createStack(t, newStack(nsA, "hippo", o.ns, deleting))
	b := createStack(t, newStack(nsB, "zebra", o.ns, deleting))
	o.installFirst(pkg, csv5_8_9)
	pcA := getPostgresCluster(t, nsA, "hippo")
	if refs := pcA.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != getStack(t, a).UID {
		t.Errorf("under Delete the stack owns its PostgresCluster; owners = %v", refs)
	}
	getPostgresCluster(t, nsB, "zebra")

	must(t, k8s.Delete(context.Background(), a))
	eventually(t, "hippo's PostgresCluster and stack gone", func() (bool, error) {
		errPC := k8s.Get(context.Background(), client.ObjectKey{Namespace: nsA, Name: "hippo"}, pgo.NewPostgresCluster())
		errStack := k8s.Get(context.Background(), client.ObjectKeyFromObject(a), &platformv1alpha1.PostgresStack{})
		return apierrors.IsNotFound(errPC) && apierrors.IsNotFound(errStack), nil
	})
	// zebra still uses the operator.
	o.subscription(pkg)

	// OLM holds a deleted CSV with its own finalizer while it cleans up;
	// this one stands for it, so the wait can be seen.
	const held = "test.pgstack.dev/held"
	csvKey := client.ObjectKey{Namespace: o.ns, Name: csv5_8_9}
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	must(t, k8s.Get(context.Background(), csvKey, csv))
	before := csv.DeepCopy()
	controllerutil.AddFinalizer(csv, held)
	must(t, k8s.Patch(context.Background(), csv, client.MergeFrom(before)))

	must(t, k8s.Delete(context.Background(), b))
	// The stack stays, and says why: released now, it would leave an operator
	// behind if the manager died here or OLM installed the CSV again.
	waitCondition(t, b, platformv1alpha1.ConditionReady, metav1.ConditionFalse, platformv1alpha1.ReasonDeleting,
		"waiting for OLM to remove CSV "+csv5_8_9)
	subs := &operatorsv1alpha1.SubscriptionList{}
	must(t, k8s.List(context.Background(), subs, client.InNamespace(o.ns)))
	if len(subs.Items) != 0 {
		t.Errorf("the CSV is being removed while %d Subscription(s) remain; OLM's order is the Subscription first", len(subs.Items))
	}
	must(t, k8s.Get(context.Background(), csvKey, csv))
	before = csv.DeepCopy()
	controllerutil.RemoveFinalizer(csv, held)
	must(t, k8s.Patch(context.Background(), csv, client.MergeFrom(before)))
	eventually(t, "operator removed, then the last stack released", func() (bool, error) {
		errCSV := k8s.Get(context.Background(), csvKey, &operatorsv1alpha1.ClusterServiceVersion{})
		errStack := k8s.Get(context.Background(), client.ObjectKeyFromObject(b), &platformv1alpha1.PostgresStack{})
		return apierrors.IsNotFound(errCSV) && apierrors.IsNotFound(errStack), nil
	})
}

// The CRD's pattern judges a range's shape, not every rule of the semver
// parser: two hyphen ranges in a row pass the pattern and the parser refuses
// them. The controller stalls such a stack instead of judging plans by it.
func TestARangeTheParserRefusesStallsAsInvalidPolicy(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	const versions = "5.7.0 - 5.8.0 - 5.9.0"
	if policy.ValidateRange(versions) == nil {
		t.Fatalf("the semver parser accepts %q; this test needs a range it refuses", versions)
	}
	stack := newStack(newNamespace(t, "team-a"), "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) { s.Spec.Operator.Versions = versions })
	if err := k8s.Create(context.Background(), stack); err != nil {
		t.Fatalf("the API server refused %q, so this test cannot reach the controller's check: %v", versions, err)
	}
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonInvalidPolicy, "spec.operator.versions", versions)
}

// touch changes an annotation so the manager looks at the stack again, as
// any edit would.
func touch(t *testing.T, s *platformv1alpha1.PostgresStack) {
	t.Helper()
	updateStack(t, s, func(got *platformv1alpha1.PostgresStack) {
		if got.Annotations == nil {
			got.Annotations = map[string]string{}
		}
		got.Annotations["test/touched"] = time.Now().Format(time.RFC3339Nano)
	})
}

// updateStack changes the stack as a person would.
func updateStack(t *testing.T, s *platformv1alpha1.PostgresStack, change func(*platformv1alpha1.PostgresStack)) {
	t.Helper()
	waits.UpdateStack(t, s, change)
}

// A field pgstack stops applying leaves the PostgresCluster: the live
// object still holds everything else, so only the applied stamp shows the
// change. Turning the pooler off must take PgBouncer away.
func TestTurningAFeatureOffRemovesItFromThePostgresCluster(t *testing.T) {
	_, ns, stack := installedHippo(t)
	proxy := func() (bool, error) {
		_, found, err := unstructured.NestedMap(getPostgresCluster(t, ns, "hippo").Object, "spec", "proxy")
		return found, err
	}
	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Pooler = &platformv1alpha1.Pooler{} })
	eventually(t, "PgBouncer in the PostgresCluster", proxy)
	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.Postgres.Pooler = nil })
	eventually(t, "no PgBouncer in the PostgresCluster once the pooler is off", func() (bool, error) {
		found, err := proxy()
		return !found, err
	})
}

func TestSwitchingToRetainDropsTheOwnerReferenceAtOnce(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.DeletionPolicy = platformv1alpha1.DeletionDelete
	}))
	o.installFirst(pkg, csv5_8_9)
	eventually(t, "the stack owns its PostgresCluster under Delete", func() (bool, error) {
		return len(getPostgresCluster(t, ns, "hippo").GetOwnerReferences()) == 1, nil
	})
	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.DeletionPolicy = platformv1alpha1.DeletionRetain })
	// From now on a foreground delete of the stack cannot reach the database.
	eventually(t, "no owner reference under Retain", func() (bool, error) {
		return len(getPostgresCluster(t, ns, "hippo").GetOwnerReferences()) == 0, nil
	})
}

// A Retain stack carries no finalizer; switching it to Delete adds the
// finalizer before the owner reference, so that a deletion from then on
// deletes the PostgresCluster as asked.
func TestSwitchingToDeleteAddsTheFinalizerThenTheOwnerReference(t *testing.T) {
	_, ns, stack := installedHippo(t)
	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.DeletionPolicy = platformv1alpha1.DeletionDelete })
	eventually(t, "the stack owns its PostgresCluster under Delete", func() (bool, error) {
		return len(getPostgresCluster(t, ns, "hippo").GetOwnerReferences()) == 1, nil
	})
	if got := getStack(t, stack); !controllerutil.ContainsFinalizer(got, controllers.Finalizer) {
		t.Fatalf("the PostgresCluster is owned but the stack carries no finalizer (%v): a delete now would skip deletionPolicy", got.Finalizers)
	}
	must(t, k8s.Delete(context.Background(), stack))
	eventually(t, "the PostgresCluster deleted, then the stack", func() (bool, error) {
		pcErr := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "hippo"}, pgo.NewPostgresCluster())
		stackErr := k8s.Get(context.Background(), client.ObjectKeyFromObject(stack), &platformv1alpha1.PostgresStack{})
		return apierrors.IsNotFound(pcErr) && apierrors.IsNotFound(stackErr), nil
	})
}

// A switch to Delete followed at once by a delete: whichever comes first,
// the database goes only as Delete asks, and stays otherwise.
func TestSwitchingToDeleteThenDeletingAtOnceNeverLosesDataUnasked(t *testing.T) {
	_, ns, stack := installedHippo(t)
	updateStack(t, stack, func(s *platformv1alpha1.PostgresStack) { s.Spec.DeletionPolicy = platformv1alpha1.DeletionDelete })
	must(t, k8s.Delete(context.Background(), stack))
	waits.StackGone(t, stack)
	pc := pgo.NewPostgresCluster()
	err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "hippo"}, pc)
	owners := pc.GetOwnerReferences()
	switch {
	case apierrors.IsNotFound(err):
		t.Log("the manager saw the switch before the delete: Delete carried out")
	case err != nil:
		t.Fatal(err)
	case !pc.GetDeletionTimestamp().IsZero():
		t.Errorf("the stack is gone while its PostgresCluster is still being deleted: the finalizer went before Delete was carried out")
	case len(owners) == 0:
		t.Log("the delete came before the manager saw the switch: the stack went as a Retain stack, the database stays")
	case len(owners) == 1 && owners[0].UID == stack.UID && owners[0].Controller != nil && *owners[0].Controller:
		// The API server removed the stack although the manager's finalizer
		// patch had succeeded (kubernetes/kubernetes#77988); the owner
		// reference applied after it lets the garbage collector (absent
		// from envtest) carry out the Delete the spec asked for.
		t.Log("the delete raced the finalizer: the gone stack's owner reference hands the cluster to the garbage collector, as Delete asks")
	default:
		t.Errorf("the PostgresCluster is owned by %v, not by the gone stack alone", owners)
	}
}

func TestAMissingCatalogSourceStalls(t *testing.T) {
	o := newInstallNamespace(t, "operators")
	stack := createStack(t, newStack(newNamespace(t, "team-a"), "hippo", o.ns, func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Operator.Source = "no-such-catalog"
	}))
	waitCondition(t, stack, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonCatalogNotFound, "olm/no-such-catalog")
}

// A new stack's way to Ready is told by one Event (each is an API write per
// stack); a PostgresCluster that goes missing and is created again is news.
func TestOnlyAClusterCreatedAgainIsAnEvent(t *testing.T) {
	ctx := context.Background()
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, nil))
	o.installFirst(pkg, csv5_8_9)
	pc := getPostgresCluster(t, ns, "hippo")
	pgoReportsReady(t, ns, "hippo")
	waitCondition(t, stack, platformv1alpha1.ConditionReady, metav1.ConditionTrue, platformv1alpha1.ReasonReady)
	waitEvent(t, stack, platformv1alpha1.ReasonReady)
	for _, e := range stackEvents(t, stack) {
		if e.Reason == platformv1alpha1.EventPostgresClusterCreated || e.Reason == platformv1alpha1.ReasonInstancesNotReady || e.Reason == platformv1alpha1.ReasonAwaitingPGO {
			t.Errorf("a new stack's way to Ready told %s (%s)", e.Reason, e.Note)
		}
	}

	must(t, k8s.Delete(ctx, pc))
	if e := waitEvent(t, stack, platformv1alpha1.EventPostgresClusterCreated); e.Type != corev1.EventTypeWarning || !strings.Contains(e.Note, "again") {
		t.Errorf("the re-creation Event is %s %q, want a Warning saying it was created again", e.Type, e.Note)
	}
	getPostgresCluster(t, ns, "hippo")
}

// stackEvents are the Events recorded about the stack so far.
func stackEvents(t *testing.T, s *platformv1alpha1.PostgresStack) []eventsv1.Event {
	t.Helper()
	list := &eventsv1.EventList{}
	must(t, k8s.List(context.Background(), list, client.InNamespace(s.Namespace)))
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == s.Name {
			out = append(out, e)
		}
	}
	return out
}
