package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.RunTests(m, func(e *testenv.Env) error {
		env = e
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
		return env.Client.Create(context.Background(), ns)
	}))
}

const namespace = "validation"

// stack builds a PostgresStack from the YAML of its spec, as unstructured so
// that a test can send what the Go types could not hold (a list where an
// object belongs, a malformed time).
func stack(t *testing.T, name, spec string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	var specValue map[string]any
	if err := yaml.Unmarshal([]byte(spec), &specValue); err != nil {
		t.Fatalf("spec YAML: %v", err)
	}
	u.Object = map[string]any{"spec": specValue}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("PostgresStack"))
	u.SetName(name)
	u.SetNamespace(namespace)
	return u
}

// Each row is a mistake a person could make; the API server must refuse it
// as Invalid, and its message must name the field (and, for the CEL rules,
// say what is allowed).
func TestTheAPIServerRejectsInvalidStacks(t *testing.T) {
	tests := []struct {
		name string
		spec string
		want []string
	}{
		{"postgres version too old", `{postgres: {version: 10}}`, []string{"spec.postgres.version", "11"}},
		{"postgres version too new", `{postgres: {version: 19}}`, []string{"spec.postgres.version", "18"}},
		{"zero replicas", `{postgres: {replicas: 0}}`, []string{"spec.postgres.replicas"}},
		{"zero storage", `{postgres: {storage: "0"}}`, []string{"spec.postgres.storage", "more than zero"}},
		{"negative storage", `{postgres: {storage: -1Gi}}`, []string{"spec.postgres.storage", "more than zero"}},
		{"storage that is not a quantity", `{postgres: {storage: lots}}`, []string{"spec.postgres.storage"}},
		{"instances with the replicas shorthand", `{postgres: {instances: [{name: a}], replicas: 2}}`, []string{"spec.postgres.instances:", "postgres.instances cannot be combined with the shorthands"}},
		{"instances with the storage shorthand", `{postgres: {instances: [{name: a}], storage: 2Gi}}`, []string{"spec.postgres.instances:", "postgres.instances cannot be combined with the shorthands"}},
		{"an empty instances list", `{postgres: {instances: []}}`, []string{"spec.postgres.instances"}},
		{"an instance set name with capitals", `{postgres: {instances: [{name: Big_Set}]}}`, []string{"spec.postgres.instances[0].name"}},
		{"two instance sets with one name", `{postgres: {instances: [{name: a}, {name: a}]}}`, []string{"spec.postgres.instances[1]", "Duplicate"}},
		{"an instance set with zero replicas", `{postgres: {instances: [{name: a, replicas: 0}]}}`, []string{"spec.postgres.instances[0].replicas"}},
		{"an instance set with zero storage", `{postgres: {instances: [{name: a, storage: "0"}]}}`, []string{"spec.postgres.instances[0].storage", "more than zero"}},
		{"seven instance sets", `{postgres: {instances: [{name: a}, {name: b}, {name: c}, {name: d}, {name: e}, {name: f}, {name: g}]}}`, []string{"spec.postgres.instances", "at most 6"}},
		{"sync replication with one instance", `{postgres: {syncReplication: true}}`, []string{"spec.postgres.syncReplication:", "postgres.syncReplication needs at least two PostgreSQL instances"}},
		{"sync replication with one instance set of one", `{postgres: {syncReplication: true, instances: [{name: a, replicas: 1}]}}`, []string{"spec.postgres.syncReplication:", "postgres.syncReplication needs at least two PostgreSQL instances"}},
		{"a repo named repo5", `{postgres: {backups: {repos: [{name: repo5, volume: {}}]}}}`, []string{"spec.postgres.backups.repos[0].name", "repo1"}},
		{"two repos with one name", `{postgres: {backups: {repos: [{name: repo1, volume: {}}, {name: repo1, gcs: {bucket: b}}]}}}`, []string{"spec.postgres.backups.repos[1]", "Duplicate"}},
		{"five repos", `{postgres: {backups: {repos: [{name: repo1, volume: {}}, {name: repo2, volume: {}}, {name: repo3, volume: {}}, {name: repo4, volume: {}}, {name: repo4, gcs: {bucket: b}}]}}}`, []string{"spec.postgres.backups.repos", "at most 4"}},
		{"a repo on a volume and in S3", `{postgres: {backups: {repos: [{name: repo1, volume: {}, s3: {bucket: b, endpoint: e, region: r}}]}}}`, []string{"spec.postgres.backups.repos[0]", "exactly one of volume, s3, gcs or azure"}},
		{"a repo on no storage", `{postgres: {backups: {repos: [{name: repo1}]}}}`, []string{"spec.postgres.backups.repos[0]", "exactly one of volume, s3, gcs or azure"}},
		{"an S3 repo without a region", `{postgres: {backups: {repos: [{name: repo1, s3: {bucket: b, endpoint: e}}]}}}`, []string{"spec.postgres.backups.repos[0].s3.region"}},
		{"a repo volume of zero", `{postgres: {backups: {repos: [{name: repo1, volume: {storage: "0"}}]}}}`, []string{"spec.postgres.backups.repos[0].volume.storage", "more than zero"}},
		{"a schedule that is not cron", `{postgres: {backups: {repos: [{name: repo1, volume: {}, schedules: {full: every day}}]}}}`, []string{"spec.postgres.backups.repos[0].schedules.full"}},
		{"a retention that keeps nothing", `{postgres: {backups: {repos: [{name: repo1, volume: {}, retention: {}}]}}}`, []string{"retention needs full or differential"}},
		{"a retention of zero full backups", `{postgres: {backups: {repos: [{name: repo1, volume: {}, retention: {full: 0}}]}}}`, []string{"spec.postgres.backups.repos[0].retention.full"}},
		{"a retention counted in days", `{postgres: {backups: {repos: [{name: repo1, volume: {}, retention: {full: 3, fullType: days}}]}}}`, []string{"spec.postgres.backups.repos[0].retention.fullType"}},
		{"a relative repo path", `{postgres: {backups: {repos: [{name: repo1, volume: {}, path: backups}]}}}`, []string{"spec.postgres.backups.repos[0].path"}},
		{"repos with backups disabled", `{postgres: {backups: {enabled: false, repos: [{name: repo1, volume: {}}]}}}`, []string{"postgres.backups.repos cannot be set while postgres.backups.enabled is false"}},
		{"restore and clone at once", `{postgres: {restore: {id: a}, cloneFrom: {clusterName: b, repoName: repo1}}}`, []string{"postgres.restore and postgres.cloneFrom cannot be used together"}},
		{"restore and standby at once", `{postgres: {restore: {id: a}, standby: {repoName: repo1}}}`, []string{"postgres.restore and postgres.standby cannot be used together"}},
		{"restore from a repo that is not configured", `{postgres: {restore: {id: a, repoName: repo2}}}`, []string{"spec.postgres.restore.repoName:", "postgres.restore.repoName must name a repository configured in postgres.backups.repos"}},
		{"restore from a repo missing from repos", `{postgres: {restore: {id: a, repoName: repo2}, backups: {repos: [{name: repo1, volume: {}}, {name: repo3, gcs: {bucket: b}}]}}}`, []string{"postgres.restore.repoName must name a repository configured"}},
		{"restore with backups disabled", `{postgres: {restore: {id: a}, backups: {enabled: false}}}`, []string{"postgres.restore needs backups"}},
		{"restore without an id", `{postgres: {restore: {repoName: repo1}}}`, []string{"spec.postgres.restore.id"}},
		{"restore to a time that is not a time", `{postgres: {restore: {id: a, targetTime: yesterday}}}`, []string{"spec.postgres.restore.targetTime"}},
		{"a standby following nothing", `{postgres: {standby: {}}}`, []string{"postgres.standby needs repoName"}},
		{"a standby port without a host", `{postgres: {standby: {repoName: repo1, port: 5432}}}`, []string{"postgres.standby.port needs postgres.standby.host"}},
		{"a standby port below 1024", `{postgres: {standby: {host: h, port: 80}}}`, []string{"spec.postgres.standby.port"}},
		{"a standby from a repo that is not configured", `{postgres: {standby: {repoName: repo3}}}`, []string{"spec.postgres.standby.repoName:", "postgres.standby.repoName must name a repository configured"}},
		{"a standby from a repo with backups disabled", `{postgres: {standby: {repoName: repo1}, backups: {enabled: false}}}`, []string{"postgres.standby.repoName needs backups"}},
		{"a clone from a cluster and a cloud repo", `{postgres: {cloneFrom: {clusterName: a, repoName: repo1, repo: {name: repo1, gcs: {bucket: b}}}}}`, []string{"postgres.cloneFrom needs exactly one of clusterName"}},
		{"a clone from nothing", `{postgres: {cloneFrom: {}}}`, []string{"postgres.cloneFrom needs exactly one of clusterName"}},
		{"a clone from a cluster without repoName", `{postgres: {cloneFrom: {clusterName: a}}}`, []string{"postgres.cloneFrom.repoName"}},
		{"a clone from a cloud repo on two clouds", `{postgres: {cloneFrom: {repo: {name: repo1, gcs: {bucket: b}, azure: {container: c}}}}}`, []string{"postgres.cloneFrom.repo must set exactly one of s3, gcs or azure"}},
		{"a clone stanza without a cloud repo", `{postgres: {cloneFrom: {clusterName: a, repoName: repo1, stanza: db}}}`, []string{"apply only to postgres.cloneFrom.repo"}},
		{"a custom TLS secret without the replication one", `{postgres: {tls: {customTLSSecret: a}}}`, []string{"postgres.tls.customTLSSecret and postgres.tls.customReplicationTLSSecret must be set together"}},
		{"a TLS secret name that is no name", `{postgres: {tls: {customTLSSecret: Bad_Name, customReplicationTLSSecret: b}}}`, []string{"spec.postgres.tls.customTLSSecret"}},
		{"negative PgBouncer replicas", `{postgres: {pooler: {replicas: -1}}}`, []string{"spec.postgres.pooler.replicas"}},
		{"an ExternalName PgBouncer service", `{postgres: {pooler: {serviceType: ExternalName}}}`, []string{"spec.postgres.pooler.serviceType", "ClusterIP"}},
		{"a user name with capitals", `{postgres: {users: [{name: Rhino}]}}`, []string{"spec.postgres.users[0].name"}},
		{"user options with a semicolon", `{postgres: {users: [{name: rhino, options: "CREATEDB; DROP TABLE x"}]}}`, []string{"spec.postgres.users[0].options"}},
		{"two users with one name", `{postgres: {users: [{name: rhino}, {name: rhino}]}}`, []string{"spec.postgres.users[1]", "Duplicate"}},
		{"database init SQL without a key", `{postgres: {databaseInitSQL: {name: init}}}`, []string{"spec.postgres.databaseInitSQL.key"}},
		{"overrides that are a list", `{postgres: {overrides: [1]}}`, []string{"spec.postgres.overrides"}},
		{"a node selector of 33 labels", `{postgres: {scheduling: {nodeSelector: {` + manyLabels(33) + `}}}}`, []string{"spec.postgres.scheduling.nodeSelector", "32"}},
		{"operator versions that are a word", `{operator: {versions: latest}}`, []string{"operator.versions must be a semver range"}},
		{"operator versions with a dangling comparator", `{operator: {versions: ">=5.7.0 <"}}`, []string{"operator.versions must be a semver range"}},
		{"an approval mode that does not exist", `{operator: {approval: Sometimes}}`, []string{"spec.operator.approval", "Manual"}},
		{"a maintenance window of 25 hours", `{operator: {maintenanceWindow: {start: "02:00", duration: 25h}}}`, []string{"spec.operator.maintenanceWindow.duration", "at most 24h"}},
		{"a maintenance window at 25 o'clock", `{operator: {maintenanceWindow: {start: "25:00", duration: 1h}}}`, []string{"spec.operator.maintenanceWindow.start"}},
		{"a deletion policy that does not exist", `{deletionPolicy: Destroy}`, []string{"spec.deletionPolicy", "Retain"}},
		// The pgBackRest options PGO sets itself and refuses (PGO v5.8.9
		// internal/controller/postgrescluster/pgbackrest.go:1175-1199).
		{"restore options with --target-action", `{postgres: {restore: {id: a, options: ["--type=time", "--target-action=pause"]}}}`, []string{"spec.postgres.restore.options", "must not set --target-action"}},
		{"restore options with --repo=", `{postgres: {restore: {id: a, options: ["--repo=2"]}}}`, []string{"spec.postgres.restore.options", "must not set --repo"}},
		{"restore options with --repo and a space", `{postgres: {restore: {id: a, options: ["--repo 2"]}}}`, []string{"spec.postgres.restore.options", "must not set --repo"}},
		{"restore options with a bare --repo", `{postgres: {restore: {id: a, options: ["--repo", "2"]}}}`, []string{"spec.postgres.restore.options", "must not set --repo"}},
		{"restore options with --stanza", `{postgres: {restore: {id: a, options: ["--stanza=db"]}}}`, []string{"spec.postgres.restore.options", "must not set --stanza"}},
		{"restore options with --pg1-path", `{postgres: {restore: {id: a, options: ["--pg1-path=/pgdata/pg16"]}}}`, []string{"spec.postgres.restore.options", "must not set --pg1-path"}},
		{"restore options with --link-map", `{postgres: {restore: {id: a, options: ["--link-map=pg_wal=/pgwal"]}}}`, []string{"spec.postgres.restore.options", "must not set --link-map"}},
		{"clone options with --target-action", `{postgres: {cloneFrom: {clusterName: a, repoName: repo1, options: ["--target-action=promote"]}}}`, []string{"spec.postgres.cloneFrom.options", "must not set --target-action"}},
		{"clone options with --stanza", `{postgres: {cloneFrom: {repo: {name: repo1, gcs: {bucket: b}}, options: ["--stanza=other"]}}}`, []string{"spec.postgres.cloneFrom.options", "must not set --stanza"}},
	}
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := stack(t, fmt.Sprintf("invalid-%d", i), tt.spec)
			err := env.Client.Create(ctx, obj)
			if err == nil {
				_ = env.Client.Delete(ctx, obj)
				t.Fatalf("the API server accepted %s", tt.spec)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid, got %v", err)
			}
			t.Logf("API server: %v", err)
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the message does not say %q:\n%v", want, err)
				}
			}
		})
	}
	if len(tests) < 30 {
		t.Errorf("want at least 30 invalid stacks, have %d", len(tests))
	}
}

func manyLabels(n int) string {
	labels := make([]string, n)
	for i := range labels {
		labels[i] = fmt.Sprintf("l%d: v", i)
	}
	return strings.Join(labels, ", ")
}

// Stacks at the edges of the rules, which the API server must accept.
func TestTheAPIServerAcceptsStacksAtTheEdges(t *testing.T) {
	tests := []struct{ name, spec string }{
		{"a range of two comparators", `{operator: {versions: ">=5.7.0 <5.9.0"}}`},
		{"a tilde range", `{operator: {versions: "~5.8"}}`},
		{"an or of wildcards", `{operator: {versions: "5.7.x || 5.8.x"}}`},
		{"a comma-joined range", `{operator: {versions: ">=5.7.0, <5.9.0"}}`},
		{"a hyphen range", `{operator: {versions: "5.7.0 - 5.8.9"}}`},
		{"a caret range with a pre-release", `{operator: {versions: "^5.8.0-0"}}`},
		{"sync replication with two instance sets of one", `{postgres: {syncReplication: true, instances: [{name: a}, {name: b}]}}`},
		{"restore from a configured cloud repo", `{postgres: {restore: {id: a, repoName: repo3}, backups: {repos: [{name: repo3, azure: {container: c}}]}}}`},
		{"a standby streaming from a host without backups", `{postgres: {standby: {host: primary, port: 5432}, backups: {enabled: false}}}`},
		{"the oldest postgres", `{postgres: {version: 11}}`},
		{"the newest postgres", `{postgres: {version: 18}}`},
		{"no backups at all", `{postgres: {backups: {enabled: false}}}`},
		{"a pooler scaled to zero", `{postgres: {pooler: {replicas: 0}}}`},
		{"restore options PGO passes on", `{postgres: {restore: {id: a, options: ["--set=20250101-010000F", "--type=immediate", "--repo-target-time=2025-01-01 01:00:00+00"]}}}`},
		{"clone options PGO passes on", `{postgres: {cloneFrom: {clusterName: a, repoName: repo1, options: ["--type=immediate"]}}}`},
	}
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := stack(t, fmt.Sprintf("edge-%d", i), tt.spec)
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Fatalf("the API server rejected %s: %v", tt.spec, err)
			}
			_ = env.Client.Delete(ctx, obj)
		})
	}
}

// The CRD's defaults show in what the API server stores, so `kubectl get -o
// yaml` says what a stack that left them out runs with.
func TestDefaultsAreVisibleOnTheStoredStack(t *testing.T) {
	ctx := context.Background()
	obj := stack(t, "defaults", `{postgres: {instances: [{name: a}], pooler: {}, monitoring: {}, restore: {id: x}, backups: {repos: [{name: repo1, volume: {}, retention: {full: 2}}]}}}`)
	if err := env.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, obj) })
	got := &v1alpha1.PostgresStack{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(obj), got); err != nil {
		t.Fatal(err)
	}
	pg := got.Spec.Postgres
	checks := []struct {
		what string
		ok   bool
	}{
		{"postgres.version 16", pg.Version == 16},
		{"instances[0].replicas 1", pg.Instances[0].Replicas == 1},
		{"instances[0].storage 1Gi", pg.Instances[0].Storage != nil && pg.Instances[0].Storage.String() == "1Gi"},
		{"backups.enabled true", pg.Backups.Enabled != nil && *pg.Backups.Enabled},
		{"repos[0].volume.storage 1Gi", pg.Backups.Repos[0].Volume.Storage != nil && pg.Backups.Repos[0].Volume.Storage.String() == "1Gi"},
		{"repos[0].retention.fullType count", pg.Backups.Repos[0].Retention.FullType == "count"},
		{"restore.repoName repo1", pg.Restore.RepoName == "repo1"},
		{"pooler enabled with 1 replica behind ClusterIP", pg.Pooler.Enabled != nil && *pg.Pooler.Enabled && pg.Pooler.Replicas != nil && *pg.Pooler.Replicas == 1 && pg.Pooler.ServiceType == "ClusterIP"},
		{"monitoring enabled", pg.Monitoring.Enabled != nil && *pg.Monitoring.Enabled},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("default missing: %s (stored postgres spec %+v)", c.what, pg)
		}
	}
}

// Transition rules: changes that cannot work on a running cluster are
// refused on update, and the ones that can are allowed.
func TestTheAPIServerRefusesChangesThatCannotWork(t *testing.T) {
	tests := []struct {
		name, before, after string
		want                string // empty: the change is allowed
	}{
		// The controller holds a major version change in either direction
		// (controllers: TestAMajorVersionChangeIsHeldUntilSetBack,
		// TestAVersionBelowTheRunningOneIsHeld); a person must be able to
		// set the version back to the one running.
		{"postgres version down", `{postgres: {version: 17}}`, `{postgres: {version: 16}}`, ""},
		{"postgres version up", `{postgres: {version: 16}}`, `{postgres: {version: 17}}`, ""},
		{"shorthand storage shrinks", `{postgres: {storage: 2Gi}}`, `{postgres: {storage: 1Gi}}`, "postgres.storage may only grow"},
		{"shorthand storage grows", `{postgres: {storage: 1Gi}}`, `{postgres: {storage: 1500Mi}}`, ""},
		{"instance storage shrinks", `{postgres: {instances: [{name: a, storage: 2Gi}]}}`, `{postgres: {instances: [{name: a, storage: 1Gi}]}}`, "postgres.instances[].storage may only grow"},
		{"repo volume shrinks", `{postgres: {backups: {repos: [{name: repo1, volume: {storage: 2Gi}}]}}}`, `{postgres: {backups: {repos: [{name: repo1, volume: {storage: 1Gi}}]}}}`, "postgres.backups.repos[].volume.storage may only grow"},
		{"shorthand storage class changes", `{postgres: {storageClass: a}}`, `{postgres: {storageClass: b}}`, "postgres.storageClass cannot change"},
		{"instance storage class changes", `{postgres: {instances: [{name: a, storageClass: fast}]}}`, `{postgres: {instances: [{name: a, storageClass: slow}]}}`, "postgres.instances[].storageClass cannot change"},
		{"a new instance set on another class", `{postgres: {instances: [{name: a, storageClass: fast}]}}`, `{postgres: {instances: [{name: a, storageClass: fast}, {name: b, storageClass: slow}]}}`, ""},
		{"repo volume storage class changes", `{postgres: {backups: {repos: [{name: repo1, volume: {storageClass: fast}}]}}}`, `{postgres: {backups: {repos: [{name: repo1, volume: {storageClass: slow}}]}}}`, "postgres.backups.repos[].volume.storageClass cannot change"},
		{"clone source changes", `{postgres: {cloneFrom: {clusterName: a, repoName: repo1}}}`, `{postgres: {cloneFrom: {clusterName: b, repoName: repo1}}}`, "postgres.cloneFrom cannot change once set"},
		{"clone source is removed after the clone", `{postgres: {cloneFrom: {clusterName: a, repoName: repo1}}}`, `{postgres: {}}`, ""},
		{"operator namespace changes", `{operator: {namespace: operators}}`, `{operator: {namespace: elsewhere}}`, "operator.namespace is immutable"},
	}
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := stack(t, fmt.Sprintf("transition-%d", i), tt.before)
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Fatalf("create: %v", err)
			}
			t.Cleanup(func() { _ = env.Client.Delete(ctx, obj) })
			updated := stack(t, obj.GetName(), tt.after)
			updated.SetResourceVersion(obj.GetResourceVersion())
			err := env.Client.Update(ctx, updated)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("the API server refused an allowed change: %v", err)
			case tt.want != "" && !apierrors.IsInvalid(err):
				t.Fatalf("want Invalid, got %v", err)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("the message does not say %q: %v", tt.want, err)
			}
		})
	}
}

// PGO names each instance's pods after the cluster and the instance set, and
// documents (without checking) that the two names may be at most 46
// characters together. The cluster takes the stack's name, so the API server
// judges the stack's name beside each set's.
func TestTheAPIServerRefusesNamesPGOCannotRunWith(t *testing.T) {
	tests := []struct {
		name         string
		stackName    string
		generateName string
		spec         string
		refused      bool
	}{
		{name: "37 characters beside the default instance1", stackName: strings.Repeat("a", 37), spec: `{}`},
		{name: "38 characters beside the default instance1", stackName: strings.Repeat("a", 38), spec: `{}`, refused: true},
		{name: "38 characters beside a set of 8", stackName: strings.Repeat("a", 38), spec: `{postgres: {instances: [{name: set12345}]}}`},
		{name: "38 characters beside a set of 9", stackName: strings.Repeat("a", 38), spec: `{postgres: {instances: [{name: ok}, {name: set123456}]}}`, refused: true},
		{name: "a short name beside a long set", stackName: "hippo", spec: `{postgres: {instances: [{name: ` + strings.Repeat("s", 42) + `}]}}`, refused: true},
		// The API server names a generateName's object before validating it,
		// so the rule sees the generated name: a 33-character prefix gets 5
		// random characters, 38 in all.
		{name: "a generated name of 38 beside instance1", generateName: strings.Repeat("g", 33), spec: `{}`, refused: true},
		{name: "a generated name of 37 beside instance1", generateName: strings.Repeat("g", 32), spec: `{}`},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := stack(t, tt.stackName, tt.spec)
			if tt.generateName != "" {
				obj.SetName("")
				obj.SetGenerateName(tt.generateName)
			}
			err := env.Client.Create(ctx, obj)
			if err == nil {
				t.Cleanup(func() { _ = env.Client.Delete(ctx, obj) })
			}
			switch {
			case !tt.refused && err != nil:
				t.Fatalf("the API server refused %s named %q%q: %v", tt.spec, tt.stackName, tt.generateName, err)
			case tt.refused && err == nil:
				t.Fatalf("the API server accepted %s as %q", tt.spec, obj.GetName())
			case tt.refused && !apierrors.IsInvalid(err):
				t.Fatalf("want Invalid, got %v", err)
			case tt.refused && !strings.Contains(err.Error(), "may be at most 46 characters together"):
				t.Errorf("the message does not give the limit: %v", err)
			}
		})
	}
}
