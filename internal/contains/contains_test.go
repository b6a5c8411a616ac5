package contains

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestFields(t *testing.T) {
	live := map[string]any{
		"metadata": map[string]any{"name": "hippo", "generation": int64(3)},
		"spec": map[string]any{
			"postgresVersion": int64(16),
			"port":            int64(5432), // a default the server added
			"instances": []any{map[string]any{"name": "instance1", "replicas": int64(2),
				"resources": map[string]any{"limits": map[string]any{"cpu": "1"}}}},
			"shutdown": false,
			"ratio":    float64(0.5),
			"labels":   map[string]any{"team": "a"},
			"tags":     []any{"x", "y"},
		},
		"status": map[string]any{"observedGeneration": int64(3)},
	}
	tests := []struct {
		name    string
		desired map[string]any
		want    bool
	}{
		{name: "nothing desired", desired: map[string]any{}, want: true},
		{name: "a subset, defaults and status aside", desired: map[string]any{"spec": map[string]any{"postgresVersion": int64(16)}}, want: true},
		{name: "an int against the int64 JSON gave", desired: map[string]any{"spec": map[string]any{"postgresVersion": 16}}, want: true},
		{name: "an int32", desired: map[string]any{"spec": map[string]any{"postgresVersion": int32(16)}}, want: true},
		{name: "a float64 of an integral value", desired: map[string]any{"spec": map[string]any{"postgresVersion": float64(16)}}, want: true},
		{name: "a float", desired: map[string]any{"spec": map[string]any{"ratio": 0.5}}, want: true},
		{name: "a number that differs", desired: map[string]any{"spec": map[string]any{"postgresVersion": int64(17)}}, want: false},
		{name: "a number against a string", desired: map[string]any{"spec": map[string]any{"postgresVersion": "16"}}, want: false},
		{name: "a string against a number", desired: map[string]any{"spec": map[string]any{"instances": []any{map[string]any{"replicas": "2"}}}}, want: false},
		{name: "a list item's subset", desired: map[string]any{"spec": map[string]any{"instances": []any{map[string]any{"name": "instance1", "replicas": int64(2)}}}}, want: true},
		{name: "a list of another length", desired: map[string]any{"spec": map[string]any{"instances": []any{map[string]any{"name": "instance1"}, map[string]any{"name": "instance2"}}}}, want: false},
		{name: "a field live lacks", desired: map[string]any{"spec": map[string]any{"standby": map[string]any{"enabled": true}}}, want: false},
		{name: "false is a value", desired: map[string]any{"spec": map[string]any{"shutdown": true}}, want: false},
		{name: "an empty object the server dropped", desired: map[string]any{"spec": map[string]any{"proxy": map[string]any{}}}, want: true},
		{name: "an empty list the server dropped", desired: map[string]any{"spec": map[string]any{"tolerations": []any{}}}, want: true},
		{name: "a map where live has a scalar", desired: map[string]any{"spec": map[string]any{"port": map[string]any{"a": "b"}}}, want: false},
		{name: "a typed map set by hand", desired: map[string]any{"spec": map[string]any{"labels": map[string]string{"team": "a"}}}, want: true},
		{name: "a typed map that differs", desired: map[string]any{"spec": map[string]any{"labels": map[string]string{"team": "b"}}}, want: false},
		{name: "a typed slice set by hand", desired: map[string]any{"spec": map[string]any{"tags": []string{"x", "y"}}}, want: true},
		{name: "a typed slice that differs", desired: map[string]any{"spec": map[string]any{"tags": []string{"y", "x"}}}, want: false},
		{name: "a nil value where live has one", desired: map[string]any{"spec": map[string]any{"port": nil}}, want: false},
		{name: "a nil value where live has none", desired: map[string]any{"spec": map[string]any{"paused": nil}}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fields(live, tt.desired); got != tt.want {
				t.Errorf("Fields = %v, want %v", got, tt.want)
			}
		})
	}
}

// The comparison runs on every reconcile of every stack: it must not copy
// the objects it compares.
func BenchmarkFields(b *testing.B) {
	live := map[string]any{"spec": map[string]any{"postgresVersion": int64(16), "instances": []any{map[string]any{"name": "instance1", "replicas": int64(2)}}}}
	desired := map[string]any{"spec": map[string]any{"postgresVersion": int64(16), "instances": []any{map[string]any{"name": "instance1", "replicas": int64(2)}}}}
	b.ReportAllocs()
	for b.Loop() {
		Fields(live, desired)
	}
}

func TestStampSeesWhatFieldsCannot(t *testing.T) {
	cluster := func(change func(map[string]any)) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "postgres-operator.crunchydata.com/v1beta1", "kind": "PostgresCluster",
			"metadata": map[string]any{"name": "hippo", "namespace": "a", "labels": map[string]any{"app.kubernetes.io/managed-by": "pgstack"}},
			"spec":     map[string]any{"postgresVersion": int64(16), "proxy": map[string]any{"pgBouncer": map[string]any{"replicas": int64(1)}}},
		}}
		if change != nil {
			change(u.Object)
		}
		return u
	}
	stamped := func(u *unstructured.Unstructured) *unstructured.Unstructured {
		if err := Stamp(u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	live := stamped(cluster(nil))
	live.Object["status"] = map[string]any{"observedGeneration": int64(1)} // what others add
	tests := []struct {
		name    string
		desired *unstructured.Unstructured
		want    bool
	}{
		{name: "the same object stamped again", desired: stamped(cluster(nil)), want: true},
		{name: "the same object stamped twice", desired: stamped(stamped(cluster(nil))), want: true},
		{name: "a field dropped (the pooler turned off)", desired: stamped(cluster(func(o map[string]any) {
			delete(o["spec"].(map[string]any), "proxy")
		})), want: false},
		{name: "a field changed", desired: stamped(cluster(func(o map[string]any) {
			o["spec"].(map[string]any)["postgresVersion"] = int64(17)
		})), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !Fields(live.Object, cluster(func(o map[string]any) { delete(o["spec"].(map[string]any), "proxy") }).Object) {
				t.Fatal("premise: without the stamp, a dropped field goes unseen")
			}
			if got := Fields(live.Object, tt.desired.Object); got != tt.want {
				t.Errorf("Fields = %v, want %v (live %s, desired %s)", got, tt.want,
					live.GetAnnotations()[AnnotationApplied], tt.desired.GetAnnotations()[AnnotationApplied])
			}
		})
	}
}
