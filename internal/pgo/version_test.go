package pgo

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func TestHoldMajorVersion(t *testing.T) {
	cluster := func(spec map[string]any) *unstructured.Unstructured {
		pc := NewPostgresCluster()
		pc.SetName("hippo")
		pc.Object["spec"] = spec
		return pc
	}
	instances := []any{map[string]any{"name": "instance1", "replicas": int64(2)}}
	tests := []struct {
		name          string
		live, desired *unstructured.Unstructured
		// wantApplied is the spec to apply; wantHeld whether a hold is reported.
		wantApplied   map[string]any
		wantHeld      bool
		wantInMessage []string
	}{
		{
			name:        "no PostgresCluster yet: the stack's version",
			desired:     cluster(map[string]any{"postgresVersion": int64(17)}),
			wantApplied: map[string]any{"postgresVersion": int64(17)},
		},
		{
			name:        "the same version: nothing held, other changes pass",
			live:        cluster(map[string]any{"postgresVersion": int64(16)}),
			desired:     cluster(map[string]any{"postgresVersion": int64(16), "instances": instances}),
			wantApplied: map[string]any{"postgresVersion": int64(16), "instances": instances},
		},
		{
			name:          "going up is held at the running version, other changes pass",
			live:          cluster(map[string]any{"postgresVersion": int64(16)}),
			desired:       cluster(map[string]any{"postgresVersion": int64(17), "instances": instances}),
			wantApplied:   map[string]any{"postgresVersion": int64(16), "instances": instances},
			wantHeld:      true,
			wantInMessage: []string{"PostgreSQL 16 runs in PostgresCluster hippo", "moving to 17 needs PGO's major upgrade (PGUpgrade)", "set spec.postgres.version back to 16"},
		},
		{
			name:          "going down is held the same way",
			live:          cluster(map[string]any{"postgresVersion": int64(17)}),
			desired:       cluster(map[string]any{"postgresVersion": int64(16)}),
			wantApplied:   map[string]any{"postgresVersion": int64(17)},
			wantHeld:      true,
			wantInMessage: []string{"PostgreSQL 17 runs", "cannot move down to 16", "set spec.postgres.version to 17"},
		},
		{
			name:          "a new image with the new version: the running image is held too",
			live:          cluster(map[string]any{"postgresVersion": int64(16), "image": "mirror/postgres:16.9"}),
			desired:       cluster(map[string]any{"postgresVersion": int64(17), "image": "mirror/postgres:17.5"}),
			wantApplied:   map[string]any{"postgresVersion": int64(16), "image": "mirror/postgres:16.9"},
			wantHeld:      true,
			wantInMessage: []string{"and the image it runs"},
		},
		{
			name:        "an image named with the new version, none running: PGO's default for the running version",
			live:        cluster(map[string]any{"postgresVersion": int64(16)}),
			desired:     cluster(map[string]any{"postgresVersion": int64(17), "image": "mirror/postgres:17.5"}),
			wantApplied: map[string]any{"postgresVersion": int64(16)},
			wantHeld:    true,
		},
		{
			name:        "the image dropped with the version change: PGO's default for the running version",
			live:        cluster(map[string]any{"postgresVersion": int64(16), "image": "mirror/postgres:16.9"}),
			desired:     cluster(map[string]any{"postgresVersion": int64(17)}),
			wantApplied: map[string]any{"postgresVersion": int64(16)},
			wantHeld:    true,
		},
		{
			name:        "a new image on the same version is the stack's to change",
			live:        cluster(map[string]any{"postgresVersion": int64(16), "image": "mirror/postgres:16.9"}),
			desired:     cluster(map[string]any{"postgresVersion": int64(16), "image": "mirror/postgres:16.10"}),
			wantApplied: map[string]any{"postgresVersion": int64(16), "image": "mirror/postgres:16.10"},
		},
		{
			name:        "a live object without a version holds nothing",
			live:        cluster(map[string]any{}),
			desired:     cluster(map[string]any{"postgresVersion": int64(17)}),
			wantApplied: map[string]any{"postgresVersion": int64(17)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.desired.DeepCopy()
			applied, hold := HoldMajorVersion(tt.live, tt.desired)
			if !equality.Semantic.DeepEqual(applied.Object["spec"], tt.wantApplied) {
				t.Errorf("applied spec = %v, want %v", applied.Object["spec"], tt.wantApplied)
			}
			if !equality.Semantic.DeepEqual(tt.desired, before) {
				t.Errorf("the rendered object was changed: %v", tt.desired.Object)
			}
			if (hold != nil) != tt.wantHeld {
				t.Fatalf("hold = %+v, want held %v", hold, tt.wantHeld)
			}
			if hold == nil {
				return
			}
			if hold.Reason != platformv1alpha1.ReasonMajorVersionChangeHeld {
				t.Errorf("reason = %s, want %s", hold.Reason, platformv1alpha1.ReasonMajorVersionChangeHeld)
			}
			for _, part := range tt.wantInMessage {
				if !strings.Contains(hold.Message, part) {
					t.Errorf("message %q does not say %q", hold.Message, part)
				}
			}
		})
	}
}
