package pgo

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/component-base/featuregate"
)

// pgoGate is PGO v5.8.9's feature gate as its main() builds it
// (internal/feature/features.go:111-124), on Kubernetes' own parser.
func pgoGate(t *testing.T) featuregate.MutableFeatureGate {
	t.Helper()
	gate := featuregate.NewFeatureGate()
	if err := gate.Add(map[featuregate.Feature]featuregate.FeatureSpec{
		"AppendCustomQueries":     {Default: false, PreRelease: featuregate.Alpha},
		"AutoCreateUserSchema":    {Default: true, PreRelease: featuregate.Beta},
		"AutoGrowVolumes":         {Default: false, PreRelease: featuregate.Alpha},
		"BridgeIdentifiers":       {Default: false, PreRelease: featuregate.Deprecated},
		"InstanceSidecars":        {Default: true, PreRelease: featuregate.Alpha},
		"OpenTelemetryLogs":       {Default: false, PreRelease: featuregate.Alpha},
		"OpenTelemetryMetrics":    {Default: false, PreRelease: featuregate.Alpha},
		"PGBouncerSidecars":       {Default: false, PreRelease: featuregate.Alpha},
		"PGUpgradeCPUConcurrency": {Default: true, PreRelease: featuregate.Beta},
		FeatureTablespaceVolumes:  {Default: false, PreRelease: featuregate.Alpha},
		"VolumeSnapshots":         {Default: false, PreRelease: featuregate.Alpha},
	}); err != nil {
		t.Fatal(err)
	}
	return gate
}

// Each value of PGO_FEATURE_GATES is read as PGO reads it: the answer
// (TablespaceVolumes on or off, or the value refused) is checked against
// Kubernetes' parser configured with PGO's features, as PGO's main() runs it
// (this module links component-base v0.37.2, PGO 5.8.9 v0.36.2: Set and
// SetFromMap read alike in both).
func TestParseFeatureGatesReadsAsPGODoes(t *testing.T) {
	tests := []struct {
		value   string
		want    bool
		wantErr string
	}{
		{value: "", want: false},
		{value: "TablespaceVolumes=true", want: true},
		{value: "TablespaceVolumes=false", want: false},
		{value: " TablespaceVolumes = true ", want: true},
		{value: "TablespaceVolumes=1", want: true},
		{value: "TablespaceVolumes=T", want: true},
		{value: "TablespaceVolumes=TRUE", want: true},
		{value: "AutoGrowVolumes=true,TablespaceVolumes=true", want: true},
		{value: "AutoGrowVolumes=true", want: false},
		{value: "TablespaceVolumes=true,", want: true},
		{value: ",,TablespaceVolumes=true", want: true},
		{value: "TablespaceVolumes=true,TablespaceVolumes=false", want: false},
		{value: "TablespaceVolumes=false,TablespaceVolumes=true", want: true},
		{value: "AllAlpha=true", want: true},
		{value: "AllAlpha=true,TablespaceVolumes=false", want: false},
		{value: "TablespaceVolumes=false,AllAlpha=true", want: false},
		{value: "AllAlpha=false,TablespaceVolumes=true", want: true},
		{value: "AllBeta=true", want: false},
		{value: "TablespaceVolumes", wantErr: "missing bool value for TablespaceVolumes"},
		{value: "TablespaceVolumes=yes", wantErr: "invalid value of TablespaceVolumes=yes"},
		{value: "TablespaceVolumes=", wantErr: "invalid value of TablespaceVolumes="},
		{value: "TablespaceVolumes=true;AutoGrowVolumes=true", wantErr: "invalid value of TablespaceVolumes=true;AutoGrowVolumes=true"},
		{value: " ", wantErr: "missing bool value for"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			gates, err := ParseFeatureGates(tt.value)
			got := err == nil && gates.AlphaEnabled(FeatureTablespaceVolumes)

			real := pgoGate(t)
			realErr := real.Set(tt.value)
			if (err == nil) != (realErr == nil) {
				t.Fatalf("ParseFeatureGates error %v, Kubernetes' parser %v", err, realErr)
			}
			if realErr == nil && got != real.Enabled(FeatureTablespaceVolumes) {
				t.Fatalf("TablespaceVolumes %v, PGO's gate says %v", got, real.Enabled(FeatureTablespaceVolumes))
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("TablespaceVolumes %v (error %v), want %v", got, err, tt.want)
			}
		})
	}
}

// A name PGO does not know stops PGO itself; the parser here reads the
// others regardless, since another PGO release knows other names.
func TestParseFeatureGatesLeavesUnknownNamesToPGO(t *testing.T) {
	gates, err := ParseFeatureGates("SomeFutureFeature=true,TablespaceVolumes=true")
	if err != nil || !gates.AlphaEnabled(FeatureTablespaceVolumes) {
		t.Fatalf("gates %v, error %v; want TablespaceVolumes on", gates, err)
	}
}

func clusterWithTablespaces(tablespaces bool) *unstructured.Unstructured {
	set := map[string]any{"name": "instance1"}
	if tablespaces {
		set["tablespaceVolumes"] = []any{map[string]any{"name": "archive"}}
	}
	return &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{
		"instances": []any{map[string]any{"name": "other"}, set}}}}
}

// pgstack refuses tablespaces the installed PGO would ignore, judged on its
// operator container's env as the CSV declares it with the Subscription's
// config.env over it; when the env comes from elsewhere it cannot tell and
// leaves the cluster to PGO.
func TestTablespacesRefused(t *testing.T) {
	release := pgo589Env(t)
	on := env(EnvFeatureGates, "TablespaceVolumes=true")
	tests := []struct {
		name        string
		csv, sub    []corev1.EnvVar
		envFrom     bool
		tablespaces bool
		want        []string // empty: not refused
	}{
		{name: "PGO 5.8.9 as released", csv: release, tablespaces: true,
			want: []string{"PGO 5.8.9 ignores tablespaces unless its TablespaceVolumes feature gate is on, and PGO_FEATURE_GATES is unset", "operatorConfig.env", "spec.config.env"}},
		{name: "no tablespaces asked for", csv: release},
		{name: "the Subscription turns the gate on", csv: release, sub: on, tablespaces: true},
		{name: "the CSV turns it on", csv: append(env(EnvFeatureGates, "AllAlpha=true"), release...), tablespaces: true},
		{name: "the Subscription turns it off over the CSV", csv: append(on, release...), sub: env(EnvFeatureGates, "AutoGrowVolumes=true"), tablespaces: true,
			want: []string{`PGO_FEATURE_GATES is "AutoGrowVolumes=true"`}},
		{name: "a value PGO cannot read", csv: release, sub: env(EnvFeatureGates, "TablespaceVolumes=on"), tablespaces: true,
			want: []string{`cannot read PGO_FEATURE_GATES "TablespaceVolumes=on"`}},
		{name: "the value comes from a ConfigMap", csv: release, sub: fromConfigMap(EnvFeatureGates), tablespaces: true},
		{name: "envFrom may set it", csv: release, envFrom: true, tablespaces: true},
		{name: "env wins over envFrom", csv: release, sub: env(EnvFeatureGates, ""), envFrom: true, tablespaces: true,
			want: []string{"PGO_FEATURE_GATES is unset"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, refused := NewCatalog(tt.csv, tt.sub, tt.envFrom).TablespacesRefused(clusterWithTablespaces(tt.tablespaces), "5.8.9")
			if refused != (len(tt.want) > 0) {
				t.Fatalf("refused %v (%q), want %v", refused, msg, len(tt.want) > 0)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
		})
	}
}
