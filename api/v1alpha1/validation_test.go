package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/test/invalidstacks"
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

// The invalid-stack table (test/invalidstacks): each stack is a mistake a
// person could make. One the table says the API server refuses must be
// refused as Invalid, with a message naming the field (and, for the CEL
// rules, saying what is allowed); one it leaves to the renderer alone must
// be admitted.
func TestTheAPIServerJudgesTheInvalidStackTable(t *testing.T) {
	cases, err := invalidstacks.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	refused := 0
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(c.Stack); err != nil {
				t.Fatalf("stack: %v", err)
			}
			obj.SetNamespace(namespace)
			err := env.Client.Create(ctx, obj)
			if err == nil {
				t.Cleanup(func() { _ = env.Client.Delete(ctx, obj) })
			}
			if c.APIServer != nil && err != nil && !apierrors.IsInvalid(err) {
				t.Fatalf("want Invalid, got %v", err)
			}
			invalidstacks.Check(t, "the API server", c.APIServer, err)
		})
		if c.APIServer != nil {
			refused++
		}
	}
	if refused < 30 {
		t.Errorf("want at least 30 stacks the API server refuses in the table, have %d", refused)
	}
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
		{"every operation on a default HA stack", `{postgres: {replicas: 2}, operations: {backup: {token: "2026-12-02T10:00", options: ["--type=full"]}, restart: {token: CHG-1234}, switchover: {token: s.1, targetInstance: hippo-instance1-abcd}}}`},
		{"a backup to a second configured repo", `{postgres: {backups: {repos: [{name: repo1, volume: {}}, {name: repo2, s3: {bucket: b, endpoint: e, region: r}}]}}, operations: {backup: {token: b1, repoName: repo2}}}`},
		{"a backup removal naming two repos", `{operations: {backupRemoval: {token: drop-2026-12-02, repos: [repo2, repo3]}}}`},
		{"a switchover across two instance sets of one", `{postgres: {instances: [{name: a}, {name: b}]}, operations: {switchover: {token: s1}}}`},
		{"every kind of authentication rule PGO takes", `{postgres: {authentication: {rules: [` +
			`{hba: "hostssl all all all scram-sha-256"}, ` +
			`{connection: hostssl, method: ldap, options: {ldapserver: ldap.example.com, ldapprefix: "cn=", ldapsuffix: ",dc=example,dc=com"}}, ` +
			`{connection: hostssl, method: ldap, options: {ldapserver: ldap.example.com, ldapbasedn: "dc=example,dc=com", ldapsearchattribute: uid}}, ` +
			`{connection: host, method: radius, options: {radiusservers: r.example.com, radiussecrets: s}}, ` +
			`{connection: hostssl, method: cert, databases: [app], users: [app], options: {clientcert: verify-full}}, ` +
			`{connection: host, method: reject}]}}}`},
		{"repo host resources for the default repo1 volume", `{postgres: {backups: {repoHostResources: {requests: {cpu: 100m}}}}}`},
		{"a tablespace name of 52 characters", `{postgres: {instances: [{name: a, tablespaces: [{name: ` + strings.Repeat("t", 52) + `, storage: 1Gi}]}]}}`},
		{"a primary Service with annotations only", `{postgres: {service: {annotations: {a: b}}}}`},
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
		{"WAL volume shrinks", `{postgres: {instances: [{name: a, walVolume: {storage: 2Gi}}]}}`, `{postgres: {instances: [{name: a, walVolume: {storage: 1Gi}}]}}`, "storage may only grow"},
		{"WAL volume grows", `{postgres: {instances: [{name: a, walVolume: {storage: 1Gi}}]}}`, `{postgres: {instances: [{name: a, walVolume: {storage: 2Gi}}]}}`, ""},
		{"WAL volume storage class changes", `{postgres: {instances: [{name: a, walVolume: {storage: 1Gi, storageClass: fast}}]}}`, `{postgres: {instances: [{name: a, walVolume: {storage: 1Gi, storageClass: slow}}]}}`, "storageClass cannot change"},
		{"a WAL volume is added", `{postgres: {instances: [{name: a}]}}`, `{postgres: {instances: [{name: a, walVolume: {storage: 1Gi}}]}}`, ""},
		{"a WAL volume is removed (PGO moves the WAL back)", `{postgres: {instances: [{name: a, walVolume: {storage: 1Gi}}]}}`, `{postgres: {instances: [{name: a}]}}`, ""},
		{"tablespace shrinks", `{postgres: {instances: [{name: a, tablespaces: [{name: t, storage: 2Gi}]}]}}`, `{postgres: {instances: [{name: a, tablespaces: [{name: t, storage: 1Gi}]}]}}`, "storage may only grow"},
		{"tablespace storage class changes", `{postgres: {instances: [{name: a, tablespaces: [{name: t, storage: 1Gi, storageClass: fast}]}]}}`, `{postgres: {instances: [{name: a, tablespaces: [{name: t, storage: 1Gi, storageClass: slow}]}]}}`, "storageClass cannot change"},
		{"a tablespace is added", `{postgres: {instances: [{name: a, tablespaces: [{name: t, storage: 1Gi}]}]}}`, `{postgres: {instances: [{name: a, tablespaces: [{name: t, storage: 1Gi}, {name: u, storage: 1Gi}]}]}}`, ""},
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
// judges the stack's name beside each set's: the names past the limit are in
// the invalid-stack table, these at it must be admitted.
func TestTheAPIServerAdmitsNamesAtPGOsLimit(t *testing.T) {
	tests := []struct {
		name         string
		stackName    string
		generateName string
		spec         string
	}{
		{name: "37 characters beside the default instance1", stackName: strings.Repeat("a", 37), spec: `{}`},
		{name: "38 characters beside a set of 8", stackName: strings.Repeat("a", 38), spec: `{postgres: {instances: [{name: set12345}]}}`},
		// The API server names a generateName's object before validating it,
		// so the rule sees the generated name: a 32-character prefix gets 5
		// random characters, 37 in all.
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
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Fatalf("the API server refused %s named %q%q: %v", tt.spec, tt.stackName, tt.generateName, err)
			}
			t.Cleanup(func() { _ = env.Client.Delete(ctx, obj) })
		})
	}
}

// One PostgresRolloutPolicy per install namespace, named default, with sane
// bounds; the defaults a person did not write are stored.
func TestTheAPIServerJudgesRolloutPolicies(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, spec string
		want       string // empty: admitted
	}{
		{name: "default", spec: `{}`},
		{name: "other", spec: `{}`, want: "must be named default"},
		{name: "default", spec: `{maxConcurrent: 0}`, want: "spec.maxConcurrent"},
		{name: "default", spec: `{resume: "` + strings.Repeat("x", 64) + `"}`, want: "spec.resume"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+tt.spec, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			var spec map[string]any
			if err := yaml.Unmarshal([]byte(tt.spec), &spec); err != nil {
				t.Fatal(err)
			}
			u.Object = map[string]any{"spec": spec}
			u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("PostgresRolloutPolicy"))
			u.SetName(tt.name)
			u.SetNamespace(namespace)
			err := env.Client.Create(ctx, u)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				t.Cleanup(func() { _ = env.Client.Delete(ctx, u) })
				got := &v1alpha1.PostgresRolloutPolicy{}
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), got); err != nil {
					t.Fatal(err)
				}
				if got.Spec.MaxConcurrent != 1 || got.Spec.SoakTime.Duration != 5*time.Minute || got.Spec.ProgressDeadline.Duration != 10*time.Minute {
					t.Errorf("stored defaults = %+v, want maxConcurrent 1, soakTime 5m, progressDeadline 10m", got.Spec)
				}
				return
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want Invalid naming %q", err, tt.want)
			}
		})
	}
}
