package controllers_test

// The controller suite runs the manager against a real kube-apiserver and
// etcd (test/testenv) with OLM's and PGO's real CRDs. No OLM operator runs
// here: the test moves Subscription, InstallPlan and CSV status the way OLM
// does, so that each policy decision can be driven exactly. The same flows on
// the full local cluster with OLM's own operators live in test/e2e.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"go.uber.org/zap/zapcore"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/controllers"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/test/expect"
	"github.com/pgstack/pgstack/test/testenv"
)

var (
	env   *testenv.Env
	k8s   client.Client
	waits expect.Waiter
	// clock is the time the manager judges maintenance windows by.
	clock atomic.Pointer[time.Time]
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.Level(zapLevel())))
	now := time.Now()
	clock.Store(&now)
	os.Exit(testenv.RunTests(m, func(e *testenv.Env) error {
		env, k8s = e, e.Client
		waits = expect.Waiter{Client: k8s, Bound: waitBound}
		if err := createCatalog(k8s); err != nil {
			return err
		}
		// The manager runs until the process ends with the tests.
		return startManager(context.Background(), env, &sync.WaitGroup{})
	}))
}

func zapLevel() zapcore.Level {
	if os.Getenv("PGSTACK_TEST_LOG") != "" {
		return -10
	}
	return 10 // quiet unless asked
}

// startManager runs pgstack's manager against e until ctx ends.
func startManager(ctx context.Context, e *testenv.Env, wg *sync.WaitGroup) error {
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.Scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Some tests run a second manager against a second API server.
		Controller: config.Controller{SkipNameValidation: ptr(true)},
	})
	if err != nil {
		return err
	}
	r := controllers.NewReconciler(mgr)
	r.Now = func() time.Time { return *clock.Load() }
	// Look again soon at a cluster PGO has not judged, so that a test sees
	// the manager read PGO's Events without poking the stack.
	r.PGORecheck = time.Second
	// Pace progress-only status writes as the manager does, shorter.
	r.ProgressInterval = time.Second
	r.Client = statusLog{Client: r.Client}
	if err := r.SetupWithManager(mgr); err != nil {
		return err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return nil
}

// statusLog records every status the manager writes to a stack, so that a
// test can tell what the manager judged at each step, including a judgement
// a later reconcile overwrote at once.
type statusLog struct{ client.Client }

var written struct {
	sync.Mutex
	statuses map[client.ObjectKey][]platformv1alpha1.PostgresStackStatus
}

func (c statusLog) Status() client.SubResourceWriter { return statusLogWriter{c.Client.Status()} }

type statusLogWriter struct{ client.SubResourceWriter }

func (w statusLogWriter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	err := w.SubResourceWriter.Patch(ctx, obj, patch, opts...)
	if s, ok := obj.(*platformv1alpha1.PostgresStack); ok && err == nil {
		written.Lock()
		defer written.Unlock()
		if written.statuses == nil {
			written.statuses = map[client.ObjectKey][]platformv1alpha1.PostgresStackStatus{}
		}
		key := client.ObjectKeyFromObject(s)
		written.statuses[key] = append(written.statuses[key], *s.Status.DeepCopy())
	}
	return err
}

// writtenStatuses are the statuses the manager wrote to a stack, oldest first.
func writtenStatuses(s *platformv1alpha1.PostgresStack) []platformv1alpha1.PostgresStackStatus {
	written.Lock()
	defer written.Unlock()
	return append([]platformv1alpha1.PostgresStackStatus(nil), written.statuses[client.ObjectKeyFromObject(s)]...)
}

// --- what OLM would do, played by the test -----------------------------------

// olm plays OLM's part for one install namespace.
type olm struct {
	t  *testing.T
	ns string
}

func newInstallNamespace(t *testing.T, prefix string) *olm {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	must(t, k8s.Create(context.Background(), ns))
	return &olm{t: t, ns: ns.Name}
}

func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	must(t, k8s.Create(context.Background(), ns))
	return ns.Name
}

// subscription waits for the one Subscription for pkg in the namespace.
func (o *olm) subscription(pkg string) *operatorsv1alpha1.Subscription {
	o.t.Helper()
	var found *operatorsv1alpha1.Subscription
	eventually(o.t, fmt.Sprintf("a Subscription for %s in %s", pkg, o.ns), func() (bool, error) {
		list := &operatorsv1alpha1.SubscriptionList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(o.ns)); err != nil {
			return false, err
		}
		var matching []*operatorsv1alpha1.Subscription
		for i := range list.Items {
			if list.Items[i].Spec.Package == pkg {
				matching = append(matching, &list.Items[i])
			}
		}
		if len(matching) > 1 {
			return false, fmt.Errorf("%d Subscriptions for %s: want one", len(matching), pkg)
		}
		if len(matching) == 1 {
			found = matching[0]
		}
		return found != nil, nil
	})
	return found
}

// resolve does what OLM's resolver does: writes an InstallPlan in
// RequiresApproval for csvs and points the Subscription at it.
func (o *olm) resolve(sub *operatorsv1alpha1.Subscription, csvs ...string) *operatorsv1alpha1.InstallPlan {
	o.t.Helper()
	ctx := context.Background()
	plan := &operatorsv1alpha1.InstallPlan{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "install-", Namespace: o.ns},
		Spec:       operatorsv1alpha1.InstallPlanSpec{ClusterServiceVersionNames: csvs, Approval: operatorsv1alpha1.ApprovalManual},
	}
	must(o.t, k8s.Create(ctx, plan))
	plan.Status = operatorsv1alpha1.InstallPlanStatus{Phase: operatorsv1alpha1.InstallPlanPhaseRequiresApproval, CatalogSources: []string{}}
	// Each CSV's step, inline, as OLM writes it for a catalog serving its
	// bundles' objects.
	for _, csv := range csvs {
		manifest, err := json.Marshal(pgoCSV(csv, o.ns))
		must(o.t, err)
		plan.Status.Plan = append(plan.Status.Plan, &operatorsv1alpha1.Step{Resolving: csv, Status: operatorsv1alpha1.StepStatusUnknown,
			Resource: operatorsv1alpha1.StepResource{Kind: operatorsv1alpha1.ClusterServiceVersionKind, Name: csv, Manifest: string(manifest),
				Group: operatorsv1alpha1.GroupName, Version: operatorsv1alpha1.GroupVersion}})
	}
	must(o.t, k8s.Status().Update(ctx, plan))
	o.setSubscriptionStatus(sub.Name, func(s *operatorsv1alpha1.SubscriptionStatus) {
		s.CurrentCSV = csvs[0]
		s.State = operatorsv1alpha1.SubscriptionStateUpgradePending
		s.InstallPlanRef = &corev1.ObjectReference{Kind: "InstallPlan", Namespace: o.ns, Name: plan.Name, APIVersion: "operators.coreos.com/v1alpha1"}
	})
	return plan
}

func (o *olm) setSubscriptionStatus(name string, change func(*operatorsv1alpha1.SubscriptionStatus)) {
	o.t.Helper()
	eventually(o.t, "update Subscription status", func() (bool, error) {
		sub := &operatorsv1alpha1.Subscription{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: o.ns, Name: name}, sub); err != nil {
			return false, err
		}
		change(&sub.Status)
		sub.Status.LastUpdated = metav1.Now()
		err := k8s.Status().Update(context.Background(), sub)
		return err == nil, client.IgnoreAlreadyExists(ignoreConflict(err))
	})
}

// waitApproved waits until pgstack approves the plan.
func (o *olm) waitApproved(plan *operatorsv1alpha1.InstallPlan) {
	o.t.Helper()
	eventually(o.t, "install plan "+plan.Name+" approved", func() (bool, error) {
		got := &operatorsv1alpha1.InstallPlan{}
		err := k8s.Get(context.Background(), client.ObjectKeyFromObject(plan), got)
		return err == nil && got.Spec.Approved, err
	})
}

// install does what OLM does after approval: the plan completes and the CSV
// reaches phase.
func (o *olm) install(sub *operatorsv1alpha1.Subscription, plan *operatorsv1alpha1.InstallPlan, csvName string, phase operatorsv1alpha1.ClusterServiceVersionPhase) {
	o.t.Helper()
	ctx := context.Background()
	got := &operatorsv1alpha1.InstallPlan{}
	must(o.t, k8s.Get(ctx, client.ObjectKeyFromObject(plan), got))
	got.Status.Phase = operatorsv1alpha1.InstallPlanPhaseComplete
	must(o.t, k8s.Status().Update(ctx, got))
	o.setCSVPhase(csvName, phase, "", "")
	o.setSubscriptionStatus(sub.Name, func(s *operatorsv1alpha1.SubscriptionStatus) {
		s.InstalledCSV = csvName
		s.CurrentCSV = csvName
		s.State = operatorsv1alpha1.SubscriptionStateAtLatest
	})
}

func (o *olm) setCSVPhase(name string, phase operatorsv1alpha1.ClusterServiceVersionPhase, reason operatorsv1alpha1.ConditionReason, message string) {
	o.t.Helper()
	ctx := context.Background()
	csv := &operatorsv1alpha1.ClusterServiceVersion{}
	err := k8s.Get(ctx, client.ObjectKey{Namespace: o.ns, Name: name}, csv)
	if apierrors.IsNotFound(err) {
		csv = pgoCSV(name, o.ns)
		must(o.t, k8s.Create(ctx, csv))
	} else {
		must(o.t, err)
	}
	csv.Status = operatorsv1alpha1.ClusterServiceVersionStatus{Phase: phase, Reason: reason, Message: message,
		LastUpdateTime: ptr(metav1.Now()), LastTransitionTime: ptr(metav1.Now())}
	must(o.t, k8s.Status().Update(ctx, csv))
}

// pgoCSV is PGO's CSV as the suite's OLM installs it and puts in a plan.
func pgoCSV(name, namespace string) *operatorsv1alpha1.ClusterServiceVersion {
	return &operatorsv1alpha1.ClusterServiceVersion{
		TypeMeta:   metav1.TypeMeta{APIVersion: operatorsv1alpha1.SchemeGroupVersion.String(), Kind: operatorsv1alpha1.ClusterServiceVersionKind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: operatorsv1alpha1.ClusterServiceVersionSpec{DisplayName: "Crunchy Postgres for Kubernetes",
			InstallStrategy: operatorsv1alpha1.NamedInstallStrategy{StrategyName: "deployment",
				StrategySpec: operatorsv1alpha1.StrategyDetailsDeployment{DeploymentSpecs: []operatorsv1alpha1.StrategyDeploymentSpec{{
					Name: "pgo",
					Spec: appsv1.DeploymentSpec{
						Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pgo"}},
						Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pgo"}},
							Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "operator", Image: "pgo", Env: pgoEnv}}}},
					},
				}}}}},
	}
}

// pgoEnv is the operator container's env of PGO v5.8.9's release
// (config/manager/manager.yaml at PGO's v5.8.9 tag), trimmed to what
// pgstack reads: PostgreSQL images for 15 to 18, and the other defaults.
var pgoEnv = []corev1.EnvVar{
	{Name: "PGO_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
	{Name: "RELATED_IMAGE_POSTGRES_15", Value: "registry.developers.crunchydata.com/crunchydata/crunchy-postgres:ubi9-15.19-2633"},
	{Name: "RELATED_IMAGE_POSTGRES_16", Value: "registry.developers.crunchydata.com/crunchydata/crunchy-postgres:ubi9-16.15-2633"},
	{Name: "RELATED_IMAGE_POSTGRES_16_GIS_3.4", Value: "registry.developers.crunchydata.com/crunchydata/crunchy-postgres-gis:ubi9-16.15-3.4-2633"},
	{Name: "RELATED_IMAGE_POSTGRES_17", Value: "registry.developers.crunchydata.com/crunchydata/crunchy-postgres:ubi9-17.11-2633"},
	{Name: "RELATED_IMAGE_POSTGRES_18", Value: "registry.developers.crunchydata.com/crunchydata/crunchy-postgres:ubi9-18.6-2633"},
	{Name: "RELATED_IMAGE_PGBACKREST", Value: "registry.developers.crunchydata.com/crunchydata/crunchy-pgbackrest:ubi9-2.59.0-2633"},
	{Name: "RELATED_IMAGE_PGBOUNCER", Value: "registry.developers.crunchydata.com/crunchydata/crunchy-pgbouncer:ubi9-1.25-2633"},
	{Name: "RELATED_IMAGE_PGEXPORTER", Value: "registry.developers.crunchydata.com/crunchydata/crunchy-postgres-exporter:ubi9-0.19.1-2633"},
	{Name: "RELATED_IMAGE_PGUPGRADE", Value: "registry.developers.crunchydata.com/crunchydata/crunchy-upgrade:ubi9-18.6-2633"},
}

// installFirst runs a whole first install of csv as OLM would, approval by pgstack included.
func (o *olm) installFirst(pkg, csv string) *operatorsv1alpha1.Subscription {
	o.t.Helper()
	sub := o.subscription(pkg)
	plan := o.resolve(sub, csv)
	o.waitApproved(plan)
	o.install(sub, plan, csv, operatorsv1alpha1.CSVPhaseSucceeded)
	return sub
}

// --- what PGO would do -----------------------------------------------------

// pgoReportsReady writes the status PGO writes once every instance is ready.
func pgoReportsReady(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "PGO status on "+ns+"/"+name, func() (bool, error) {
		pc := pgo.NewPostgresCluster()
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pc); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		var instances []any
		sets, _, _ := unstructured.NestedSlice(pc.Object, "spec", "instances")
		for _, s := range sets {
			set := s.(map[string]any)
			replicas, ok := set["replicas"].(int64)
			if !ok {
				replicas = 1
			}
			instances = append(instances, map[string]any{"name": set["name"], "replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas})
		}
		now := metav1.Now().UTC().Format(time.RFC3339)
		conds := []any{}
		for _, c := range []string{"PGBackRestReplicaRepoReady", "PGBackRestReplicaCreate", "ProxyAvailable"} {
			conds = append(conds, map[string]any{"type": c, "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": now, "observedGeneration": pc.GetGeneration()})
		}
		pc.Object["status"] = map[string]any{"observedGeneration": pc.GetGeneration(), "instances": instances, "conditions": conds}
		err := k8s.Status().Update(context.Background(), pc)
		return err == nil, ignoreConflict(err)
	})
}

// pgoReportsBackup writes what PGO's status shows once its first backup
// (the one replicas are created from) completed on repo1.
func pgoReportsBackup(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "PGO's backup status on "+ns+"/"+name, func() (bool, error) {
		pc := pgo.NewPostgresCluster()
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pc); err != nil {
			return false, err
		}
		must(t, unstructured.SetNestedSlice(pc.Object, []any{map[string]any{"name": "repo1", "stanzaCreated": true, "replicaCreateBackupComplete": true}},
			"status", "pgbackrest", "repos"))
		err := k8s.Status().Update(context.Background(), pc)
		return err == nil, ignoreConflict(err)
	})
}

// pgoReportsUpgrade writes the Succeeded condition PGO's PGUpgrade
// controller writes when its Jobs finish (status "True" with
// PGUpgradeSucceeded, or "False" with PGUpgradeFailed).
func pgoReportsUpgrade(t *testing.T, ns, name, status, reason string) {
	t.Helper()
	eventually(t, "PGO's status on PGUpgrade "+ns+"/"+name, func() (bool, error) {
		u := pgo.NewPGUpgrade()
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			return false, err
		}
		u.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Succeeded", "status": status, "reason": reason,
			"message": reason, "lastTransitionTime": metav1.Now().UTC().Format(time.RFC3339), "observedGeneration": u.GetGeneration()}}}
		err := k8s.Status().Update(context.Background(), u)
		return err == nil, ignoreConflict(err)
	})
}

// --- stacks ----------------------------------------------------------------

func newStack(ns, name, installNS string, change func(*platformv1alpha1.PostgresStack)) *platformv1alpha1.PostgresStack {
	s := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	s.Spec.Operator.Namespace = installNS
	if change != nil {
		change(s)
	}
	return s
}

func createStack(t *testing.T, s *platformv1alpha1.PostgresStack) *platformv1alpha1.PostgresStack {
	t.Helper()
	must(t, k8s.Create(context.Background(), s))
	return s
}

func getStack(t *testing.T, s *platformv1alpha1.PostgresStack) *platformv1alpha1.PostgresStack {
	t.Helper()
	got := &platformv1alpha1.PostgresStack{}
	must(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(s), got))
	return got
}

func waitCondition(t *testing.T, s *platformv1alpha1.PostgresStack, condType string, status metav1.ConditionStatus, reason string, inMessage ...string) metav1.Condition {
	t.Helper()
	return waits.Condition(t, s, condType, status, reason, inMessage...)
}

func kstatusOf(t *testing.T, s *platformv1alpha1.PostgresStack) kstatus.Status {
	t.Helper()
	return waits.Kstatus(t, s)
}

func waitEvent(t *testing.T, s *platformv1alpha1.PostgresStack, reason string) eventsv1.Event {
	t.Helper()
	return waits.Event(t, s, reason)
}

func getPostgresCluster(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	var pc *unstructured.Unstructured
	eventually(t, "PostgresCluster "+ns+"/"+name, func() (bool, error) {
		pc = pgo.NewPostgresCluster()
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pc)
		return err == nil, client.IgnoreNotFound(err)
	})
	return pc
}

// --- plumbing --------------------------------------------------------------

func eventually(t *testing.T, what string, check func() (bool, error)) {
	t.Helper()
	waits.Eventually(t, what, check)
}

// assertNotApproved checks a plan was not approved. Callers first wait for a
// condition that proves the manager has judged the plan.
func assertNotApproved(t *testing.T, plan *operatorsv1alpha1.InstallPlan) {
	t.Helper()
	got := &operatorsv1alpha1.InstallPlan{}
	must(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(plan), got))
	if got.Spec.Approved {
		t.Fatalf("install plan %s was approved; policy forbids it", plan.Name)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func ptr[T any](v T) *T { return &v }

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// waitBound bounds every wait. Passing waits take well under a second; the
// bound is generous because CI's two cores also build and run other suites.
const waitBound = 90 * time.Second

// createCatalog creates OperatorHub's CatalogSource, which stacks name by
// default, as the user document's OLM install has it.
func createCatalog(c client.Client) error {
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "olm"}}); client.IgnoreAlreadyExists(err) != nil {
		return err
	}
	return c.Create(ctx, &operatorsv1alpha1.CatalogSource{
		ObjectMeta: metav1.ObjectMeta{Name: "operatorhubio-catalog", Namespace: "olm"},
		Spec:       operatorsv1alpha1.CatalogSourceSpec{SourceType: operatorsv1alpha1.SourceTypeGrpc, Address: "127.0.0.1:50051"},
	})
}

// installedHippo is the common start: stack hippo in a new namespace, PGO
// 5.8.9 installed for it through a new install namespace, and its
// PostgresCluster applied.
func installedHippo(t *testing.T) (*olm, string, *platformv1alpha1.PostgresStack) {
	t.Helper()
	o := newInstallNamespace(t, "operators")
	ns := newNamespace(t, "team-a")
	stack := createStack(t, newStack(ns, "hippo", o.ns, nil))
	o.installFirst(pkg, csv5_8_9)
	getPostgresCluster(t, ns, "hippo")
	return o, ns, stack
}
