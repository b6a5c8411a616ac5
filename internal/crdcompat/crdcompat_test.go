package crdcompat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/test/testenv"
)

// widgets is a small CRD: v1 served and stored, v1beta1 served, with a
// field of each kind the rules look at.
func widgets() *apiextensionsv1.CustomResourceDefinition {
	schema := func() *apiextensionsv1.CustomResourceValidation {
		min, max := 1.0, 10.0
		maxLen := int64(63)
		return &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
			Type: "object",
			Properties: map[string]apiextensionsv1.JSONSchemaProps{
				"spec": {
					Type:     "object",
					Required: []string{"size"},
					Properties: map[string]apiextensionsv1.JSONSchemaProps{
						"size":     {Type: "integer", Minimum: &min, Maximum: &max},
						"mode":     {Type: "string", Enum: []apiextensionsv1.JSON{{Raw: []byte(`"Fast"`)}, {Raw: []byte(`"Safe"`)}}},
						"name":     {Type: "string", MaxLength: &maxLen},
						"comment":  {Type: "string"},
						"replicas": {Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"zone": {Type: "string"}}}}},
					},
				},
			},
		}}
	}
	return &apiextensionsv1.CustomResourceDefinition{
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, Schema: schema()},
				{Name: "v1beta1", Served: true, Schema: schema()},
			},
		},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{StoredVersions: []string{"v1beta1", "v1"}},
	}
}

func spec(crd *apiextensionsv1.CustomResourceDefinition, version int) *apiextensionsv1.JSONSchemaProps {
	s := crd.Spec.Versions[version].Schema.OpenAPIV3Schema.Properties["spec"]
	return &s
}

func setSpec(crd *apiextensionsv1.CustomResourceDefinition, version int, s *apiextensionsv1.JSONSchemaProps) {
	crd.Spec.Versions[version].Schema.OpenAPIV3Schema.Properties["spec"] = *s
}

// editSpec changes v1's spec schema.
func editSpec(edit func(s *apiextensionsv1.JSONSchemaProps)) func(*apiextensionsv1.CustomResourceDefinition) {
	return func(crd *apiextensionsv1.CustomResourceDefinition) {
		s := spec(crd, 0)
		edit(s)
		setSpec(crd, 0, s)
	}
}

func field(s *apiextensionsv1.JSONSchemaProps, name string, edit func(*apiextensionsv1.JSONSchemaProps)) {
	f := s.Properties[name]
	edit(&f)
	s.Properties[name] = f
}

func f64(v float64) *float64 { return &v }
func i64(v int64) *int64     { return &v }

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		edit func(*apiextensionsv1.CustomResourceDefinition)
		// want lists each violation as "rule path" (path empty for version rules).
		want []string
	}{
		{name: "the same CRD", edit: func(*apiextensionsv1.CustomResourceDefinition) {}},
		{name: "only descriptions change", edit: editSpec(func(s *apiextensionsv1.JSONSchemaProps) {
			s.Description = "new words"
			field(s, "size", func(f *apiextensionsv1.JSONSchemaProps) { f.Description = "how big" })
		})},
		{name: "a new optional field", edit: editSpec(func(s *apiextensionsv1.JSONSchemaProps) {
			s.Properties["colour"] = apiextensionsv1.JSONSchemaProps{Type: "string"}
		})},
		{name: "loosened bounds, enum values added, a field no longer required", edit: editSpec(func(s *apiextensionsv1.JSONSchemaProps) {
			s.Required = nil
			field(s, "size", func(f *apiextensionsv1.JSONSchemaProps) { f.Minimum, f.Maximum = f64(0), nil })
			field(s, "mode", func(f *apiextensionsv1.JSONSchemaProps) {
				f.Enum = append(f.Enum, apiextensionsv1.JSON{Raw: []byte(`"Slow"`)})
			})
			field(s, "name", func(f *apiextensionsv1.JSONSchemaProps) { f.MaxLength = i64(253) })
		})},
		{name: "a stored version dropped (and with it a served one)", edit: func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Spec.Versions = crd.Spec.Versions[:1]
		}, want: []string{"storedVersionRemoval ", "servedVersionRemoval "}},
		{name: "a served version no longer served", edit: func(crd *apiextensionsv1.CustomResourceDefinition) {
			crd.Spec.Versions[1].Served = false
		}, want: []string{"servedVersionRemoval "}},
		{name: "a field newly required", edit: editSpec(func(s *apiextensionsv1.JSONSchemaProps) {
			s.Required = append(s.Required, "mode")
		}), want: []string{"required ^.spec.mode"}},
		{name: "a field newly required inside a list", edit: editSpec(func(s *apiextensionsv1.JSONSchemaProps) {
			field(s, "replicas", func(f *apiextensionsv1.JSONSchemaProps) { f.Items.Schema.Required = []string{"zone"} })
		}), want: []string{"required ^.spec.replicas[*].zone"}},
		{name: "an enum value removed", edit: editSpec(func(s *apiextensionsv1.JSONSchemaProps) {
			field(s, "mode", func(f *apiextensionsv1.JSONSchemaProps) { f.Enum = f.Enum[:1] })
		}), want: []string{"enum ^.spec.mode"}},
		{name: "an enum added", edit: editSpec(func(s *apiextensionsv1.JSONSchemaProps) {
			field(s, "comment", func(f *apiextensionsv1.JSONSchemaProps) { f.Enum = []apiextensionsv1.JSON{{Raw: []byte(`"a"`)}} })
		}), want: []string{"enum ^.spec.comment"}},
		{name: "a range tightened on both ends", edit: editSpec(func(s *apiextensionsv1.JSONSchemaProps) {
			field(s, "size", func(f *apiextensionsv1.JSONSchemaProps) { f.Minimum, f.Maximum = f64(2), f64(9) })
		}), want: []string{"minimum ^.spec.size", "maximum ^.spec.size"}},
		{name: "lengths and items bounded", edit: editSpec(func(s *apiextensionsv1.JSONSchemaProps) {
			field(s, "name", func(f *apiextensionsv1.JSONSchemaProps) { f.MaxLength, f.MinLength = i64(10), i64(1) })
			field(s, "replicas", func(f *apiextensionsv1.JSONSchemaProps) { f.MaxItems, f.MinItems = i64(3), i64(1) })
		}), want: []string{"minLength ^.spec.name", "maxLength ^.spec.name", "minItems ^.spec.replicas", "maxItems ^.spec.replicas"}},
		{name: "a removed field is not a rule here", edit: editSpec(func(s *apiextensionsv1.JSONSchemaProps) {
			delete(s.Properties, "comment")
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			served := widgets()
			served.Name = "widgets.example.com"
			next := widgets()
			tc.edit(next)
			var got []string
			for _, v := range Check(served, next) {
				if v.CRD != "widgets.example.com" || v.Detail == "" {
					t.Errorf("violation without its CRD or detail: %+v", v)
				}
				got = append(got, v.Rule+" "+v.Path)
			}
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("violations = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestViolationNamesTheCRDVersionFieldAndRule(t *testing.T) {
	v := Violation{CRD: "widgets.example.com", Version: "v1", Rule: RuleRequired, Path: "^.spec.mode", Detail: "newly required"}
	if got, want := v.String(), "widgets.example.com v1 ^.spec.mode: rule required: newly required"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// PGO's real PostgresCluster CRD, as the served one (stored at v1beta1).
func postgresClusterCRD(t *testing.T) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	path := filepath.Join(testenv.PGODir(), "v5.8.9", "crds", "postgres-operator.crunchydata.com_postgresclusters.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("PGO's PostgresCluster CRD: %v (set %s)", err, testenv.PGODirEnv)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.Unmarshal(data, crd); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	crd.Status.StoredVersions = []string{"v1beta1"}
	return crd
}

// PGO's 5.8.x CRDs differ only in descriptions: PGO's real CRD against
// itself passes, and the same CRD altered on purpose is refused by name.
func TestPGOsRealCRD(t *testing.T) {
	served := postgresClusterCRD(t)
	if got := Check(served, postgresClusterCRD(t)); len(got) != 0 {
		t.Fatalf("PGO's PostgresCluster CRD against itself: %v", got)
	}

	next := postgresClusterCRD(t)
	s := spec(next, 0)
	s.Required = append(s.Required, "openshift")
	setSpec(next, 0, s)
	got := Check(served, next)
	if len(got) != 1 || got[0].Rule != RuleRequired || got[0].Path != "^.spec.openshift" || got[0].Version != "v1beta1" {
		t.Fatalf("a newly required spec.openshift: %v", got)
	}

	next = postgresClusterCRD(t)
	next.Spec.Versions[0].Name = "v1"
	var rules []string
	for _, v := range Check(served, next) {
		rules = append(rules, v.Rule)
	}
	if strings.Join(rules, ",") != "storedVersionRemoval,servedVersionRemoval" {
		t.Fatalf("v1beta1 renamed v1: rules %v", rules)
	}
}
