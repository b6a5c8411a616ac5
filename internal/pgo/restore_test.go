package pgo

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func TestReadRestore(t *testing.T) {
	at := func(s string) *metav1.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		m := metav1.NewTime(tm)
		return &m
	}
	target := at("2026-12-03T06:00:00Z")
	inPlace := platformv1alpha1.PostgresSpec{Restore: &platformv1alpha1.Restore{ID: "drill-1", RepoName: "repo2", TargetTime: target}}
	clone := platformv1alpha1.PostgresSpec{CloneFrom: &platformv1alpha1.CloneFrom{ClusterName: "hippo"}}
	earlier := &platformv1alpha1.RestoreStatus{Source: "repo1 of this cluster", ID: "drill-0", Finished: true, Succeeded: true}
	tests := []struct {
		name     string
		status   string
		spec     platformv1alpha1.PostgresSpec
		previous *platformv1alpha1.RestoreStatus
		want     *platformv1alpha1.RestoreStatus
	}{
		{name: "no restore ever", status: "{}", want: nil},
		{name: "an in-place restore under way", spec: inPlace,
			status: `{pgbackrest: {restore: {id: drill-1, active: 1, startTime: "2026-12-03T07:00:00Z"}}}`,
			want:   &platformv1alpha1.RestoreStatus{Source: "repo2 of this cluster", ID: "drill-1", TargetTime: target}},
		{name: "an in-place restore PGO finished", spec: inPlace,
			status: `{pgbackrest: {restore: {id: drill-1, finished: true, succeeded: 1, completionTime: "2026-12-03T07:01:00Z"}}}`,
			want:   &platformv1alpha1.RestoreStatus{Source: "repo2 of this cluster", ID: "drill-1", TargetTime: target, Finished: true, Succeeded: true, CompletionTime: at("2026-12-03T07:01:00Z")}},
		{name: "a restore whose Job failed", spec: inPlace,
			status: `{pgbackrest: {restore: {id: drill-1, finished: true, failed: 1}}}`,
			want:   &platformv1alpha1.RestoreStatus{Source: "repo2 of this cluster", ID: "drill-1", TargetTime: target, Finished: true}},
		{name: "PGO reports an earlier id than the spec: its target is not claimed", spec: inPlace,
			status: `{pgbackrest: {restore: {id: drill-0, finished: true, succeeded: 1}}}`,
			want:   &platformv1alpha1.RestoreStatus{Source: "this cluster's repository", ID: "drill-0", Finished: true, Succeeded: true}},
		{name: "a clone PGO seeded", spec: clone,
			status: `{pgbackrest: {restore: {id: ~pgo-bootstrap-clone, finished: true, succeeded: 1, completionTime: "2026-12-03T07:02:00Z"}}}`,
			want:   &platformv1alpha1.RestoreStatus{Source: "repo1 of PostgresCluster team-a/hippo", Finished: true, Succeeded: true, CompletionTime: at("2026-12-03T07:02:00Z")}},
		{name: "a clone still restoring", spec: clone,
			status: `{pgbackrest: {restore: {id: ~pgo-bootstrap-clone, active: 1}}}`,
			want:   &platformv1alpha1.RestoreStatus{Source: "repo1 of PostgresCluster team-a/hippo"}},
		{name: "nothing new keeps the earlier record", status: "{}", previous: earlier, want: earlier},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := cluster(t, "apiVersion: postgres-operator.crunchydata.com/v1beta1\nkind: PostgresCluster\nmetadata: {name: clone, namespace: team-a}\nstatus: "+tt.status)
			got := ReadRestore(pc, tt.spec, tt.previous)
			if !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("ReadRestore = %+v, want %+v", got, tt.want)
			}
		})
	}
}
