package e2e

import (
	"context"
	"testing"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/test/cluster/catalog"
)

// pgoPackage is the PGO package the local catalog serves now.
func pgoPackage(t *testing.T) catalog.Package {
	t.Helper()
	for _, p := range lc.Packages() {
		if p.Name == catalog.PGOPackage {
			return p
		}
	}
	t.Fatal("the local catalog serves no PGO package")
	return catalog.Package{}
}

// pgoRelease is what PGO version v ships to run, as the catalog serves it.
func pgoRelease(t *testing.T, v string) catalog.Release {
	t.Helper()
	r, ok := pgoPackage(t).ReleaseFor(v)
	if !ok {
		t.Fatalf("no PGO release for %s", v)
	}
	return r
}

func envValue(t *testing.T, r catalog.Release, name string) string {
	t.Helper()
	v, ok := r.Env(name)
	if !ok {
		t.Fatalf("release %s sets no %s", r.Version, name)
	}
	return v
}

// publishPGO serves PGO version v running release r, shipping crds (the
// package's own when nil), at the head of the channel.
func publishPGO(t *testing.T, v string, r catalog.Release, crds []*apiextensionsv1.CustomResourceDefinition) {
	t.Helper()
	must(t, lc.Publish(context.Background(), pgoPackage(t).WithVersion(v, r, crds)))
}

// alteredCRDs are PGO's CRDs changed on purpose in two ways the CRD check
// refuses: PGAdmin's v1beta1 no longer served, and PostgresCluster's spec
// newly requiring openshift.
func alteredCRDs(t *testing.T) []*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, crd := range pgoPackage(t).CRDs {
		crd = crd.DeepCopy()
		switch crd.Name {
		case "pgadmins.postgres-operator.crunchydata.com":
			crd.Spec.Versions[0].Served = false
		case "postgresclusters.postgres-operator.crunchydata.com":
			schema := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
			spec := schema.Properties["spec"]
			spec.Required = append(spec.Required, "openshift")
			schema.Properties["spec"] = spec
		}
		out = append(out, crd)
	}
	return out
}

// deletePendingPlan deletes the plan the stack's Subscription waits on:
// OLM then clears the reference and resolves against the catalog again.
func deletePendingPlan(t *testing.T, s *platformv1alpha1.PostgresStack) {
	t.Helper()
	sub := &operatorsv1alpha1.Subscription{}
	must(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: s.Spec.Operator.Namespace, Name: getStack(t, s).Status.Operator.Subscription}, sub))
	if sub.Status.InstallPlanRef == nil {
		t.Fatalf("Subscription %s waits on no plan", sub.Name)
	}
	plan := &operatorsv1alpha1.InstallPlan{}
	plan.Namespace, plan.Name = sub.Status.InstallPlanRef.Namespace, sub.Status.InstallPlanRef.Name
	must(t, client.IgnoreNotFound(k8s.Delete(context.Background(), plan)))
}

// waitFor waits until the stack, as read, satisfies ok.
func waitFor(t *testing.T, s *platformv1alpha1.PostgresStack, what string, ok func(*platformv1alpha1.PostgresStack) bool) {
	t.Helper()
	eventually(t, what, func() (bool, error) {
		got := &platformv1alpha1.PostgresStack{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(s), got); err != nil {
			return false, err
		}
		return ok(got), nil
	})
}

func hasChange(images []platformv1alpha1.ImageChange, component, from, to string) bool {
	for _, c := range images {
		if c.Component == component && c.From == from && c.To == to {
			return true
		}
	}
	return false
}
