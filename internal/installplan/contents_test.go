package installplan

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	csvYAML = `apiVersion: operators.coreos.com/v1alpha1
kind: ClusterServiceVersion
metadata: {name: postgresoperator.v5.8.9}
spec: {version: 5.8.9}`
	crdYAML = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: postgresclusters.postgres-operator.crunchydata.com}
spec: {group: postgres-operator.crunchydata.com}`
	otherCRDYAML = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: pgupgrades.postgres-operator.crunchydata.com}
spec: {group: postgres-operator.crunchydata.com}`
	neighbourCSVYAML = `apiVersion: operators.coreos.com/v1alpha1
kind: ClusterServiceVersion
metadata: {name: redis.v1.0.0}`
	ref = `{"kind":"ConfigMap","name":"bundle-abc","namespace":"olm","catalogSourceName":"operatorhubio-catalog","catalogSourceNamespace":"olm","replaces":"postgresoperator.v5.8.8"}`
)

func step(resolving, kind, name, manifest string) *operatorsv1alpha1.Step {
	return &operatorsv1alpha1.Step{Resolving: resolving, Status: operatorsv1alpha1.StepStatusUnknown,
		Resource: operatorsv1alpha1.StepResource{Kind: kind, Name: name, Manifest: manifest}}
}

func plan(steps ...*operatorsv1alpha1.Step) *operatorsv1alpha1.InstallPlan {
	return &operatorsv1alpha1.InstallPlan{ObjectMeta: metav1.ObjectMeta{Name: "install-abc"},
		Status: operatorsv1alpha1.InstallPlanStatus{Plan: steps}}
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(z.Bytes()))
}

func TestRead(t *testing.T) {
	const csv = "postgresoperator.v5.8.9"
	plainBundle := &corev1.ConfigMap{Data: map[string]string{
		"postgresoperator.v5.8.9.clusterserviceversion.yaml": csvYAML,
		"postgresclusters.crd.yaml":                          crdYAML,
		"pgupgrades.crd.yaml":                                otherCRDYAML,
	}}
	gzipBundle := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"olm.contentEncoding": "gzip+base64"}},
		BinaryData: map[string][]byte{"csv.yaml": gzipped(t, csvYAML), "crd.yaml": gzipped(t, crdYAML), "pgupgrades.yaml": gzipped(t, otherCRDYAML)}}
	refSteps := plan(
		step(csv, KindCRD, "postgresclusters.postgres-operator.crunchydata.com", ref),
		step(csv, KindCRD, "pgupgrades.postgres-operator.crunchydata.com", ref),
		step(csv, KindCSV, csv, ref),
		step(csv, "ServiceAccount", "pgo", ref),
	)
	tests := []struct {
		name       string
		plan       *operatorsv1alpha1.InstallPlan
		configMap  *corev1.ConfigMap
		wantCRDs   string
		wantErr    string
		wantCMGets int
	}{
		{name: "inline, as the local catalog serves bundles",
			plan: plan(
				step(csv, KindCRD, "postgresclusters.postgres-operator.crunchydata.com", crdYAML),
				step(csv, KindCSV, csv, csvYAML),
				step("redis.v1.0.0", KindCSV, "redis.v1.0.0", neighbourCSVYAML),
			),
			wantCRDs: "postgresclusters.postgres-operator.crunchydata.com"},
		{name: "inline JSON, as OLM writes a step's manifest",
			plan: plan(
				step(csv, KindCRD, "postgresclusters.postgres-operator.crunchydata.com", `{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"postgresclusters.postgres-operator.crunchydata.com"}}`),
				step(csv, KindCSV, csv, `  {"apiVersion":"operators.coreos.com/v1alpha1","kind":"ClusterServiceVersion","metadata":{"name":"postgresoperator.v5.8.9"},"spec":{"version":"5.8.9"}}`),
			),
			wantCRDs: "postgresclusters.postgres-operator.crunchydata.com"},
		{name: "a ConfigMap OLM unpacked a bundle image into, read once", plan: refSteps, configMap: plainBundle,
			wantCRDs: "pgupgrades.postgres-operator.crunchydata.com postgresclusters.postgres-operator.crunchydata.com", wantCMGets: 1},
		{name: "the same ConfigMap gzipped", plan: refSteps, configMap: gzipBundle,
			wantCRDs: "pgupgrades.postgres-operator.crunchydata.com postgresclusters.postgres-operator.crunchydata.com", wantCMGets: 1},
		{name: "the ConfigMap is gone", plan: refSteps, wantErr: "olm/bundle-abc", wantCMGets: 1},
		{name: "the ConfigMap lacks a step's object", plan: refSteps,
			configMap: &corev1.ConfigMap{Data: map[string]string{"csv.yaml": csvYAML, "crd.yaml": crdYAML}},
			wantErr:   "has no CustomResourceDefinition pgupgrades", wantCMGets: 1},
		{name: "no step for the CSV", plan: plan(step("redis.v1.0.0", KindCSV, "redis.v1.0.0", neighbourCSVYAML)),
			wantErr: "no ClusterServiceVersion step for postgresoperator.v5.8.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gets := 0
			got, err := Read(tt.plan, csv, func(namespace, name string) (*corev1.ConfigMap, error) {
				gets++
				if namespace != "olm" || name != "bundle-abc" || tt.configMap == nil {
					return nil, errors.New("not found")
				}
				return tt.configMap, nil
			})
			if gets != tt.wantCMGets {
				t.Errorf("ConfigMap read %d times, want %d", gets, tt.wantCMGets)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.CSV.Name != csv || got.CSV.Spec.Version.String() != "5.8.9" {
				t.Errorf("CSV = %s %s", got.CSV.Name, got.CSV.Spec.Version.String())
			}
			var crds []string
			for _, name := range got.CRDNames() {
				crd, err := got.CRD(name)
				if err != nil || crd.Name != name {
					t.Errorf("CRD(%s) = %v, %v", name, crd, err)
				}
				crds = append(crds, name)
			}
			if strings.Join(crds, " ") != tt.wantCRDs {
				t.Errorf("CRDs = %v, want %s", crds, tt.wantCRDs)
			}
			if _, err := got.CRD("absent.example.com"); err == nil {
				t.Error("a CRD the plan does not carry decodes")
			}
		})
	}
}
