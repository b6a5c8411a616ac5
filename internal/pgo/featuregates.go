package pgo

import (
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// EnvFeatureGates is the variable PGO reads its feature gates from when it
// starts (PGO v5.8.9 cmd/postgres-operator/main.go:174), such as
// "TablespaceVolumes=true,AutoGrowVolumes=true".
const EnvFeatureGates = "PGO_FEATURE_GATES"

// FeatureTablespaceVolumes is the gate without which PGO ignores an
// instance set's tablespaceVolumes: it creates no volume and mounts none
// (PGO v5.8.9 internal/controller/postgrescluster/postgres.go:871). It is
// an alpha feature, off unless PGO_FEATURE_GATES turns it on
// (internal/feature/features.go:117).
const FeatureTablespaceVolumes = "TablespaceVolumes"

// allAlpha turns on every alpha feature not set by name.
const allAlpha = "AllAlpha"

// FeatureGates are the features PGO_FEATURE_GATES sets, by name.
type FeatureGates map[string]bool

// ParseFeatureGates reads PGO_FEATURE_GATES as PGO does, through
// Kubernetes' feature gate parser (k8s.io/component-base/featuregate
// SetWithLogger): comma-separated name=value pairs, names and values
// trimmed, empty items skipped, values as strconv.ParseBool reads them,
// the last of a repeated name winning. A value PGO cannot parse stops PGO
// when it starts, so it is an error here. Names are not checked against
// one PGO release's list: an unknown name stops that PGO too, and says so
// itself.
func ParseFeatureGates(value string) (FeatureGates, error) {
	gates := FeatureGates{}
	for _, item := range strings.Split(value, ",") {
		if item == "" {
			continue
		}
		name, v, found := strings.Cut(item, "=")
		name = strings.TrimSpace(name)
		if !found {
			return nil, fmt.Errorf("missing bool value for %s", name)
		}
		v = strings.TrimSpace(v)
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid value of %s=%s, err: %v", name, v, err)
		}
		gates[name] = on
	}
	return gates, nil
}

// AlphaEnabled reports whether an alpha feature (off by default) is on: set
// by name, else by AllAlpha. A name wins over AllAlpha whichever comes
// first, as in Kubernetes' parser.
func (g FeatureGates) AlphaEnabled(feature string) bool {
	if on, set := g[feature]; set {
		return on
	}
	return g[allAlpha]
}

// FeatureGatesEnv is PGO_FEATURE_GATES as the installed PGO's process has it;
// known is false when pgstack cannot tell (its value, or possibly the
// variable itself, comes from a ConfigMap, Secret or field).
func (c Catalog) FeatureGatesEnv() (value string, known bool) {
	if c.valueFrom[EnvFeatureGates] {
		return "", false
	}
	// A variable named in env wins over envFrom's, as in every container.
	if v, set := c.env[EnvFeatureGates]; set {
		return v, true
	}
	return "", !c.opaque
}

// UsesTablespaces reports whether a PostgresCluster (such as the one
// pgstack renders, overrides merged) asks for tablespace volumes.
func UsesTablespaces(pc *unstructured.Unstructured) bool {
	sets, _, _ := unstructured.NestedSlice(pc.Object, "spec", "instances")
	for _, item := range sets {
		set, ok := item.(map[string]any)
		if !ok {
			continue
		}
		if volumes, ok := set["tablespaceVolumes"].([]any); ok && len(volumes) > 0 {
			return true
		}
	}
	return false
}

// TablespacesRefused reports a PostgresCluster whose tablespace volumes the
// installed PGO would ignore, with a message for a person; pgoVersion names
// the PGO in it. It is false when the cluster asks for none, the gate is
// on, or the catalog cannot tell.
func (c Catalog) TablespacesRefused(pc *unstructured.Unstructured, pgoVersion string) (string, bool) {
	if !UsesTablespaces(pc) {
		return "", false
	}
	value, known := c.FeatureGatesEnv()
	if !known {
		return "", false
	}
	pgo := "PGO"
	if pgoVersion != "" {
		pgo += " " + pgoVersion
	}
	fix := fmt.Sprintf("add %s=true to %s in PGO's environment (the PostgresRolloutPolicy's operatorConfig.env, else the Subscription's spec.config.env), or remove postgres.instances[].tablespaces", FeatureTablespaceVolumes, EnvFeatureGates)
	gates, err := ParseFeatureGates(value)
	switch {
	case err != nil:
		return fmt.Sprintf("%s cannot read %s %q (%v), so its %s feature gate is off and it would ignore the tablespaces: %s", pgo, EnvFeatureGates, value, err, FeatureTablespaceVolumes, fix), true
	case gates.AlphaEnabled(FeatureTablespaceVolumes):
		return "", false
	case value == "":
		return fmt.Sprintf("%s ignores tablespaces unless its %s feature gate is on, and %s is unset: %s", pgo, FeatureTablespaceVolumes, EnvFeatureGates, fix), true
	default:
		return fmt.Sprintf("%s ignores tablespaces unless its %s feature gate is on, and %s is %q: %s", pgo, FeatureTablespaceVolumes, EnvFeatureGates, value, fix), true
	}
}
