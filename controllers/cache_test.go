package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pgstack/pgstack/internal/pgo"
)

// The caches keep what pgstack reads, and the readers still find it.
func TestCacheTransformsKeepWhatIsRead(t *testing.T) {
	t.Run("a leader pod: identity and the cluster, instance and role labels", func(t *testing.T) {
		pod := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "hippo-instance1-abcd-0", Namespace: "a", UID: "u1", ResourceVersion: "7",
			Labels: map[string]string{labelPGOCluster: "hippo", labelPGOInstance: "hippo-instance1-abcd", labelPGORole: rolePatroniLeader,
				"controller-revision-hash": "x", "postgres-operator.crunchydata.com/patroni": "hippo-ha"},
			Annotations:     map[string]string{"status": `{"role":"primary","xlog_location":67108864}`},
			OwnerReferences: []metav1.OwnerReference{{Name: "hippo-instance1-abcd"}}}}
		got, err := stripLeaderPod(pod)
		if err != nil {
			t.Fatal(err)
		}
		p := got.(*metav1.PartialObjectMetadata)
		if p.Name != "hippo-instance1-abcd-0" || p.UID != "u1" || p.ResourceVersion != "7" || len(p.Labels) != 3 ||
			p.Labels[labelPGOInstance] != "hippo-instance1-abcd" || p.Labels[labelPGOCluster] != "hippo" || p.Labels[labelPGORole] != rolePatroniLeader {
			t.Errorf("kept %+v", p.ObjectMeta)
		}
		if len(p.Annotations) != 0 || len(p.OwnerReferences) != 0 {
			t.Errorf("kept Patroni's annotation or owners: %+v", p.ObjectMeta)
		}
	})
	t.Run("a PostgresCluster: only the newest write outside status, its time still read by lastWritten", func(t *testing.T) {
		at := func(min int) *metav1.Time {
			t := metav1.NewTime(time.Date(2026, 12, 3, 8, min, 0, 0, time.UTC))
			return &t
		}
		pc := pgo.NewPostgresCluster()
		pc.SetManagedFields([]metav1.ManagedFieldsEntry{
			{Manager: "pgstack", Operation: metav1.ManagedFieldsOperationApply, Time: at(1), FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}},
			{Manager: "postgrescluster-controller", Operation: metav1.ManagedFieldsOperationApply, Time: at(9), Subresource: "status", FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:status":{}}`)}},
			{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate, Time: at(5), FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}},
		})
		got, err := keepLastSpecWrite(pc)
		if err != nil {
			t.Fatal(err)
		}
		fields := got.(*unstructured.Unstructured).GetManagedFields()
		if len(fields) != 1 || fields[0].Manager != "kubectl-edit" || fields[0].FieldsV1 != nil {
			t.Fatalf("kept %+v, want kubectl-edit's write alone, without its field set", fields)
		}
		if got := lastWritten(fields); !got.Equal(at(5).Time) {
			t.Errorf("lastWritten = %v, want %v", got, at(5).Time)
		}
	})
}
