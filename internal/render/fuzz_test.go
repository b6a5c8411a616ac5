package render_test

import (
	"os"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pgstack/pgstack/internal/render"
)

// FuzzRender feeds the renderer PostgresStack YAML mutated from the samples.
// Whatever it is given, Render must not panic, and whatever it accepts must
// be a PostgresCluster PGO can take: a postgresVersion and at least one
// instance set whose data volume has access modes and a size. It must also
// be deterministic and leave the stack alone.
func FuzzRender(f *testing.F) {
	for _, sample := range samples(f) {
		text, err := os.ReadFile(sample)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(text)
	}
	f.Add([]byte("apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: a}\nspec: {postgres: {overrides: {instances: null}}}\n"))

	f.Fuzz(func(t *testing.T, doc []byte) {
		stack, err := render.DecodeStack(doc)
		if err != nil || stack == nil {
			return
		}
		before := stack.DeepCopy()
		cluster, err := render.Render(stack)
		if err != nil {
			return
		}
		if !reflect.DeepEqual(stack, before) {
			t.Fatal("Render modified the stack")
		}
		again, err := render.Render(stack)
		if err != nil || !reflect.DeepEqual(cluster.Object, again.Object) {
			t.Fatalf("Render is not deterministic (second error: %v)", err)
		}

		if cluster.GetAPIVersion() != render.APIVersion || cluster.GetKind() != render.Kind || cluster.GetName() != stack.Name {
			t.Fatalf("not the stack's PostgresCluster: %s %s %q", cluster.GetAPIVersion(), cluster.GetKind(), cluster.GetName())
		}
		if cluster.GetLabels()[render.LabelStack] != stack.Name || cluster.GetLabels()[render.LabelManagedBy] != render.ManagedBy {
			t.Fatalf("labels %v do not tie the cluster to its stack", cluster.GetLabels())
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(cluster.Object, "spec", "postgresVersion"); !found {
			t.Fatal("no spec.postgresVersion")
		}
		instances, found, err := unstructured.NestedSlice(cluster.Object, "spec", "instances")
		if !found || err != nil || len(instances) == 0 {
			t.Fatalf("no spec.instances (%v)", err)
		}
		for i, item := range instances {
			set, ok := item.(map[string]any)
			if !ok {
				t.Fatalf("instances[%d] is a %T", i, item)
			}
			modes, _, _ := unstructured.NestedSlice(set, "dataVolumeClaimSpec", "accessModes")
			storage, found, _ := unstructured.NestedFieldNoCopy(set, "dataVolumeClaimSpec", "resources", "requests", "storage")
			if len(modes) == 0 || !found || storage == nil {
				t.Fatalf("instances[%d] has no dataVolumeClaimSpec access modes and storage: %v", i, set)
			}
		}
	})
}
