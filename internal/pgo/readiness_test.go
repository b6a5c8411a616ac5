package pgo

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func cluster(t *testing.T, text string) *unstructured.Unstructured {
	t.Helper()
	// Through JSON, as the API server's objects arrive: whole numbers are int64.
	data, err := yaml.YAMLToJSON([]byte("apiVersion: postgres-operator.crunchydata.com/v1beta1\nkind: PostgresCluster\n" + text))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return u
}

const readyHippo = `
metadata: {generation: 2}
spec:
  instances: [{name: instance1, replicas: 2}]
  backups: {pgbackrest: {repos: [{name: repo1}]}}
status:
  observedGeneration: 2
  instances: [{name: instance1, replicas: 2, readyReplicas: 2, updatedReplicas: 2}]
  conditions:
  - {type: PGBackRestReplicaRepoReady, status: "True"}
  - {type: PGBackRestReplicaCreate, status: "True"}
`

func TestClusterReadiness(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		wantReady  bool
		wantReason string
		wantInMsg  string
	}{
		{name: "ready with backups", text: readyHippo, wantReady: true, wantReason: ReasonReady, wantInMsg: "2 of 2"},
		{name: "generation not observed", text: strings.Replace(readyHippo, "observedGeneration: 2", "observedGeneration: 1", 1), wantReason: ReasonNotObserved, wantInMsg: "generation 2"},
		{name: "no status yet", text: "metadata: {generation: 1}\nspec: {instances: [{name: instance1}]}", wantReason: ReasonNotObserved},
		{name: "a replica not ready", text: strings.Replace(readyHippo, "readyReplicas: 2", "readyReplicas: 1", 1), wantReason: ReasonInstancesNotReady, wantInMsg: "1 of 2"},
		{name: "a replica not updated", text: strings.Replace(readyHippo, "updatedReplicas: 2", "updatedReplicas: 1", 1), wantReason: ReasonInstancesNotReady},
		{name: "spec asks for more replicas than status has", text: strings.Replace(readyHippo, "replicas: 2}]\n  backups", "replicas: 3}]\n  backups", 1), wantReason: ReasonInstancesNotReady},
		{name: "replica creation not done", text: strings.Replace(readyHippo, "{type: PGBackRestReplicaCreate, status: \"True\"}", "{type: PGBackRestReplicaCreate, status: \"False\", reason: Running}", 1), wantReason: ReasonBackupsNotReady, wantInMsg: "PGBackRestReplicaCreate is False (Running)"},
		{name: "no backups: conditions not needed", text: `
metadata: {generation: 1}
spec: {instances: [{name: a}]}
status: {observedGeneration: 1, instances: [{name: a, replicas: 1, readyReplicas: 1, updatedReplicas: 1}]}`, wantReady: true, wantReason: ReasonReady},
		{name: "pooler not available", text: strings.Replace(readyHippo, "backups:", "proxy: {pgBouncer: {replicas: 1}}\n  backups:", 1), wantReason: ReasonPoolerNotReady, wantInMsg: "not reported yet"},
		{name: "pooler available", text: strings.Replace(strings.Replace(readyHippo, "backups:", "proxy: {pgBouncer: {}}\n  backups:", 1), "conditions:", "conditions:\n  - {type: ProxyAvailable, status: \"True\"}", 1), wantReady: true, wantReason: ReasonReady},
		{name: "paused", text: strings.Replace(readyHippo, "spec:", "spec:\n  paused: true", 1), wantReason: ReasonPaused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClusterReadiness(cluster(t, tt.text))
			if got.Ready != tt.wantReady || got.Reason != tt.wantReason {
				t.Fatalf("ClusterReadiness = %v/%s (%s), want %v/%s", got.Ready, got.Reason, got.Message, tt.wantReady, tt.wantReason)
			}
			if !strings.Contains(got.Message, tt.wantInMsg) {
				t.Errorf("message %q does not mention %q", got.Message, tt.wantInMsg)
			}
		})
	}
}
