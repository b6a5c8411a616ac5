package pgo

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// defaultPort is PostgreSQL's port when spec.port is not set (PGO's CRD default).
const defaultPort = 5432

// Connection names what PGO makes for connecting to pc, by PGO's own
// naming (internal/naming/names.go: ClusterPrimaryService, ClusterPGBouncer,
// PostgresUserSecret): the primary's Service and port, PgBouncer's Service
// when the pooler is on, and each user's Secret. With spec.users absent PGO
// makes one user named after the cluster (postgrescluster/postgres.go:500-528).
func Connection(pc *unstructured.Unstructured) platformv1alpha1.ConnectionStatus {
	name := pc.GetName()
	c := platformv1alpha1.ConnectionStatus{Service: name + "-primary", Port: defaultPort}
	if port, ok, _ := unstructured.NestedInt64(pc.Object, "spec", "port"); ok {
		c.Port = int32(port)
	}
	if _, ok, _ := unstructured.NestedMap(pc.Object, "spec", "proxy", "pgBouncer"); ok {
		c.PoolerService = name + "-pgbouncer"
	}
	users, found, _ := unstructured.NestedSlice(pc.Object, "spec", "users")
	if !found {
		users = []any{map[string]any{"name": name}}
	}
	for _, u := range users {
		if m, ok := u.(map[string]any); ok {
			if user, _ := m["name"].(string); user != "" {
				c.Users = append(c.Users, platformv1alpha1.UserSecret{Name: user, Secret: name + "-pguser-" + user})
			}
		}
	}
	return c
}
