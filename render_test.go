package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestRenderPrintsThePostgresClusterOfEachStack(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  []string // names of the PostgresClusters printed, in order
	}{
		{
			name: "a sample file",
			args: []string{"-f", "config/samples/platform_v1alpha1_postgresstack_hippo.yaml"},
			want: []string{"hippo"},
		},
		{
			name: "several files",
			args: []string{"-f", "config/samples/platform_v1alpha1_postgresstack_hippo.yaml", "-f", "config/samples/platform_v1alpha1_postgresstack_pooler.yaml"},
			want: []string{"hippo", "pooled"},
		},
		{
			name: "several documents on stdin",
			args: []string{"-f", "-"},
			stdin: `apiVersion: platform.pgstack.dev/v1alpha1
kind: PostgresStack
metadata: {name: one, namespace: team-a}
---
# an empty document is skipped
---
apiVersion: platform.pgstack.dev/v1alpha1
kind: PostgresStack
metadata: {name: two}
spec: {postgres: {version: 17, replicas: 2}}
`,
			want: []string{"one", "two"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := runRender(tt.args, strings.NewReader(tt.stdin), &stdout, &stderr); err != nil {
				t.Fatalf("render %v: %v (stderr %q)", tt.args, err, stderr.String())
			}
			docs := strings.Split(stdout.String(), "---\n")
			if len(docs) != len(tt.want) {
				t.Fatalf("printed %d documents, want %d:\n%s", len(docs), len(tt.want), stdout.String())
			}
			for i, doc := range docs {
				var cluster struct {
					APIVersion string `json:"apiVersion"`
					Kind       string `json:"kind"`
					Metadata   struct {
						Name string `json:"name"`
					} `json:"metadata"`
					Spec struct {
						PostgresVersion int `json:"postgresVersion"`
					} `json:"spec"`
				}
				if err := yaml.Unmarshal([]byte(doc), &cluster); err != nil {
					t.Fatalf("document %d is not YAML: %v", i, err)
				}
				if cluster.APIVersion != "postgres-operator.crunchydata.com/v1beta1" || cluster.Kind != "PostgresCluster" ||
					cluster.Metadata.Name != tt.want[i] || cluster.Spec.PostgresVersion == 0 {
					t.Errorf("document %d = %+v, want PostgresCluster %s with a postgresVersion", i, cluster, tt.want[i])
				}
			}
		})
	}
}

func TestRenderEverySampleAtOnce(t *testing.T) {
	files, _ := filepath.Glob("config/samples/platform_v1alpha1_postgresstack_*.yaml")
	var args []string
	for _, f := range files {
		args = append(args, "-f", f)
	}
	var stdout, stderr bytes.Buffer
	if err := runRender(args, nil, &stdout, &stderr); err != nil {
		t.Fatalf("render every sample: %v", err)
	}
	if got := strings.Count(stdout.String(), "kind: PostgresCluster\n"); got != len(files) {
		t.Errorf("printed %d PostgresClusters for %d samples", got, len(files))
	}
}

func TestRenderRefusesBadInputAndPrintsNothing(t *testing.T) {
	stack := "apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: good}\n---\n"
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"unknown field", []string{"-f", "-"}, stack + "apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: typo}\nspec: {postgres: {replica: 2}}\n", `document 2: PostgresStack "typo": unknown field "spec.postgres.replica"`},
		{"wrong kind", []string{"-f", "-"}, "apiVersion: postgres-operator.crunchydata.com/v1beta1\nkind: PostgresCluster\nmetadata: {name: hippo}\n", "is not a PostgresStack"},
		{"renderer refuses", []string{"-f", "-"}, stack + "apiVersion: platform.pgstack.dev/v1alpha1\nkind: PostgresStack\nmetadata: {name: bad}\nspec: {postgres: {backups: {repos: [{name: repo5, volume: {}}]}}}\n", `PostgresStack "bad" is invalid: spec.postgres.backups.repos[0].name: Unsupported value: "repo5"`},
		{"no stack at all", []string{"-f", "-"}, "# nothing\n", "no PostgresStack in -"},
		{"no -f", nil, "", "no input"},
		{"a missing file", []string{"-f", "does-not-exist.yaml"}, "", "does-not-exist.yaml"},
		{"a stray argument", []string{"stack.yaml"}, "", "name files with -f"},
		{"an unknown flag", []string{"-x"}, "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runRender(tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if err == nil {
				t.Fatalf("render %v accepted bad input", tt.args)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("printed output despite the error:\n%s", stdout.String())
			}
		})
	}
}
