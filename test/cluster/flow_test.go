package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	pgoapi "github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/testenv"
)

// Condition types PGO v5.8.9 writes on a PostgresCluster (PGO
// pkg/apis/postgres-operator.crunchydata.com/v1beta1/postgrescluster_types.go).
const (
	conditionRepoReady     = "PGBackRestReplicaRepoReady"
	conditionReplicaCreate = "PGBackRestReplicaCreate"
	conditionProxy         = "ProxyAvailable"
	conditionProgressing   = "Progressing"
)

// hippo is the PostgresCluster of the user document (../shared/seed).
const hippo = testenv.HippoPostgresCluster

const subscriptionName = "my-postgresql"

// TestOperatorHubFlow is the user document's flow with plain client calls,
// in order, against real OLM: install PGO automatically, run hippo, see
// copied CSVs, uninstall, install again with Manual approval, and approve
// an upgrade the catalog publishes meanwhile.
func TestOperatorHubFlow(t *testing.T) {
	ns := cluster.OperatorsNamespace
	head := pgo.Head() // postgresoperator.v5.8.8: the catalog's head at start

	t.Run("automatic install reaches Succeeded through OLM's own checks", func(t *testing.T) {
		subscribe(t, ns, subscriptionName, pgo.Name, pgo.Channel, operatorsv1alpha1.ApprovalAutomatic)
		plan := currentPlan(t, ns, subscriptionName, 90*time.Second)
		if plan.Spec.Approval != operatorsv1alpha1.ApprovalAutomatic || !plan.Spec.Approved {
			t.Errorf("plan %s: approval %q approved %v, want OLM to approve an Automatic plan", plan.Name, plan.Spec.Approval, plan.Spec.Approved)
		}
		if got := plan.Spec.ClusterServiceVersionNames; len(got) != 1 || got[0] != head {
			t.Errorf("plan %s carries %v, want [%s]", plan.Name, got, head)
		}
		waitForCSVPhase(t, ns, head, operatorsv1alpha1.CSVPhaseSucceeded, 2*time.Minute)
		waitForPlanPhase(t, ns, plan.Name, operatorsv1alpha1.InstallPlanPhaseComplete, 30*time.Second)

		// OLM judged the CSV on a Deployment the real controllers and kwok made Available.
		deploy := &appsv1.Deployment{}
		if err := lc.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: pgo.Deployment}, deploy); err != nil {
			t.Fatalf("operator Deployment: %v", err)
		}
		if deploy.Status.AvailableReplicas != 1 {
			t.Errorf("Deployment %s: %d available replicas, want 1", deploy.Name, deploy.Status.AvailableReplicas)
		}
		for _, crd := range pgo.CRDs {
			eventually(t, 30*time.Second, "CRD "+crd.Name+" Established", func(ctx context.Context) (bool, string, error) {
				got := &apiextensionsv1.CustomResourceDefinition{}
				if err := lc.Client.Get(ctx, client.ObjectKey{Name: crd.Name}, got); err != nil {
					return false, "", err
				}
				for _, c := range got.Status.Conditions {
					if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
						return true, "", nil
					}
				}
				return false, fmt.Sprint(got.Status.Conditions), nil
			})
		}
		approvals := ledgers.In(ns)
		if len(approvals) != 1 || approvals[0].Name != plan.Name || approvals[0].Manager != "catalog" {
			t.Errorf("ledger in %s: %+v, want one approval of %s by OLM's catalog operator", ns, approvals, plan.Name)
		}
	})

	t.Run("PGO's own manager makes hippo ready", func(t *testing.T) {
		apps := namespace(t, "hippo")
		pc := postgresCluster(t, apps, "hippo", hippo, nil)
		waitForReadyPostgresCluster(t, pc, 2*time.Minute)
		status := clusterStatus(t, pc)
		for _, want := range []string{conditionRepoReady, conditionReplicaCreate} {
			if c := findCondition(status, want); c == nil || c["status"] != "True" {
				t.Errorf("condition %s = %v, want True with backups configured", want, c)
			}
		}
		if c := findCondition(status, conditionProxy); c != nil {
			t.Errorf("ProxyAvailable set without pgBouncer: %v", c)
		}
	})

	t.Run("an AllNamespaces install copies its CSV into 50 new namespaces", func(t *testing.T) {
		ctx := context.Background()
		var names []string
		for i := 0; i < 50; i++ {
			name := fmt.Sprintf("copied-%02d", i)
			names = append(names, name)
			if err := lc.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
				t.Fatalf("create namespace %s: %v", name, err)
			}
		}
		eventually(t, 2*time.Minute, "copied CSVs labelled olm.copiedFrom=operators in 50 namespaces", func(ctx context.Context) (bool, string, error) {
			missing := 0
			for _, name := range names {
				csv := &operatorsv1alpha1.ClusterServiceVersion{}
				err := lc.Client.Get(ctx, client.ObjectKey{Namespace: name, Name: head}, csv)
				if apierrors.IsNotFound(err) || (err == nil && csv.Labels[operatorsv1alpha1.CopiedLabelKey] != ns) {
					missing++
					continue
				}
				if err != nil {
					return false, "", err
				}
			}
			return missing == 0, fmt.Sprintf("%d of 50 namespaces without a copied CSV", missing), nil
		})
	})

	t.Run("uninstall leaves the CRDs", func(t *testing.T) {
		ctx := context.Background()
		pc := &unstructured.Unstructured{}
		pc.SetGroupVersionKind(pgoapi.PostgresClusterGVK)
		pc.SetNamespace("hippo")
		pc.SetName("hippo")
		for _, obj := range []client.Object{
			pc,
			&operatorsv1alpha1.Subscription{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: subscriptionName}},
			&operatorsv1alpha1.ClusterServiceVersion{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: head}},
		} {
			if err := lc.Client.Delete(ctx, obj); err != nil {
				t.Fatalf("delete %T %s: %v", obj, obj.GetName(), err)
			}
		}
		eventually(t, time.Minute, "CSV "+head+" and its copies gone", func(ctx context.Context) (bool, string, error) {
			csvs := &operatorsv1alpha1.ClusterServiceVersionList{}
			if err := lc.Client.List(ctx, csvs); err != nil {
				return false, "", err
			}
			left := 0
			for _, csv := range csvs.Items {
				if csv.Name == head {
					left++
				}
			}
			return left == 0, fmt.Sprintf("%d left", left), nil
		})
		for _, crd := range pgo.CRDs {
			if err := lc.Client.Get(ctx, client.ObjectKey{Name: crd.Name}, &apiextensionsv1.CustomResourceDefinition{}); err != nil {
				t.Errorf("CRD %s after uninstall: %v", crd.Name, err)
			}
		}
	})

	var manualPlan string
	t.Run("manual install waits in RequiresApproval until approved", func(t *testing.T) {
		ctx := context.Background()
		// A PostgresCluster made while no operator runs: nothing reconciles
		// it until OLM installs PGO and its manager runs.
		early := postgresCluster(t, "hippo", "early", hippo, nil)
		subscribe(t, ns, subscriptionName, pgo.Name, pgo.Channel, operatorsv1alpha1.ApprovalManual)
		plan := currentPlan(t, ns, subscriptionName, 90*time.Second)
		plan = waitForPlanPhase(t, ns, plan.Name, operatorsv1alpha1.InstallPlanPhaseRequiresApproval, 30*time.Second)
		if plan.Spec.Approved {
			t.Fatalf("plan %s approved without anyone approving it", plan.Name)
		}
		if status := clusterStatus(t, early); len(status) != 0 {
			t.Errorf("PostgresCluster early has status %v while no operator is installed", status)
		}
		// Nothing is installed while the plan waits.
		err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: head}, &operatorsv1alpha1.ClusterServiceVersion{})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("CSV %s exists before approval (err %v)", head, err)
		}
		sub := &operatorsv1alpha1.Subscription{}
		if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: subscriptionName}, sub); err != nil {
			t.Fatal(err)
		}
		if sub.Status.State != operatorsv1alpha1.SubscriptionStateUpgradePending {
			t.Errorf("Subscription state %q while its plan waits, want UpgradePending", sub.Status.State)
		}
		approve(t, plan)
		waitForCSVPhase(t, ns, head, operatorsv1alpha1.CSVPhaseSucceeded, 2*time.Minute)
		manualPlan = plan.Name
		waitForReadyPostgresCluster(t, early, 2*time.Minute)
	})

	t.Run("an upgrade published mid-test yields a new InstallPlan", func(t *testing.T) {
		if manualPlan == "" {
			t.Fatal("needs the manual install")
		}
		next := pgo.CSVName("5.8.9")
		if err := lc.PublishVersion(context.Background(), pgo.Name, "5.8.9"); err != nil {
			t.Fatal(err)
		}
		plan := currentPlan(t, ns, subscriptionName, 2*time.Minute, manualPlan)
		plan = waitForPlanPhase(t, ns, plan.Name, operatorsv1alpha1.InstallPlanPhaseRequiresApproval, 30*time.Second)
		if got := plan.Spec.ClusterServiceVersionNames; len(got) != 1 || got[0] != next {
			t.Fatalf("upgrade plan %s carries %v, want [%s]", plan.Name, got, next)
		}
		approve(t, plan)
		csv := waitForCSVPhase(t, ns, next, operatorsv1alpha1.CSVPhaseSucceeded, 2*time.Minute)
		if csv.Spec.Replaces != head {
			t.Errorf("%s replaces %q, want %s", next, csv.Spec.Replaces, head)
		}
		eventually(t, time.Minute, "the replaced CSV "+head+" deleted", func(ctx context.Context) (bool, string, error) {
			err := lc.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: head}, &operatorsv1alpha1.ClusterServiceVersion{})
			return apierrors.IsNotFound(err), fmt.Sprint(err), client.IgnoreNotFound(err)
		})
	})

	t.Run("the ledger holds exactly the approvals made", func(t *testing.T) {
		approvals := ledgers.In(ns)
		if len(approvals) != 3 {
			t.Fatalf("ledger in %s: %d approvals, want 3 (automatic, manual, upgrade): %+v", ns, len(approvals), approvals)
		}
		want := []struct {
			approval operatorsv1alpha1.Approval
			manager  string
			csv      string
		}{
			{operatorsv1alpha1.ApprovalAutomatic, "catalog", head},
			{operatorsv1alpha1.ApprovalManual, approver, head},
			{operatorsv1alpha1.ApprovalManual, approver, pgo.CSVName("5.8.9")},
		}
		for i, w := range want {
			a := approvals[i]
			if a.Approval != w.approval || a.Manager != w.manager || len(a.CSVNames) != 1 || a.CSVNames[0] != w.csv {
				t.Errorf("approval %d: %+v, want %s plan of %s approved by %s", i, a, w.approval, w.csv, w.manager)
			}
		}
	})
}

// TestRealPGOReconcilesWhatItOwns shows PGO's own manager at work on the
// local cluster: the objects it makes for a cluster, PgBouncer's
// availability and a pause, each as PGO writes them. It needs PGO's CSV
// Succeeded, which TestOperatorHubFlow leaves behind.
func TestRealPGOReconcilesWhatItOwns(t *testing.T) {
	waitForOperator(t)
	apps := namespace(t, "real-pgo")
	ctx := context.Background()

	pooled := postgresCluster(t, apps, "pooled", hippo+`
  proxy:
    pgBouncer: {}
`, nil)
	waitForReadyPostgresCluster(t, pooled, 2*time.Minute)
	if c := findCondition(clusterStatus(t, pooled), conditionProxy); c == nil || c["status"] != "True" {
		t.Errorf("ProxyAvailable = %v, want True with pgBouncer", c)
	}
	// What PGO made for the cluster, by the names PGO gives them.
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pooled-pguser-pooled"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "pooled-primary"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "pooled-pgbouncer"}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "pooled-repo-host"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "pooled-pgbouncer"}},
	} {
		if err := lc.Client.Get(ctx, client.ObjectKey{Namespace: apps, Name: obj.GetName()}, obj); err != nil {
			t.Errorf("%T %s: %v", obj, obj.GetName(), err)
		}
	}
	claims := &corev1.PersistentVolumeClaimList{}
	if err := lc.Client.List(ctx, claims, client.InNamespace(apps)); err != nil {
		t.Fatal(err)
	}
	for _, claim := range claims.Items {
		if claim.Status.Phase != corev1.ClaimBound {
			t.Errorf("PersistentVolumeClaim %s is %s, want Bound by the host-path provisioner", claim.Name, claim.Status.Phase)
		}
	}
	if len(claims.Items) < 2 {
		t.Errorf("%d PersistentVolumeClaims, want the instance's data volume and repo1's", len(claims.Items))
	}

	pause := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"paused":true}}`))
	if err := lc.Client.Patch(ctx, pooled, pause); err != nil {
		t.Fatalf("pause: %v", err)
	}
	eventually(t, time.Minute, "paused cluster reports Progressing=False reason Paused", func(ctx context.Context) (bool, string, error) {
		status := clusterStatus(t, pooled)
		c := findCondition(status, conditionProgressing)
		return c != nil && c["status"] == "False" && c["reason"] == "Paused", fmt.Sprint(c), nil
	})
}

func waitForOperator(t *testing.T) {
	t.Helper()
	eventually(t, 3*time.Minute, "a Succeeded PGO CSV in operators", func(ctx context.Context) (bool, string, error) {
		csvs := &operatorsv1alpha1.ClusterServiceVersionList{}
		if err := lc.Client.List(ctx, csvs, client.InNamespace(cluster.OperatorsNamespace)); err != nil {
			return false, "", err
		}
		for _, csv := range csvs.Items {
			if csv.Spec.DisplayName == pgo.DisplayName && csv.Status.Phase == operatorsv1alpha1.CSVPhaseSucceeded {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("%d CSVs", len(csvs.Items)), nil
	})
}

// postgresCluster applies a PostgresCluster (server-side: PGO's CRD is too
// large for client-side apply) and returns it as stored.
func postgresCluster(t *testing.T, ns, name, text string, annotations map[string]string) *unstructured.Unstructured {
	t.Helper()
	pc := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(text), &pc.Object); err != nil {
		t.Fatalf("parse PostgresCluster: %v", err)
	}
	pc.SetNamespace(ns)
	pc.SetName(name)
	pc.SetAnnotations(annotations)
	eventually(t, 30*time.Second, "apply PostgresCluster "+pc.GetName(), func(ctx context.Context) (bool, string, error) {
		err := lc.Client.Patch(ctx, pc.DeepCopy(), client.Apply, client.FieldOwner("pgstack-test"), client.ForceOwnership)
		return err == nil, fmt.Sprint(err), nil
	})
	if err := lc.Client.Get(context.Background(), client.ObjectKeyFromObject(pc), pc); err != nil {
		t.Fatal(err)
	}
	return pc
}

func clusterStatus(t *testing.T, pc *unstructured.Unstructured) map[string]any {
	t.Helper()
	if err := lc.Client.Get(context.Background(), client.ObjectKeyFromObject(pc), pc); err != nil {
		t.Fatal(err)
	}
	status, _, _ := unstructured.NestedMap(pc.Object, "status")
	return status
}

// waitForReadyPostgresCluster judges readiness as PGO's own tests do.
func waitForReadyPostgresCluster(t *testing.T, pc *unstructured.Unstructured, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "PostgresCluster "+pc.GetName()+" ready", func(ctx context.Context) (bool, string, error) {
		status := clusterStatus(t, pc)
		observed, _, _ := unstructured.NestedInt64(status, "observedGeneration")
		if observed != pc.GetGeneration() {
			return false, fmt.Sprintf("observedGeneration %d of %d", observed, pc.GetGeneration()), nil
		}
		instances, _, _ := unstructured.NestedSlice(status, "instances")
		if len(instances) == 0 {
			return false, "no instances", nil
		}
		for _, i := range instances {
			set := i.(map[string]any)
			if set["readyReplicas"] != set["replicas"] || set["updatedReplicas"] != set["replicas"] {
				return false, fmt.Sprint(set), nil
			}
		}
		if _, backups, _ := unstructured.NestedMap(pc.Object, "spec", "backups"); backups {
			for _, c := range []string{conditionRepoReady, conditionReplicaCreate} {
				if cond := findCondition(status, c); cond == nil || cond["status"] != "True" {
					return false, fmt.Sprintf("%s: %v", c, cond), nil
				}
			}
		}
		return true, "", nil
	})
}

func findCondition(status map[string]any, conditionType string) map[string]any {
	conditions, _, _ := unstructured.NestedSlice(status, "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]any); ok && m["type"] == conditionType {
			return m
		}
	}
	return nil
}
