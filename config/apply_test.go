package config_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pgstack/pgstack/test/testenv"
)

// applyOrder puts what other objects need first: the namespace before what
// lives in it, roles before their bindings.
var applyOrder = []string{"CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "Role",
	"ClusterRoleBinding", "RoleBinding", "Service", "Deployment"}

// TestDefaultIsAcceptedAndAuthorizedByARealAPIServer applies config/default to
// a real kube-apiserver, then asks that API server's own admission and
// authorization: does the restricted Pod Security Standard admit the manager's
// pod, and may the manager's ServiceAccount do exactly what it needs?
func TestDefaultIsAcceptedAndAuthorizedByARealAPIServer(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop test API server: %v", err)
		}
	})
	ctx := context.Background()
	o := build(t, "default")

	objs := slices.Clone(o.all)
	slices.SortStableFunc(objs, func(a, b map[string]any) int {
		return slices.Index(applyOrder, a["kind"].(string)) - slices.Index(applyOrder, b["kind"].(string))
	})
	for _, m := range objs {
		u := &unstructured.Unstructured{Object: m}
		if !slices.Contains(applyOrder, u.GetKind()) {
			t.Fatalf("config/default has a %s, which this test does not know where to apply", u.GetKind())
		}
		if err := env.Client.Patch(ctx, u.DeepCopy(), client.Apply, client.FieldOwner("config-test"), client.ForceOwnership); err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}

	t.Run("the restricted Pod Security Standard admits the manager's pod", func(t *testing.T) {
		d, _ := manager(t, o)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "manager-admission-check", Namespace: deployNamespace, Labels: d.Spec.Template.Labels},
			Spec:       *d.Spec.Template.Spec.DeepCopy(),
		}
		if err := env.Client.Create(ctx, pod.DeepCopy(), client.DryRunAll); err != nil {
			t.Errorf("the API server refuses the manager's pod in %s: %v", deployNamespace, err)
		}

		// The same pod without its security contexts must be refused, or the
		// check above proved nothing.
		loose := pod.DeepCopy()
		loose.Spec.SecurityContext = nil
		for i := range loose.Spec.Containers {
			loose.Spec.Containers[i].SecurityContext = nil
		}
		err := env.Client.Create(ctx, loose, client.DryRunAll)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
			t.Errorf("a pod without security contexts in %s: err = %v, want PodSecurity to forbid it", deployNamespace, err)
		}
	})

	t.Run("the manager may do what it needs and nothing else", func(t *testing.T) {
		user := "system:serviceaccount:" + deployNamespace + ":pgstack-controller-manager"
		for _, tc := range []struct {
			verb, group, resource, subresource, namespace string
			allowed                                       bool
		}{
			{"patch", "operators.coreos.com", "installplans", "", "operators", true},
			{"create", "operators.coreos.com", "subscriptions", "", "operators", true},
			{"create", "operators.coreos.com", "operatorgroups", "", "operators", true},
			{"delete", "operators.coreos.com", "clusterserviceversions", "", "operators", true},
			{"patch", "postgres-operator.crunchydata.com", "postgresclusters", "", "team-a", true},
			{"patch", "platform.pgstack.dev", "postgresstacks", "status", "team-a", true},
			{"update", "platform.pgstack.dev", "postgresstacks", "finalizers", "team-a", true},
			{"create", "", "namespaces", "", "", true},
			{"update", "coordination.k8s.io", "leases", "", deployNamespace, true},
			{"create", "authentication.k8s.io", "tokenreviews", "", "", true},
			{"create", "authorization.k8s.io", "subjectaccessreviews", "", "", true},

			{"get", "", "secrets", "", "operators", false},
			{"list", "", "secrets", "", "", false},
			{"update", "coordination.k8s.io", "leases", "", "kube-system", false},
			{"create", "apiextensions.k8s.io", "customresourcedefinitions", "", "", false},
			{"delete", "", "namespaces", "", "", false},
			{"update", "operators.coreos.com", "installplans", "", "operators", false},
			{"delete", "operators.coreos.com", "operatorgroups", "", "operators", false},
			{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", false},
			{"update", "postgres-operator.crunchydata.com", "postgresclusters", "status", "team-a", false},
			{"delete", "platform.pgstack.dev", "postgresstacks", "", "team-a", false},
		} {
			review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:   user,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + deployNamespace, "system:authenticated"},
				ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: tc.verb, Group: tc.group, Resource: tc.resource,
					Subresource: tc.subresource, Namespace: tc.namespace},
			}}
			if err := env.Client.Create(ctx, review); err != nil {
				t.Fatalf("SubjectAccessReview: %v", err)
			}
			what := strings.TrimSuffix(tc.resource+"/"+tc.subresource, "/")
			if got := review.Status.Allowed; got != tc.allowed {
				t.Errorf("%s %s.%s in %q: allowed = %v, want %v (%s)", tc.verb, what, tc.group, tc.namespace, got, tc.allowed, review.Status.Reason)
			}
		}
	})
}
