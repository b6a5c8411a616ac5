package testenv_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/test/expect"
	"github.com/pgstack/pgstack/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.RunTests(m, func(e *testenv.Env) error { env = e; return nil }))
}

func TestEveryCRDIsEstablished(t *testing.T) {
	ctx := context.Background()
	want := []string{"postgresstacks.platform.pgstack.dev", "postgresclusters.postgres-operator.crunchydata.com"}
	for _, crd := range testenv.OLMCRDs() {
		want = append(want, crd.Name)
	}
	if env.PGOSchema.Real {
		want = append(want, "pgupgrades.postgres-operator.crunchydata.com", "pgadmins.postgres-operator.crunchydata.com",
			"crunchybridgeclusters.postgres-operator.crunchydata.com")
	}
	for _, name := range want {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			t.Errorf("CRD %s: %v", name, err)
			continue
		}
		established := false
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			t.Errorf("CRD %s is not Established: %+v", name, crd.Status.Conditions)
		}
	}
	t.Logf("PostgresCluster schema: %s", env.PGOSchema)
}

func TestPostgresStackRoundTripsWithOperatorHubDefaults(t *testing.T) {
	ctx := context.Background()
	stack := &platformv1alpha1.PostgresStack{
		ObjectMeta: metav1.ObjectMeta{Name: "hippo", Namespace: "default"},
	}
	if err := env.Client.Create(ctx, stack); err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, stack) })

	got := &platformv1alpha1.PostgresStack{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(stack), got); err != nil {
		t.Fatalf("get: %v", err)
	}
	op := got.Spec.Operator
	if op.Package != "postgresql" || op.Channel != "v5" || op.Source != "operatorhubio-catalog" ||
		op.SourceNamespace != "olm" || op.Namespace != "operators" || op.Approval != platformv1alpha1.ApprovalAutomatic ||
		op.Removal != platformv1alpha1.RemovalKeep {
		t.Errorf("operator defaults are not OperatorHub's install: %+v", op)
	}
	if got.Spec.DeletionPolicy != platformv1alpha1.DeletionRetain {
		t.Errorf("deletionPolicy defaulted to %q, want Retain", got.Spec.DeletionPolicy)
	}
	// Before pgstack reports, status reads as not yet observed, so that
	// kstatus (Flux) does not take a brand-new stack for a current one.
	if got.Status.ObservedGeneration != -1 {
		t.Errorf("status.observedGeneration of a new stack = %d, want -1", got.Status.ObservedGeneration)
	}
	if status := expect.KstatusOf(t, got); status != kstatus.InProgressStatus {
		t.Errorf("kstatus of a new stack = %v, want InProgress", status)
	}

	got.Status.ObservedGeneration = got.Generation
	got.Status.Operator.InstalledCSV = "postgresoperator.v5.8.9"
	if err := env.Client.Status().Update(ctx, got); err != nil {
		t.Fatalf("status update: %v", err)
	}
	again := &platformv1alpha1.PostgresStack{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(stack), again); err != nil {
		t.Fatalf("get: %v", err)
	}
	if again.Status.Operator.InstalledCSV != "postgresoperator.v5.8.9" || again.Status.ObservedGeneration != got.Generation {
		t.Errorf("status did not round-trip: %+v", again.Status)
	}
}

func postgresCluster(t *testing.T, text string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(text), &u.Object); err != nil {
		t.Fatalf("parse PostgresCluster: %v", err)
	}
	return u
}

func TestHippoPostgresClusterIsAcceptedThroughServerSideApply(t *testing.T) {
	ctx := context.Background()
	pc := postgresCluster(t, testenv.HippoPostgresCluster)
	pc.SetNamespace("default")
	// The CRD is served a moment after it is Established; retry within a bound.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		err := env.Client.Patch(ctx, pc.DeepCopy(), client.Apply, client.FieldOwner("pgstack-test"), client.ForceOwnership)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("server-side apply of hippo against %s: %v", env.PGOSchema, err)
	}
	got := postgresCluster(t, "{}")
	got.SetGroupVersionKind(pc.GroupVersionKind())
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pc), got); err != nil {
		t.Fatalf("get hippo: %v", err)
	}
	version, _, _ := unstructured.NestedInt64(got.Object, "spec", "postgresVersion")
	if version != 16 {
		t.Errorf("postgresVersion = %d, want 16", version)
	}
	_ = env.Client.Delete(ctx, got)
}

func TestPostgresClusterWithoutInstancesIsRejected(t *testing.T) {
	ctx := context.Background()
	pc := postgresCluster(t, `
apiVersion: postgres-operator.crunchydata.com/v1beta1
kind: PostgresCluster
metadata:
  name: no-instances
  namespace: default
spec:
  postgresVersion: 16
`)
	err := env.Client.Patch(ctx, pc, client.Apply, client.FieldOwner("pgstack-test"), client.DryRunAll)
	if !apierrors.IsInvalid(err) {
		t.Fatalf("want the API server to reject a PostgresCluster without instances as Invalid, got %v", err)
	}
	if !strings.Contains(err.Error(), "spec.instances") {
		t.Errorf("rejection does not name spec.instances: %v", err)
	}
	t.Logf("API server said: %v", err)
}
