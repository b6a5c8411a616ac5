package render_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/render"
	"github.com/pgstack/pgstack/test/invalidstacks"
	"github.com/pgstack/pgstack/test/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the renderer's current output")

const samplesDir = "../../config/samples"

// samples returns every PostgresStack sample file, by base name.
func samples(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(samplesDir, "platform_v1alpha1_postgresstack_*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in %s: %v", samplesDir, err)
	}
	return files
}

func decodeFile(t testing.TB, path string) *v1alpha1.PostgresStack {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stacks, err := render.DecodeStacks(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(stacks) != 1 {
		t.Fatalf("%s: want one PostgresStack, got %d", path, len(stacks))
	}
	return stacks[0]
}

func goldenPath(sample string) string {
	name := strings.TrimPrefix(filepath.Base(sample), "platform_v1alpha1_postgresstack_")
	return filepath.Join("testdata", "golden", name)
}

// Each sample renders to the PostgresCluster checked in beside it; a change
// to the renderer shows up as a reviewable diff of these files
// (go test ./internal/render -update rewrites them).
func TestSamplesRenderToGolden(t *testing.T) {
	for _, sample := range samples(t) {
		t.Run(filepath.Base(sample), func(t *testing.T) {
			stack := decodeFile(t, sample)
			cluster, err := render.Render(stack)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			got, err := yaml.Marshal(cluster.Object)
			if err != nil {
				t.Fatal(err)
			}
			golden := goldenPath(sample)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendered PostgresCluster (run with -update after reviewing):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestEveryGoldenHasASample(t *testing.T) {
	want := map[string]bool{}
	for _, sample := range samples(t) {
		want[goldenPath(sample)] = true
	}
	goldens, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.yaml"))
	for _, g := range goldens {
		if !want[g] {
			t.Errorf("%s has no sample in %s: delete it", g, samplesDir)
		}
	}
}

// Samples are documentation: each says what it shows, and kustomize (and so
// `kubectl apply -k config/samples`) installs every one of them.
func TestSamplesAreListedAndExplained(t *testing.T) {
	kustomization, err := os.ReadFile(filepath.Join(samplesDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(kustomization, &k); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		listed[r] = true
	}
	files := samples(t)
	if len(files) < 10 {
		t.Errorf("want at least ten samples, have %d", len(files))
	}
	names := map[string]string{}
	for _, sample := range files {
		base := filepath.Base(sample)
		if !listed[base] {
			t.Errorf("%s is not listed in config/samples/kustomization.yaml", base)
		}
		delete(listed, base)
		text, _ := os.ReadFile(sample)
		if !bytes.HasPrefix(text, []byte("# ")) {
			t.Errorf("%s does not open with a comment saying what it shows", base)
		}
		name := decodeFile(t, sample).Name
		if other, taken := names[name]; taken {
			t.Errorf("%s and %s both name their stack %q", base, other, name)
		}
		names[name] = base
	}
	for r := range listed {
		t.Errorf("kustomization.yaml lists %s, which does not exist", r)
	}
}

// renderedHippo is the user document's PostgresCluster as pgstack applies it
// for a stack in namespace: labelled as pgstack's. The sample other
// engineers' demo applies must render to exactly it.
func renderedHippo(t *testing.T, namespace string) *unstructured.Unstructured {
	t.Helper()
	want := parse(t, testenv.HippoPostgresCluster)
	want.SetNamespace(namespace)
	want.SetLabels(map[string]string{render.LabelManagedBy: render.ManagedBy, render.LabelStack: "hippo"})
	return want
}

func TestHippoSampleRendersTheUserDocumentsCluster(t *testing.T) {
	stack := decodeFile(t, filepath.Join(samplesDir, "platform_v1alpha1_postgresstack_hippo.yaml"))
	stack.Namespace = "team-a"
	got, err := render.Render(stack)
	if err != nil {
		t.Fatal(err)
	}
	want := renderedHippo(t, "team-a")
	if !reflect.DeepEqual(got.Object, want.Object) {
		g, _ := yaml.Marshal(got.Object)
		w, _ := yaml.Marshal(want.Object)
		t.Errorf("hippo renders to\n%s\nwant\n%s", g, w)
	}
}

func TestAnEmptyStackGetsEveryDefault(t *testing.T) {
	stack := parseStack(t, `
apiVersion: platform.pgstack.dev/v1alpha1
kind: PostgresStack
metadata: {name: hippo, namespace: team-a}
`)
	got, err := render.Render(stack)
	if err != nil {
		t.Fatal(err)
	}
	if want := renderedHippo(t, "team-a"); !reflect.DeepEqual(got.Object, want.Object) {
		g, _ := yaml.Marshal(got.Object)
		t.Errorf("an empty stack renders to\n%s\nwant the user document's hippo", g)
	}
}

func TestRenderIsDeterministicAndLeavesTheStackAlone(t *testing.T) {
	for _, sample := range samples(t) {
		stack := decodeFile(t, sample)
		before := stack.DeepCopy()
		first, err := render.Render(stack)
		if err != nil {
			t.Fatalf("%s: %v", sample, err)
		}
		second, _ := render.Render(stack)
		a, _ := yaml.Marshal(first.Object)
		b, _ := yaml.Marshal(second.Object)
		if !bytes.Equal(a, b) {
			t.Errorf("%s renders differently twice", sample)
		}
		if !reflect.DeepEqual(stack, before) {
			t.Errorf("%s: Render modified the stack", sample)
		}
	}
}

// Rendering rules not visible from the goldens, one scenario per row: the
// stack (spec.postgres only) and what must hold of the PostgresCluster spec.
func TestRenderRules(t *testing.T) {
	tests := []struct {
		name     string
		postgres string
		path     []string
		want     any
	}{
		{"backups disabled renders no backups", `{backups: {enabled: false}}`, []string{"backups"}, nil},
		{"shorthand replicas size instance1", `{replicas: 3, storage: 5Gi, storageClass: fast}`, []string{"instances"},
			[]any{map[string]any{"name": "instance1", "replicas": int64(3), "dataVolumeClaimSpec": map[string]any{
				"accessModes": []any{"ReadWriteOnce"}, "storageClassName": "fast",
				"resources": map[string]any{"requests": map[string]any{"storage": "5Gi"}}}}}},
		{"sync replication turns on Patroni's synchronous mode", `{replicas: 2, syncReplication: true}`,
			[]string{"patroni", "dynamicConfiguration", "synchronous_mode"}, true},
		{"retention and path become pgBackRest globals", `{backups: {global: {repo1-cipher-type: aes-256-cbc}, repos: [{name: repo1, volume: {}, path: /r1, retention: {full: 3, differential: 5}}]}}`,
			[]string{"backups", "pgbackrest", "global"}, map[string]any{
				"repo1-cipher-type": "aes-256-cbc", "repo1-path": "/r1", "repo1-retention-full": "3",
				"repo1-retention-full-type": "count", "repo1-retention-diff": "5"}},
		{"a cloud-only stack has no repo host", `{scheduling: {priorityClassName: high}, backups: {repos: [{name: repo2, gcs: {bucket: b}}]}}`,
			[]string{"backups", "pgbackrest", "repoHost"}, nil},
		{"backup jobs take the scheduling too", `{scheduling: {priorityClassName: high}}`,
			[]string{"backups", "pgbackrest", "jobs", "priorityClassName"}, "high"},
		{"jobs get no topology spread (PGO has none there)", `{scheduling: {topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]}}`,
			[]string{"backups", "pgbackrest", "jobs"}, nil},
		{"an instance set's scheduling replaces the stack's", `{scheduling: {priorityClassName: high}, instances: [{name: a, scheduling: {priorityClassName: low}}]}`,
			[]string{"instances"}, []any{map[string]any{"name": "a", "replicas": int64(1), "priorityClassName": "low",
				"dataVolumeClaimSpec": map[string]any{"accessModes": []any{"ReadWriteOnce"},
					"resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}}}}},
		{"monitoring disabled renders no exporter", `{monitoring: {enabled: false}}`, []string{"monitoring"}, nil},
		{"monitoring with nothing else renders an empty exporter", `{monitoring: {}}`,
			[]string{"monitoring"}, map[string]any{"pgmonitor": map[string]any{"exporter": map[string]any{}}}},
		{"pooler disabled renders no proxy", `{pooler: {enabled: false}}`, []string{"proxy"}, nil},
		{"restore to a time uses pgBackRest's time target in UTC", `{restore: {id: a, targetTime: "2026-01-02T03:04:05+02:00"}}`,
			[]string{"backups", "pgbackrest", "restore"}, map[string]any{"enabled": true, "repoName": "repo1",
				"options": []any{"--type=time", `--target="2026-01-02 01:04:05+00"`}}},
		{"clone from a cluster", `{cloneFrom: {clusterName: hippo, clusterNamespace: other, repoName: repo2, options: [--delta]}}`,
			[]string{"dataSource"}, map[string]any{"postgresCluster": map[string]any{"clusterName": "hippo",
				"clusterNamespace": "other", "repoName": "repo2", "options": []any{"--delta"}}}},
		{"clone from a backup defaults the stanza", `{cloneFrom: {repo: {name: repo1, azure: {container: c}}}}`,
			[]string{"dataSource"}, map[string]any{"pgbackrest": map[string]any{"stanza": "db",
				"repo": map[string]any{"name": "repo1", "azure": map[string]any{"container": "c"}}}}},
		{"standby from a host only", `{standby: {host: primary.example.com, port: 6543}}`,
			[]string{"standby"}, map[string]any{"enabled": true, "host": "primary.example.com", "port": int64(6543)}},
		{"overrides are merged last and may delete", `{pooler: {}, overrides: {proxy: null, postgresVersion: 17, shutdown: true}}`,
			[]string{"proxy"}, nil},
		{"a WAL volume per instance", `{instances: [{name: a, walVolume: {storage: 2Gi, storageClass: fast}}]}`,
			[]string{"instances"}, []any{map[string]any{"name": "a", "replicas": int64(1),
				"dataVolumeClaimSpec": map[string]any{"accessModes": []any{"ReadWriteOnce"},
					"resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}},
				"walVolumeClaimSpec": map[string]any{"accessModes": []any{"ReadWriteOnce"}, "storageClassName": "fast",
					"resources": map[string]any{"requests": map[string]any{"storage": "2Gi"}}}}}},
		{"tablespaces become tablespace volumes", `{instances: [{name: a, tablespaces: [{name: archive, storage: 10Gi}, {name: hot, storage: 1Gi, storageClass: fast}]}]}`,
			[]string{"instances"}, []any{map[string]any{"name": "a", "replicas": int64(1),
				"dataVolumeClaimSpec": map[string]any{"accessModes": []any{"ReadWriteOnce"},
					"resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}},
				"tablespaceVolumes": []any{
					map[string]any{"name": "archive", "dataVolumeClaimSpec": map[string]any{"accessModes": []any{"ReadWriteOnce"},
						"resources": map[string]any{"requests": map[string]any{"storage": "10Gi"}}}},
					map[string]any{"name": "hot", "dataVolumeClaimSpec": map[string]any{"accessModes": []any{"ReadWriteOnce"}, "storageClassName": "fast",
						"resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}}}}}}}},
		{"authentication rules in order", `{authentication: {rules: [{hba: "hostssl all all all scram-sha-256"}, {connection: hostssl, method: cert, users: [app], databases: [app], options: {clientcert: verify-full}}]}}`,
			[]string{"authentication"}, map[string]any{"rules": []any{
				map[string]any{"hba": "hostssl all all all scram-sha-256"},
				map[string]any{"connection": "hostssl", "method": "cert", "users": []any{"app"}, "databases": []any{"app"},
					"options": map[string]any{"clientcert": "verify-full"}}}}},
		{"config files beside parameters", `{parameters: {ssl_crl_file: /etc/postgres/crl.pem}, configFiles: [{secret: {name: crl, items: [{key: crl.pem, path: crl.pem}]}}]}`,
			[]string{"config"}, map[string]any{"parameters": map[string]any{"ssl_crl_file": "/etc/postgres/crl.pem"},
				"files": []any{map[string]any{"secret": map[string]any{"name": "crl", "items": []any{map[string]any{"key": "crl.pem", "path": "crl.pem"}}}}}}},
		{"image pull secrets", `{imagePullSecrets: [{name: registry-a}, {name: registry-b}]}`,
			[]string{"imagePullSecrets"}, []any{map[string]any{"name": "registry-a"}, map[string]any{"name": "registry-b"}}},
		{"the primary Service's type and metadata", `{service: {type: LoadBalancer, annotations: {a: b}, labels: {c: d}}}`,
			[]string{"service"}, map[string]any{"type": "LoadBalancer", "metadata": map[string]any{
				"annotations": map[string]any{"a": "b"}, "labels": map[string]any{"c": "d"}}}},
		{"a Service with annotations only leaves the type to PGO", `{service: {annotations: {a: b}}}`,
			[]string{"service"}, map[string]any{"metadata": map[string]any{"annotations": map[string]any{"a": "b"}}}},
		{"an empty service renders nothing", `{service: {}}`, []string{"service"}, nil},
		{"the PgBouncer Service's metadata beside its type", `{pooler: {serviceType: NodePort, service: {annotations: {a: b}}}}`,
			[]string{"proxy", "pgBouncer", "service"}, map[string]any{"type": "NodePort", "metadata": map[string]any{"annotations": map[string]any{"a": "b"}}}},
		{"repo host resources", `{backups: {repoHostResources: {requests: {cpu: 100m}}}}`,
			[]string{"backups", "pgbackrest", "repoHost"}, map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "100m"}}}},
		{"backup job resources beside their scheduling", `{scheduling: {priorityClassName: high}, backups: {jobResources: {limits: {memory: 1Gi}}}}`,
			[]string{"backups", "pgbackrest", "jobs"}, map[string]any{"priorityClassName": "high", "resources": map[string]any{"limits": map[string]any{"memory": "1Gi"}}}},
		{"overrides add to a typed Service", `{service: {type: NodePort}, overrides: {service: {nodePort: 32000}}}`,
			[]string{"service"}, map[string]any{"type": "NodePort", "nodePort": int64(32000)}},
		{"overrides replace a typed list whole", `{imagePullSecrets: [{name: a}], overrides: {imagePullSecrets: [{name: b}]}}`,
			[]string{"imagePullSecrets"}, []any{map[string]any{"name": "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stack := parseStack(t, "apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: s, namespace: ns}\nspec:\n  postgres: "+tt.postgres+"\n")
			cluster, err := render.Render(stack)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			got, found, err := unstructured.NestedFieldNoCopy(cluster.Object, append([]string{"spec"}, tt.path...)...)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil && found {
				t.Errorf("spec.%s = %v, want it absent", strings.Join(tt.path, "."), got)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("spec.%s =\n %#v\nwant\n %#v", strings.Join(tt.path, "."), got, tt.want)
			}
		})
	}
}

func TestNodeSelectorIsANDedIntoEveryTerm(t *testing.T) {
	stack := parseStack(t, `
apiVersion: platform.pgstack.dev/v1alpha1
kind: PostgresStack
metadata: {name: s}
spec:
  postgres:
    scheduling:
      nodeSelector: {b: "2", a: "1"}
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: zone, operator: In, values: [x]}]
            - matchFields: [{key: metadata.name, operator: In, values: [node-1]}]
`)
	cluster, err := render.Render(stack)
	if err != nil {
		t.Fatal(err)
	}
	instances, _, _ := unstructured.NestedSlice(cluster.Object, "spec", "instances")
	terms, _, _ := unstructured.NestedSlice(instances[0].(map[string]any), "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms")
	a := map[string]any{"key": "a", "operator": "In", "values": []any{"1"}}
	b := map[string]any{"key": "b", "operator": "In", "values": []any{"2"}}
	want := []any{
		map[string]any{"matchExpressions": []any{map[string]any{"key": "zone", "operator": "In", "values": []any{"x"}}, a, b}},
		map[string]any{"matchFields": []any{map[string]any{"key": "metadata.name", "operator": "In", "values": []any{"node-1"}}}, "matchExpressions": []any{a, b}},
	}
	if !reflect.DeepEqual(terms, want) {
		t.Errorf("node selector terms\n %#v\nwant\n %#v", terms, want)
	}
	if len(stack.Spec.Postgres.Scheduling.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions) != 1 {
		t.Error("rendering changed the stack's own affinity")
	}
}

// The invalid-stack table (test/invalidstacks), judged as `pgstack render`
// judges a file: decoded strictly, then rendered. A stack the table says the
// renderer refuses must be refused with each expected phrase; one it leaves
// to the API server alone must render.
func TestRenderJudgesTheInvalidStackTable(t *testing.T) {
	cases, err := invalidstacks.Load()
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			_, err := renderDocument(c.Stack)
			invalidstacks.Check(t, "the renderer", c.Render, err)
		})
		if c.Render != nil {
			refused++
		}
	}
	if refused < 30 {
		t.Errorf("want at least 30 stacks the renderer refuses in the table, have %d", refused)
	}
}

// renderDocument decodes one PostgresStack document and renders it.
func renderDocument(doc []byte) (*unstructured.Unstructured, error) {
	stack, err := render.DecodeStack(doc)
	if err != nil {
		return nil, err
	}
	return render.Render(stack)
}

func TestDecodeStacks(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		stacks  int
		wantErr string
	}{
		{"two documents and an empty one", "# c\n---\napiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: a}\n---\n---\napiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: b}\n", 2, ""},
		{"unknown field", "apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: a}\nspec: {postgres: {verison: 16}}\n", 0, `unknown field "spec.postgres.verison"`},
		{"duplicate field", "apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: a}\nspec: {postgres: {version: 16, version: 17}}\n", 0, "version"},
		{"wrong kind", "apiVersion: postgres-operator.crunchydata.com/v1beta1\nkind: PostgresCluster\nmetadata: {name: a}\n", 0, "is not a PostgresStack"},
		{"no name", "apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\n", 0, "metadata.name"},
		{"not YAML", "a: [\n", 0, "document 1"},
		{"wrong type", "apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: a}\nspec: {postgres: {version: sixteen}}\n", 0, "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stacks, err := render.DecodeStacks(strings.NewReader(tt.input))
			if tt.wantErr == "" {
				if err != nil || len(stacks) != tt.stacks {
					t.Fatalf("got %d stacks, err %v; want %d", len(stacks), err, tt.stacks)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func parse(t *testing.T, text string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(text), &u.Object); err != nil {
		t.Fatal(err)
	}
	// YAML numbers decode as float64 or int64 depending on the path; render
	// emits int64, so normalise through the renderer's JSON conventions.
	return &unstructured.Unstructured{Object: normalise(u.Object).(map[string]any)}
}

func normalise(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalise(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = normalise(e)
		}
		return v
	case float64:
		if v == float64(int64(v)) {
			return int64(v)
		}
		return v
	default:
		return v
	}
}

func parseStack(t *testing.T, text string) *v1alpha1.PostgresStack {
	t.Helper()
	stack, err := render.DecodeStack([]byte(text))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return stack
}

// The cluster name and each instance set's name may be at most 46
// characters together (PGO's documented limit); the stacks past it are in
// the invalid-stack table, these at it must render.
func TestRenderAcceptsNamesAtPGOsLimit(t *testing.T) {
	tests := []struct{ name, stack, postgres string }{
		{"37 characters beside instance1", strings.Repeat("a", 37), `{}`},
		{"44 characters beside a set of 2", strings.Repeat("a", 44), `{instances: [{name: ab}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stack := parseStack(t, "apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: "+tt.stack+"}\nspec:\n  postgres: "+tt.postgres+"\n")
			if _, err := render.Render(stack); err != nil {
				t.Fatalf("Render refused %s named %s: %v", tt.postgres, tt.stack, err)
			}
		})
	}
}
