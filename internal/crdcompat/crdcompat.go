// Package crdcompat judges whether replacing a served CustomResourceDefinition
// with a new one (as an OLM InstallPlan would) can break what exists: objects
// stored at a version the new CRD drops, clients of a version it stops
// serving, or objects that were valid and no longer are.
//
// The rules are a named subset of those operator-controller runs for OLM v1
// through sigs.k8s.io/crdify (not served by the module proxy here, so written
// after its documented rules, with its rule names): only a change one of them
// classifies is reported; an unclassified change (a description, a new
// optional field) is not.
package crdcompat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// Rules, named as crdify names them.
const (
	// RuleStoredVersionRemoval: a version listed in the served CRD's
	// status.storedVersions is missing from the new CRD; objects stored at
	// it could no longer be read (the API server refuses such an update).
	RuleStoredVersionRemoval = "storedVersionRemoval"
	// RuleServedVersionRemoval: a version served now is not served by the
	// new CRD; every client and manifest using it breaks.
	RuleServedVersionRemoval = "servedVersionRemoval"
	// RuleRequired: a field is newly required; objects without it fail
	// validation on their next update.
	RuleRequired = "required"
	// RuleEnum: an enum was added, or lost values.
	RuleEnum = "enum"
	// RuleMinimum, RuleMaximum, RuleMinLength, RuleMaxLength, RuleMinItems,
	// RuleMaxItems: a bound was added or tightened.
	RuleMinimum   = "minimum"
	RuleMaximum   = "maximum"
	RuleMinLength = "minLength"
	RuleMaxLength = "maxLength"
	RuleMinItems  = "minItems"
	RuleMaxItems  = "maxItems"
)

// Violation is one breaking change a rule found.
type Violation struct {
	// CRD is the CRD's name, such as postgresclusters.postgres-operator.crunchydata.com.
	CRD string
	// Version is the CRD version whose schema changed; empty for the
	// version rules.
	Version string
	Rule    string
	// Path is the field, as ^.spec.instances[*].replicas; empty for the
	// version rules.
	Path   string
	Detail string
}

func (v Violation) String() string {
	where := v.CRD
	if v.Version != "" {
		where += " " + v.Version
	}
	if v.Path != "" {
		where += " " + v.Path
	}
	return fmt.Sprintf("%s: rule %s: %s", where, v.Rule, v.Detail)
}

// Check compares the CRD served now with the one that would replace it.
// Violations come in a stable order: version rules first, then by version
// and path.
func Check(served, next *apiextensionsv1.CustomResourceDefinition) []Violation {
	var out []Violation
	add := func(v Violation) {
		v.CRD = served.Name
		out = append(out, v)
	}
	nextVersions := map[string]*apiextensionsv1.CustomResourceDefinitionVersion{}
	for i := range next.Spec.Versions {
		nextVersions[next.Spec.Versions[i].Name] = &next.Spec.Versions[i]
	}
	for _, stored := range served.Status.StoredVersions {
		if nextVersions[stored] == nil {
			add(Violation{Rule: RuleStoredVersionRemoval,
				Detail: fmt.Sprintf("version %s holds stored objects and the new CRD drops it", stored)})
		}
	}
	for _, v := range served.Spec.Versions {
		if !v.Served {
			continue
		}
		if n := nextVersions[v.Name]; n == nil || !n.Served {
			add(Violation{Rule: RuleServedVersionRemoval,
				Detail: fmt.Sprintf("version %s is served now and the new CRD no longer serves it", v.Name)})
		}
	}
	for _, v := range served.Spec.Versions {
		n := nextVersions[v.Name]
		if n == nil || v.Schema == nil || n.Schema == nil {
			continue
		}
		for _, f := range compare(v.Schema.OpenAPIV3Schema, n.Schema.OpenAPIV3Schema, "^") {
			f.Version = v.Name
			add(f)
		}
	}
	return out
}

// compare walks two schemas of the same field side by side.
func compare(old, next *apiextensionsv1.JSONSchemaProps, path string) []Violation {
	if old == nil || next == nil {
		return nil
	}
	var out []Violation
	add := func(rule, format string, args ...any) {
		out = append(out, Violation{Rule: rule, Path: path, Detail: fmt.Sprintf(format, args...)})
	}

	wasRequired := map[string]bool{}
	for _, r := range old.Required {
		wasRequired[r] = true
	}
	for _, r := range next.Required {
		if !wasRequired[r] {
			out = append(out, Violation{Rule: RuleRequired, Path: path + "." + r, Detail: "newly required"})
		}
	}

	if len(next.Enum) > 0 {
		if len(old.Enum) == 0 {
			add(RuleEnum, "an enum is added: only %s allowed now", enumList(next.Enum))
		} else if removed := enumMinus(old.Enum, next.Enum); len(removed) > 0 {
			add(RuleEnum, "values %s are no longer allowed", strings.Join(removed, ", "))
		}
	}

	for _, b := range []struct{ rule, tight string }{
		{RuleMinimum, tighter(old.Minimum, next.Minimum, true)},
		{RuleMaximum, tighter(old.Maximum, next.Maximum, false)},
		{RuleMinLength, tighter(old.MinLength, next.MinLength, true)},
		{RuleMaxLength, tighter(old.MaxLength, next.MaxLength, false)},
		{RuleMinItems, tighter(old.MinItems, next.MinItems, true)},
		{RuleMaxItems, tighter(old.MaxItems, next.MaxItems, false)},
	} {
		if b.tight != "" {
			add(b.rule, "%s %s", b.rule, b.tight)
		}
	}

	names := make([]string, 0, len(old.Properties))
	for name := range old.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n, ok := next.Properties[name]
		if !ok {
			continue
		}
		o := old.Properties[name]
		out = append(out, compare(&o, &n, path+"."+name)...)
	}
	if old.Items != nil && next.Items != nil {
		out = append(out, compare(old.Items.Schema, next.Items.Schema, path+"[*]")...)
	}
	if old.AdditionalProperties != nil && next.AdditionalProperties != nil {
		out = append(out, compare(old.AdditionalProperties.Schema, next.AdditionalProperties.Schema, path+"[*]")...)
	}
	return out
}

// tighter says how a bound became tighter ("2 is added", "tightened from 1
// to 2"), or "" when it did not: a bound set where there was none, a
// lower bound raised, an upper bound lowered.
func tighter[T int64 | float64](old, next *T, lower bool) string {
	switch {
	case next == nil:
		return ""
	case old == nil:
		return fmt.Sprintf("%v is added", *next)
	case lower && *next > *old, !lower && *next < *old:
		return fmt.Sprintf("tightened from %v to %v", *old, *next)
	}
	return ""
}

// enumMinus lists the values of old that next lacks, compared as compact JSON.
func enumMinus(old, next []apiextensionsv1.JSON) []string {
	kept := map[string]bool{}
	for _, v := range next {
		kept[compact(v.Raw)] = true
	}
	var removed []string
	for _, v := range old {
		if c := compact(v.Raw); !kept[c] {
			removed = append(removed, c)
		}
	}
	return removed
}

func enumList(values []apiextensionsv1.JSON) string {
	list := make([]string, len(values))
	for i, v := range values {
		list[i] = compact(v.Raw)
	}
	return strings.Join(list, ", ")
}

func compact(raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
