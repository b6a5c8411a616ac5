// Package olmbundle installs pgstack the way a platform team on OLM would:
// its own bundle (bundle/, `make bundle`) served by the local catalog,
// subscribed to, installed by real OLM, its manager run for the pod OLM
// makes under the ServiceAccount OLM made from the CSV. pgstack then
// installs PGO through the same OLM and PGO makes hippo: the bundle's RBAC
// is enough if hippo is Ready and the API server refused the manager
// nothing.
package olmbundle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/test/auditlog"
	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/cluster/catalog"
	"github.com/pgstack/pgstack/test/expect"
	"github.com/pgstack/pgstack/test/managerproc"
	"github.com/pgstack/pgstack/test/testenv"
)

// managerUser is the ServiceAccount OLM makes from pgstack's CSV.
const managerUser = "system:serviceaccount:operators:pgstack-controller-manager"

var (
	lc     *cluster.Cluster
	audit  auditlog.Log
	waits  expect.Waiter
	bundle catalog.Package
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pgstack-olmbundle-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	manager, err := managerproc.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pgo, err := catalog.PGO()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if bundle, err = catalog.FromBundle(filepath.Join(testenv.RepoRoot(), "bundle")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var auditArgs []string
	if audit, auditArgs, err = auditlog.Enable(dir, auditlog.Rule{Users: []string{managerUser}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lc, err = cluster.StartFull(context.Background(), cluster.Options{
		Packages:      []catalog.Package{pgo, bundle},
		LocalImages:   []cluster.LocalImage{cluster.PGStackLocalImage(manager)},
		APIServerArgs: auditArgs,
		Logf:          func(format string, args ...any) { fmt.Printf(format+"\n", args...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "local cluster:", err)
		return 1
	}
	defer func() { _ = lc.Stop() }()
	lc.StopOnSignal()
	waits = expect.Waiter{Client: lc.Client, Bound: 3 * time.Minute, Explain: func() string {
		return "olm: " + lc.LogTail("olm", 5) + "\ncatalog: " + lc.LogTail("catalog", 5)
	}}
	code := m.Run()
	if lc.ReportStandInErrors(os.Stderr) {
		code = 1
	}
	return code
}

func TestPGStackInstalledFromItsBundleMakesHippoReady(t *testing.T) {
	ctx := context.Background()
	sub := &operatorsv1alpha1.Subscription{
		ObjectMeta: metav1.ObjectMeta{Name: bundle.Name, Namespace: cluster.OperatorsNamespace},
		Spec: &operatorsv1alpha1.SubscriptionSpec{Package: bundle.Name, Channel: bundle.Channel, CatalogSource: cluster.CatalogSource,
			CatalogSourceNamespace: cluster.OLMNamespace, InstallPlanApproval: operatorsv1alpha1.ApprovalAutomatic},
	}
	if err := lc.Client.Create(ctx, sub); err != nil {
		t.Fatal(err)
	}
	// The CSV turns Succeeded only once the manager the harness runs for
	// OLM's pod answers /readyz.
	waits.Eventually(t, "CSV "+bundle.Head()+" Succeeded", func() (bool, error) {
		csv := &operatorsv1alpha1.ClusterServiceVersion{}
		err := lc.Client.Get(ctx, client.ObjectKey{Namespace: cluster.OperatorsNamespace, Name: bundle.Head()}, csv)
		return err == nil && csv.Status.Phase == operatorsv1alpha1.CSVPhaseSucceeded, client.IgnoreNotFound(err)
	})

	if err := lc.CreateNamespace(ctx, "team-a"); err != nil {
		t.Fatal(err)
	}
	hippo := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "hippo"}}
	if err := lc.Client.Create(ctx, hippo); err != nil {
		t.Fatal(err)
	}
	waits.Condition(t, hippo, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", "PGO 5.8.9")

	events, err := audit.Events()
	if err != nil {
		t.Fatal(err)
	}
	requests := 0
	for _, e := range events {
		if e.User.Username != managerUser {
			continue
		}
		requests++
		if e.Forbidden() {
			t.Errorf("the bundle's RBAC refused the manager: %s %s", e.Verb, e.RequestURI)
		}
	}
	if requests == 0 {
		t.Fatalf("no request by %s in the audit log: the manager OLM installed did not run", managerUser)
	}
	t.Logf("the manager OLM installed made %d requests as %s, none forbidden", requests, managerUser)
}
