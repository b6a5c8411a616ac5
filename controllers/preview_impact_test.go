package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
)

// A plan's preview of a stack is worked out once per stack spec and cluster
// version, however many stacks judge the plan; a stack that cannot be
// rendered is asked again.
func TestPlanReviewPreviewsEachStackOnce(t *testing.T) {
	stack := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "db", UID: "u1", Generation: 1}}
	newSpec := stack.DeepCopy()
	newSpec.Generation = 2
	cluster := pgo.NewPostgresCluster()
	cluster.SetResourceVersion("7")
	written := cluster.DeepCopy()
	written.SetResourceVersion("8")
	lives := func(pc *unstructured.Unstructured) map[types.NamespacedName]*unstructured.Unstructured {
		return map[types.NamespacedName]*unstructured.Unstructured{{Namespace: "a", Name: "db"}: pc}
	}

	review := &planReview{version: "5.8.10"}
	calls := 0
	request := func(ok bool) func() (pgo.ImageRequest, bool) {
		return func() (pgo.ImageRequest, bool) { calls++; return pgo.ImageRequest{PostgresVersion: 16}, ok }
	}
	steps := []struct {
		name      string
		stack     *platformv1alpha1.PostgresStack
		live      map[types.NamespacedName]*unstructured.Unstructured
		renders   bool
		wantCalls int
		wantOK    bool
	}{
		{"first look, before the cluster exists", stack, nil, true, 1, true},
		{"the same stack judged by another stack", stack, nil, true, 1, true},
		{"its cluster created", stack, lives(cluster), true, 2, true},
		{"judged again", stack, lives(cluster), true, 2, true},
		{"PGO wrote the cluster", stack, lives(written), true, 3, true},
		{"a new spec", newSpec, lives(written), true, 4, true},
		{"a spec that cannot be rendered is not kept", newSpec, nil, false, 5, false},
		{"and is asked again", newSpec, nil, false, 6, false},
	}
	for _, s := range steps {
		_, ok := review.impact(s.stack.UID, impactKey(s.stack, s.live), request(s.renders), pgo.Catalog{})
		if ok != s.wantOK || calls != s.wantCalls {
			t.Errorf("%s: ok=%v after %d requests, want ok=%v after %d", s.name, ok, calls, s.wantOK, s.wantCalls)
		}
	}
}
