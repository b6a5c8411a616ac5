package pgo

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func TestConnection(t *testing.T) {
	tests := []struct {
		name string
		spec map[string]any
		want platformv1alpha1.ConnectionStatus
	}{
		{
			name: "no users: PGO's user named after the cluster, port 5432",
			spec: map[string]any{"postgresVersion": int64(16)},
			want: platformv1alpha1.ConnectionStatus{Service: "hippo-primary", Port: 5432,
				Users: []platformv1alpha1.UserSecret{{Name: "hippo", Secret: "hippo-pguser-hippo"}}},
		},
		{
			name: "named users, another port, PgBouncer",
			spec: map[string]any{"port": int64(5433), "proxy": map[string]any{"pgBouncer": map[string]any{}},
				"users": []any{map[string]any{"name": "app"}, map[string]any{"name": "reporting"}}},
			want: platformv1alpha1.ConnectionStatus{Service: "hippo-primary", Port: 5433, PoolerService: "hippo-pgbouncer",
				Users: []platformv1alpha1.UserSecret{{Name: "app", Secret: "hippo-pguser-app"}, {Name: "reporting", Secret: "hippo-pguser-reporting"}}},
		},
		{
			name: "an empty users list: PGO makes no user",
			spec: map[string]any{"users": []any{}},
			want: platformv1alpha1.ConnectionStatus{Service: "hippo-primary", Port: 5432},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := NewPostgresCluster()
			pc.SetName("hippo")
			pc.Object["spec"] = tt.spec
			if got := Connection(pc); !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("Connection = %+v, want %+v", got, tt.want)
			}
		})
	}
}
