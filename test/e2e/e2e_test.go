// Package e2e runs pgstack's manager on the full local cluster: a real
// control plane, real OLM resolving a real file-based catalog served by opm,
// kwok nodes on which OLM's operator Deployment becomes Available, and PGO's
// own manager, run by the harness for the pod OLM's Deployment makes,
// reconciling every PostgresCluster. Nothing here plays OLM's or PGO's part;
// only what runs inside PGO's pods stands in (test/insides).
package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/controllers"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/test/auditlog"
	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/cluster/catalog"
	"github.com/pgstack/pgstack/test/expect"
	"github.com/pgstack/pgstack/test/ledger"
)

var (
	lc       *cluster.Cluster
	k8s      client.Client
	approved *ledger.Ledger
	waits    expect.Waiter
)

// A step of OLM's (resolve, install, upgrade) takes seconds on the local
// cluster; this bounds each wait.
const stepTimeout = 2 * time.Minute

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The catalog starts at 5.8.8; scenarios publish newer versions as a
	// catalog update would.
	pgoPackage, err := catalog.PGO("5.8.7", "5.8.8")
	if err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		return 1
	}
	if os.Getenv("PGSTACK_TEST_LOG") != "" {
		ctrl.SetLogger(zap.New(zap.UseDevMode(true)))
	}
	auditDir, err := os.MkdirTemp("", "pgstack-e2e-audit-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(auditDir)
	audit, auditArgs, err := auditlog.Enable(auditDir, auditRules...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lc, err = cluster.StartFull(ctx, cluster.Options{Packages: []catalog.Package{pgoPackage},
		APIServerArgs: auditArgs, PodStarts: append(featurePodStarts, rolloutPodStarts...),
		Logf: func(format string, args ...any) { fmt.Printf(format+"\n", args...) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "local cluster:", err)
		return 1
	}
	defer func() { _ = lc.Stop() }()
	lc.StopOnSignal()
	k8s = lc.Client
	waits = expect.Waiter{Client: k8s, Bound: stepTimeout, Explain: func() string {
		return "olm: " + lc.LogTail("olm", 5) + "\ncatalog: " + lc.LogTail("catalog", 5)
	}}
	if approved, err = ledger.Start(ctx, lc.Config); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, err := ctrl.NewManager(lc.Config, ctrl.Options{Scheme: lc.Scheme, Cache: controllers.CacheOptions(),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	stacks := controllers.NewReconciler(mgr)
	if err := stacks.SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	if err := controllers.NewRolloutReconciler(mgr, stacks).SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	go func() { _ = mgr.Start(ctx) }()
	code := m.Run()
	if lc.ReportStandInErrors(os.Stderr) {
		code = 1
	}
	summary, problems, err := checkAudit(audit)
	if err != nil {
		problems = append(problems, err.Error())
	}
	fmt.Println("e2e: audit log:", summary)
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "e2e: audit log:", p)
		code = 1
	}
	return code
}

// The user document's journey, automated, on real OLM: adopt the hand-made
// Subscription, install, share, refuse a conflict, upgrade within the range,
// hold an upgrade for a person, refuse one outside the range, and delete
// without losing the database.
func TestInstallShareUpgradeAndDeleteOnRealOLM(t *testing.T) {
	ctx := context.Background()
	// What `kubectl apply -f operatorhub.io/install/postgresql.yaml` leaves behind.
	mine := &operatorsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: "my-postgresql", Namespace: "operators"},
		Spec: &operatorsv1alpha1.SubscriptionSpec{Package: "postgresql", Channel: "v5", CatalogSource: "operatorhubio-catalog",
			CatalogSourceNamespace: "olm", InstallPlanApproval: operatorsv1alpha1.ApprovalAutomatic},
	}
	must(t, k8s.Create(ctx, mine))

	hippo := createStack(t, "team-a", "hippo", func(s *platformv1alpha1.PostgresStack) {
		s.Spec.Operator.Versions = ">=5.8.0 <5.9.0"
	})
	t.Run("adopts the hand-made Subscription and installs through OLM", func(t *testing.T) {
		waitCondition(t, hippo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.8")
		subs := subscriptions(t)
		if len(subs) != 1 || subs[0].Name != "my-postgresql" || subs[0].Labels[controllers.ManagedLabel] != controllers.ManagedValue {
			t.Fatalf("want my-postgresql adopted and alone, got %v", names(subs))
		}
		if k := kstatusOf(t, hippo); k != kstatus.CurrentStatus {
			t.Errorf("kstatus of a Ready stack = %s, want Current", k)
		}
		csv := &operatorsv1alpha1.ClusterServiceVersion{}
		must(t, k8s.Get(ctx, client.ObjectKey{Namespace: "operators", Name: "postgresoperator.v5.8.8"}, csv))
		if csv.Status.Phase != operatorsv1alpha1.CSVPhaseSucceeded {
			t.Errorf("CSV phase = %s, want Succeeded (by OLM's own install checks)", csv.Status.Phase)
		}
	})

	zebra := createStack(t, "team-b", "zebra", nil)
	t.Run("a second stack shares the Subscription", func(t *testing.T) {
		waitCondition(t, zebra, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		if subs := subscriptions(t); len(subs) != 1 {
			t.Fatalf("want one Subscription for two stacks, got %v", names(subs))
		}
	})

	t.Run("a stack asking for another channel stalls and changes nothing", func(t *testing.T) {
		lion := createStack(t, "team-c", "lion", func(s *platformv1alpha1.PostgresStack) { s.Spec.Operator.Channel = "v6" })
		waitCondition(t, lion, platformv1alpha1.ConditionStalled, metav1.ConditionTrue, platformv1alpha1.ReasonSubscriptionConflict, "team-a/hippo", `"v6"`)
		if subs := subscriptions(t); len(subs) != 1 || subs[0].Spec.Channel != "v5" {
			t.Fatalf("the conflicting stack changed the Subscription: %+v", subs[0].Spec)
		}
		must(t, k8s.Delete(ctx, lion))
	})

	t.Run("an upgrade published inside the range is approved, and PGO rolls every cluster that pins no image", func(t *testing.T) {
		before := instanceImages(t)
		must(t, lc.PublishVersion(ctx, "postgresql", "5.8.9"))
		waitCondition(t, hippo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")
		waitCondition(t, zebra, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")
		// 5.8.9's Deployment changes every RELATED_IMAGE_* default (PGO
		// internal/config/config.go picks them for clusters without an
		// image): PGO moves both clusters' StatefulSets to the new image.
		var rolled []string
		eventually(t, "PGO rolls the instance StatefulSets onto 5.8.9's images", func() (bool, error) {
			rolled = rolled[:0]
			for name, image := range instanceImages(t) {
				if old, ok := before[name]; ok && old != image {
					rolled = append(rolled, name)
				}
			}
			return len(rolled) == len(before), nil
		})
		t.Logf("operator upgrade 5.8.8 -> 5.8.9: PGO rolled %d of %d instance StatefulSets at once: %v", len(rolled), len(before), rolled)
		waitCondition(t, hippo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")
		waitCondition(t, zebra, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")
	})

	t.Run("under Manual approval a person sees which clusters the upgrade restarts, approves, and PGO rolls exactly those", func(t *testing.T) {
		// zebra pins every image its database runs (it has no pooler or
		// monitoring); hippo takes PGO's defaults.
		release := pgoRelease(t, "5.8.9")
		update(t, zebra, func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Postgres.Image = envValue(t, release, pgo.PostgresEnv(16, ""))
			s.Spec.Postgres.Backups.Image = envValue(t, release, pgo.EnvPGBackRest)
		})
		update(t, hippo, func(s *platformv1alpha1.PostgresStack) {
			s.Spec.Operator.Approval = platformv1alpha1.ApprovalManual
			s.Spec.Operator.Versions = ">=5.8.0 <5.9.2"
		})
		waitCondition(t, zebra, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		before := instanceImages(t)
		// 5.9.0 ships new default images, as every 5.8.x release did.
		publishPGO(t, "5.9.0", release.Retagged("-e2e590"), nil)
		c := waitCondition(t, hippo, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionFalse, "ManualApprovalRequired", "5.9.0",
			"approving it restarts 1 of the 2 clusters sharing PGO: team-a/hippo")
		waitCondition(t, hippo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "")
		waitEvent(t, hippo, "ManualApprovalRequired")
		got := getStack(t, hippo).Status.Operator
		if !strings.Contains(c.Message, got.InstallPlan) {
			t.Errorf("message %q should name install plan %s", c.Message, got.InstallPlan)
		}
		want16 := envValue(t, release, pgo.PostgresEnv(16, ""))
		if p := got.PendingUpgrade; p == nil || p.Version != "5.9.0" || !p.ClusterRestarts || p.Blocked != "" ||
			!hasChange(p.Images, pgo.ComponentPostgres, want16, want16+"-e2e590") ||
			!hasChange(p.Images, pgo.ComponentPGBackRest, envValue(t, release, pgo.EnvPGBackRest), envValue(t, release, pgo.EnvPGBackRest)+"-e2e590") {
			t.Errorf("hippo's preview = %+v", p)
		}
		waitFor(t, zebra, "zebra's preview says its cluster does not restart", func(s *platformv1alpha1.PostgresStack) bool {
			p := s.Status.Operator.PendingUpgrade
			return p != nil && p.Version == "5.9.0" && !p.ClusterRestarts && len(p.Images) == 0
		})
		approveAsAPerson(t, got.InstallPlan)
		waitCondition(t, hippo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.9.0")
		// PGO rolls hippo onto 5.9.0's images; zebra's StatefulSets keep
		// their template: the preview named exactly the cluster PGO rolled.
		eventually(t, "PGO rolls hippo's instance StatefulSets onto 5.9.0's images", func() (bool, error) {
			for name, images := range instanceImages(t) {
				if strings.HasPrefix(name, "team-a/") && images == before[name] {
					return false, nil
				}
			}
			return true, nil
		})
		waitCondition(t, zebra, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.9.0")
		for name, images := range instanceImages(t) {
			if strings.HasPrefix(name, "team-b/") && images != before[name] {
				t.Errorf("PGO rolled %s, which pins its images: %s -> %s", name, before[name], images)
			}
		}
		if p := getStack(t, hippo).Status.Operator.PendingUpgrade; p != nil {
			t.Errorf("pendingUpgrade kept after the upgrade: %+v", p)
		}
	})

	t.Run("a new PGO without an image for a major version in use is not approved, and the stack says why", func(t *testing.T) {
		update(t, hippo, func(s *platformv1alpha1.PostgresStack) { s.Spec.Operator.Approval = platformv1alpha1.ApprovalAutomatic })
		release := pgoRelease(t, "5.9.0")
		publishPGO(t, "5.9.1", release.Without(pgo.PostgresEnv(16, "")), nil)
		// zebra pins its image: only hippo would be stranded.
		c := waitCondition(t, hippo, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionFalse, platformv1alpha1.ReasonUpgradeStrandsClusters,
			"PGO 5.9.1 would leave team-a/hippo without a PostgreSQL image", "RELATED_IMAGE_POSTGRES_16 unset")
		waitCondition(t, hippo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.9.0")
		if p := getStack(t, hippo).Status.Operator.PendingUpgrade; p == nil || p.Blocked != c.Message {
			t.Errorf("pendingUpgrade should carry the refusal: %+v", p)
		}
		waitCondition(t, zebra, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionFalse, platformv1alpha1.ReasonUpgradeStrandsClusters, "team-a/hippo")
	})

	t.Run("a plan whose CRDs stop serving a version or require a new field is not approved, naming the CRD and the rule", func(t *testing.T) {
		// The catalog replaces the bundle; the refused plan is deleted so
		// OLM resolves again (OLM v0 keeps a pending plan otherwise).
		release := pgoRelease(t, "5.9.0")
		crds := alteredCRDs(t)
		publishPGO(t, "5.9.1", release, crds)
		deletePendingPlan(t, hippo)
		c := waitCondition(t, hippo, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionFalse, platformv1alpha1.ReasonUnsafeCRDChange,
			"pgadmins.postgres-operator.crunchydata.com: rule servedVersionRemoval",
			"postgresclusters.postgres-operator.crunchydata.com v1beta1 ^.spec.openshift: rule required")
		t.Logf("refused: %s", c.Message)
		waitCondition(t, hippo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.9.0")
	})

	t.Run("the same version fixed in the catalog passes every check and is approved", func(t *testing.T) {
		publishPGO(t, "5.9.1", pgoRelease(t, "5.9.0"), nil)
		deletePendingPlan(t, hippo)
		waitCondition(t, hippo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.9.1")
	})

	t.Run("an upgrade outside the range is never approved", func(t *testing.T) {
		must(t, lc.PublishVersion(ctx, "postgresql", "5.9.2"))
		waitCondition(t, hippo, platformv1alpha1.ConditionUpgradeApproved, metav1.ConditionFalse, "OutsideVersionRange", "5.9.2", "<5.9.2")
		waitCondition(t, hippo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.9.1")
	})

	t.Run("deleting with Retain leaves the database", func(t *testing.T) {
		must(t, k8s.Delete(ctx, zebra, client.PropagationPolicy(metav1.DeletePropagationForeground)))
		waits.StackGone(t, zebra)
		pc := pgo.NewPostgresCluster()
		must(t, k8s.Get(ctx, client.ObjectKeyFromObject(zebra), pc))
		if !pc.GetDeletionTimestamp().IsZero() || len(pc.GetOwnerReferences()) != 0 {
			t.Errorf("zebra's PostgresCluster after a foreground delete under Retain: deleting=%v owners=%v", pc.GetDeletionTimestamp(), pc.GetOwnerReferences())
		}
	})

	t.Run("the ledger shows only approvals policy allowed", func(t *testing.T) {
		for _, a := range approved.In("operators") {
			switch {
			case a.Manager == controllers.FieldOwner && len(a.CSVNames) == 1 && (a.CSVNames[0] == "postgresoperator.v5.8.8" || a.CSVNames[0] == "postgresoperator.v5.8.9" || a.CSVNames[0] == "postgresoperator.v5.9.1"):
			case a.Manager == "a-person" && len(a.CSVNames) == 1 && a.CSVNames[0] == "postgresoperator.v5.9.0":
			case a.Approval == operatorsv1alpha1.ApprovalAutomatic && len(a.CSVNames) == 1 && a.CSVNames[0] == "postgresoperator.v5.8.8":
				// OLM itself approved the first plan of the hand-made Automatic
				// Subscription before pgstack adopted it, as it would anyway.
			default:
				t.Errorf("approval outside policy: %+v", a)
			}
		}
		if len(approved.In("operators")) != 4 {
			t.Errorf("want 4 approvals (5.8.8, 5.8.9 and the fixed 5.9.1 by pgstack, 5.9.0 by a person), got %+v", approved.In("operators"))
		}
	})
}

// --- helpers ---------------------------------------------------------------

// approveAsAPerson approves a plan as the user document describes
// (retrying when OLM wrote the plan in between, as kubectl edit would).
func approveAsAPerson(t *testing.T, plan string) {
	t.Helper()
	eventually(t, "a person approves "+plan, func() (bool, error) {
		ip := &operatorsv1alpha1.InstallPlan{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: "operators", Name: plan}, ip); err != nil {
			return false, err
		}
		ip.Spec.Approved = true
		err := k8s.Update(context.Background(), ip, client.FieldOwner("a-person"))
		return err == nil, client.IgnoreNotFound(ignoreConflict(err))
	})
}

// instanceImages is the containers' images of every PostgreSQL instance
// StatefulSet PGO made, by namespace/name, as "name=image ..." in the
// template's order: a change is a rolled StatefulSet.
func instanceImages(t *testing.T) map[string]string {
	t.Helper()
	sets := &appsv1.StatefulSetList{}
	must(t, k8s.List(context.Background(), sets, client.HasLabels{"postgres-operator.crunchydata.com/instance"}))
	images := map[string]string{}
	for _, s := range sets.Items {
		var list []string
		for _, c := range s.Spec.Template.Spec.Containers {
			list = append(list, c.Name+"="+c.Image)
		}
		images[s.Namespace+"/"+s.Name] = strings.Join(list, " ")
	}
	if len(images) == 0 {
		t.Fatal("no PostgreSQL instance StatefulSet: PGO made none")
	}
	return images
}

func createStack(t *testing.T, ns, name string, change func(*platformv1alpha1.PostgresStack)) *platformv1alpha1.PostgresStack {
	t.Helper()
	if err := lc.CreateNamespace(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	s := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if change != nil {
		change(s)
	}
	must(t, k8s.Create(context.Background(), s))
	return s
}

func update(t *testing.T, s *platformv1alpha1.PostgresStack, change func(*platformv1alpha1.PostgresStack)) {
	t.Helper()
	waits.UpdateStack(t, s, change)
}

func getStack(t *testing.T, s *platformv1alpha1.PostgresStack) *platformv1alpha1.PostgresStack {
	t.Helper()
	got := &platformv1alpha1.PostgresStack{}
	must(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(s), got))
	return got
}

func subscriptions(t *testing.T) []operatorsv1alpha1.Subscription {
	t.Helper()
	list := &operatorsv1alpha1.SubscriptionList{}
	must(t, k8s.List(context.Background(), list, client.InNamespace("operators")))
	var out []operatorsv1alpha1.Subscription
	for _, s := range list.Items {
		if s.Spec.Package == "postgresql" {
			out = append(out, s)
		}
	}
	return out
}

func names(subs []operatorsv1alpha1.Subscription) []string {
	var out []string
	for _, s := range subs {
		out = append(out, s.Name)
	}
	return out
}

func waitCondition(t *testing.T, s *platformv1alpha1.PostgresStack, condType string, status metav1.ConditionStatus, reason string, parts ...string) metav1.Condition {
	t.Helper()
	return waits.Condition(t, s, condType, status, reason, parts...)
}

func waitEvent(t *testing.T, s *platformv1alpha1.PostgresStack, reason string) {
	t.Helper()
	waits.Event(t, s, reason)
}

func kstatusOf(t *testing.T, s *platformv1alpha1.PostgresStack) kstatus.Status {
	t.Helper()
	return waits.Kstatus(t, s)
}

func eventually(t *testing.T, what string, check func() (bool, error)) {
	t.Helper()
	waits.Eventually(t, what, check)
}

func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
