// Package catalog writes the file-based catalogs (FBC) that `opm serve`
// serves to the local cluster's OLM: package postgresql on channel v5 with a
// replaces chain of CSVs pgstack writes and PGO's CRDs, plus small
// neighbour operators for scenarios that need a second package.
//
// Bundles carry their manifests inline (olm.bundle.object properties, no
// image), so OLM installs them without bundle-unpack Jobs.
package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/test/testenv"
)

// PGO's package as OperatorHub lists it.
const (
	PGOPackage   = "postgresql"
	PGOChannel   = "v5"
	PGOCSVPrefix = "postgresoperator"
)

// PGOVersions is the replaces chain the local catalog serves by default.
var PGOVersions = []string{"5.8.7", "5.8.8", "5.8.9"}

// Package is one operator package in the catalog: a single channel whose
// versions each replace the one before.
type Package struct {
	Name    string
	Channel string
	// CSVPrefix names the CSVs: CSVPrefix.vX.Y.Z.
	CSVPrefix   string
	DisplayName string
	// Versions, oldest first.
	Versions []string
	// Deployment is the operator Deployment's name (and its service account's).
	Deployment string
	// Image is the operator image; %s takes the version. kwok runs no
	// containers, so it is never pulled.
	Image        string
	InstallModes []operatorsv1alpha1.InstallMode
	// CRDs are owned by every version and shipped in every bundle.
	CRDs []*apiextensionsv1.CustomResourceDefinition
	// CRDsAt, when it lists a version, are the CRDs that version ships
	// instead (a test's CRD altered on purpose).
	CRDsAt map[string][]*apiextensionsv1.CustomResourceDefinition
	// NodeSelector, when set, goes into the operator pod: a selector no node
	// matches keeps the Deployment from ever becoming Available.
	NodeSelector map[string]string
	// Releases are what each version really ships to run (its Deployment
	// and ClusterRole), by version. A version without one uses the newest
	// earlier release's; a package without any gets a generic Deployment.
	Releases map[string]Release
	// Manifests, when set, are a bundle directory's objects (its CSV
	// among them), served as they are for the package's single version
	// instead of a CSV this package writes.
	Manifests []*unstructured.Unstructured
}

// FromBundle is a package serving an operator bundle directory as it is
// (manifests/ and metadata/annotations.yaml, as `make bundle` writes
// pgstack's): its package and default channel from the annotations, its one
// version from the CSV.
func FromBundle(dir string) (Package, error) {
	annotations := struct {
		Annotations map[string]string `json:"annotations"`
	}{}
	data, err := os.ReadFile(filepath.Join(dir, "metadata", "annotations.yaml"))
	if err != nil {
		return Package{}, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if err := yaml.Unmarshal(data, &annotations); err != nil {
		return Package{}, fmt.Errorf("bundle %s: annotations: %w", dir, err)
	}
	p := Package{
		Name:    annotations.Annotations["operators.operatorframework.io.bundle.package.v1"],
		Channel: annotations.Annotations["operators.operatorframework.io.bundle.channel.default.v1"],
	}
	files, err := filepath.Glob(filepath.Join(dir, "manifests", "*.yaml"))
	if err != nil {
		return Package{}, err
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return Package{}, fmt.Errorf("bundle %s: %w", dir, err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &obj.Object); err != nil {
			return Package{}, fmt.Errorf("bundle %s: %s: %w", dir, f, err)
		}
		switch obj.GetKind() {
		case operatorsv1alpha1.ClusterServiceVersionKind:
			v, _, _ := unstructured.NestedString(obj.Object, "spec", "version")
			name := obj.GetName()
			p.Versions = []string{v}
			p.CSVPrefix = strings.TrimSuffix(name, ".v"+v)
		case "CustomResourceDefinition":
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.Unmarshal(data, crd); err != nil {
				return Package{}, fmt.Errorf("bundle %s: %s: %w", dir, f, err)
			}
			p.CRDs = append(p.CRDs, crd)
		}
		p.Manifests = append(p.Manifests, obj)
	}
	if p.Name == "" || p.Channel == "" || len(p.Versions) != 1 {
		return Package{}, fmt.Errorf("bundle %s: want a package name, a default channel and one CSV", dir)
	}
	return p, nil
}

// Release is what one operator release ships to run the operator: its
// Deployment's spec (with every environment variable, such as PGO's
// RELATED_IMAGE_* defaults) and its ClusterRole's rules, which become the
// CSV's clusterPermissions.
type Release struct {
	Version    string
	Deployment appsv1.DeploymentSpec
	Rules      []rbacv1.PolicyRule
}

// operatorEnv is the operator container's env in a release.
func (r *Release) operatorEnv() *[]corev1.EnvVar {
	return &r.Deployment.Template.Spec.Containers[0].Env
}

// Env is the value the release's operator container sets for name.
func (r Release) Env(name string) (string, bool) {
	for _, e := range *r.operatorEnv() {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// Retagged is a copy of r whose every default image (RELATED_IMAGE_*) gets
// suffix: a release shipping new images, as every PGO 5.8.x release did.
func (r Release) Retagged(suffix string) Release {
	out := Release{Version: r.Version, Deployment: *r.Deployment.DeepCopy(), Rules: r.Rules}
	env := out.operatorEnv()
	for i, e := range *env {
		if strings.HasPrefix(e.Name, "RELATED_IMAGE_") && e.Value != "" {
			(*env)[i].Value = e.Value + suffix
		}
	}
	return out
}

// Without is a copy of r that no longer sets the variable name.
func (r Release) Without(name string) Release {
	out := Release{Version: r.Version, Deployment: *r.Deployment.DeepCopy(), Rules: r.Rules}
	env := out.operatorEnv()
	kept := (*env)[:0]
	for _, e := range *env {
		if e.Name != name {
			kept = append(kept, e)
		}
	}
	*env = kept
	return out
}

// WithVersion is a copy of p that serves version v running release r and
// shipping crds (p's own when nil) at the head of its channel; a v already
// at the head is served anew, as a catalog fixing a release would.
func (p Package) WithVersion(v string, r Release, crds []*apiextensionsv1.CustomResourceDefinition) Package {
	releases := map[string]Release{}
	for k, rel := range p.Releases {
		releases[k] = rel
	}
	releases[v] = r
	p.Releases = releases
	crdsAt := map[string][]*apiextensionsv1.CustomResourceDefinition{}
	for k, c := range p.CRDsAt {
		if k != v {
			crdsAt[k] = c
		}
	}
	if crds != nil {
		crdsAt[v] = crds
	}
	p.CRDsAt = crdsAt
	if p.Versions[len(p.Versions)-1] != v {
		p.Versions = append(append([]string(nil), p.Versions...), v)
	}
	return p
}

// NextVersion is the head's version with its patch raised.
func (p Package) NextVersion() (string, error) {
	v, err := semver.Parse(p.Versions[len(p.Versions)-1])
	if err != nil {
		return "", err
	}
	v.Patch++
	return v.String(), nil
}

// pgoInstallModes are the install modes PGO's CSV declares.
var pgoInstallModes = []operatorsv1alpha1.InstallMode{
	{Type: operatorsv1alpha1.InstallModeTypeOwnNamespace, Supported: true},
	{Type: operatorsv1alpha1.InstallModeTypeSingleNamespace, Supported: true},
	{Type: operatorsv1alpha1.InstallModeTypeMultiNamespace, Supported: false},
	{Type: operatorsv1alpha1.InstallModeTypeAllNamespaces, Supported: true},
}

// PGO is the postgresql package with the given versions (PGOVersions when
// none), owning the CRDs testenv.FindPGOSchema finds: PGO's real ones
// (PostgresCluster, PGUpgrade, PGAdmin, CrunchyBridgeCluster), or
// pgstack's fallback where the run opted into it. Each
// version's CSV runs the Deployment and carries the ClusterRole of PGO's
// release of that version, read from testenv.PGODir() (a version with no
// release there, such as a 5.9.0 a test publishes, uses the newest earlier
// release's).
func PGO(versions ...string) (Package, error) {
	if len(versions) == 0 {
		versions = PGOVersions
	}
	schema, err := testenv.FindPGOSchema()
	if err != nil {
		return Package{}, err
	}
	crds, err := ReadCRDs(schema.Dir)
	if err != nil {
		return Package{}, fmt.Errorf("PGO's CRDs from %s: %w", schema.Dir, err)
	}
	releases, err := ReadPGOReleases(testenv.PGODir())
	if err != nil {
		return Package{}, err
	}
	return Package{
		Name:         PGOPackage,
		Channel:      PGOChannel,
		CSVPrefix:    PGOCSVPrefix,
		DisplayName:  "Crunchy Postgres for Kubernetes",
		Versions:     append([]string(nil), versions...),
		Deployment:   "pgo",
		Image:        "registry.developers.crunchydata.com/crunchydata/postgres-operator:ubi9-%s-0",
		InstallModes: pgoInstallModes,
		CRDs:         crds,
		Releases:     releases,
	}, nil
}

// ReadPGOReleases reads every v<version>/release folder under dir: PGO's
// manager.yaml (its Deployment) and role.yaml (its ClusterRole), as each
// release ships them.
func ReadPGOReleases(dir string) (map[string]Release, error) {
	folders, err := filepath.Glob(filepath.Join(dir, "v*", "release"))
	if err != nil {
		return nil, fmt.Errorf("list PGO's releases in %s: %w", dir, err)
	}
	if len(folders) == 0 {
		return nil, fmt.Errorf("no PGO release in %s (expected v<version>/release/manager.yaml and role.yaml; set %s)", dir, testenv.PGODirEnv)
	}
	releases := map[string]Release{}
	for _, folder := range folders {
		v := strings.TrimPrefix(filepath.Base(filepath.Dir(folder)), "v")
		r := Release{Version: v}
		deployment := &appsv1.Deployment{}
		if err := readYAML(filepath.Join(folder, "manager.yaml"), "Deployment", deployment); err != nil {
			return nil, err
		}
		role := &rbacv1.ClusterRole{}
		if err := readYAML(filepath.Join(folder, "role.yaml"), "ClusterRole", role); err != nil {
			return nil, err
		}
		r.Deployment, r.Rules = deployment.Spec, role.Rules
		releases[v] = r
	}
	return releases, nil
}

// readYAML decodes the first document of kind in a YAML file into obj.
func readYAML(path, kind string, obj any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		meta := metav1.TypeMeta{}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		if meta.Kind == kind {
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				return fmt.Errorf("parse the %s in %s: %w", kind, path, err)
			}
			return nil
		}
	}
	return fmt.Errorf("no %s in %s", kind, path)
}

// ReleaseFor is the Release version v runs: its own, else the newest earlier one.
func (p Package) ReleaseFor(v string) (Release, bool) {
	if r, ok := p.Releases[v]; ok {
		return r, true
	}
	want, err := semver.Parse(v)
	if err != nil {
		return Release{}, false
	}
	var best Release
	var bestV semver.Version
	found := false
	for rv, r := range p.Releases {
		sv, err := semver.Parse(rv)
		if err != nil || sv.GT(want) {
			continue
		}
		if !found || sv.GT(bestV) {
			best, bestV, found = r, sv, true
		}
	}
	return best, found
}

// Neighbour is a small operator package owning one CRD, kind <Kind> in
// group <name>.example.com, for scenarios that need a second operator
// beside PGO. It supports OwnNamespace, SingleNamespace and AllNamespaces.
func Neighbour(name, kind string, versions ...string) Package {
	if len(versions) == 0 {
		versions = []string{"1.0.0"}
	}
	group := name + ".example.com"
	plural := strings.ToLower(kind) + "s"
	crd := &apiextensionsv1.CustomResourceDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: plural, Singular: strings.ToLower(kind), Kind: kind, ListKind: kind + "List",
			},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr(true),
				}},
			}},
		},
	}
	return Package{
		Name:         name,
		Channel:      "stable",
		CSVPrefix:    name,
		DisplayName:  name,
		Versions:     versions,
		Deployment:   name + "-operator",
		Image:        "example.com/" + name + ":%s",
		InstallModes: pgoInstallModes,
		CRDs:         []*apiextensionsv1.CustomResourceDefinition{crd},
	}
}

// ReadCRDs reads every CustomResourceDefinition in the YAML files of dir.
func ReadCRDs(dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(files)
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		for _, doc := range bytes.Split(data, []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.Unmarshal(doc, crd); err != nil {
				return nil, fmt.Errorf("parse %s: %w", f, err)
			}
			if crd.Kind != "CustomResourceDefinition" {
				continue
			}
			crds = append(crds, crd)
		}
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("no CustomResourceDefinition in %s", dir)
	}
	return crds, nil
}

// CSVName is the CSV name of version v, e.g. postgresoperator.v5.8.9.
func (p Package) CSVName(v string) string { return p.CSVPrefix + ".v" + v }

// Head is the newest version's CSV name: what a Subscription on the channel installs.
func (p Package) Head() string { return p.CSVName(p.Versions[len(p.Versions)-1]) }

// CSV is the ClusterServiceVersion of version v; replaces names the CSV it
// upgrades (empty for the first).
func (p Package) CSV(v, replaces string) (*operatorsv1alpha1.ClusterServiceVersion, error) {
	sv, err := semver.Parse(v)
	if err != nil {
		return nil, fmt.Errorf("version %q of %s: %w", v, p.Name, err)
	}
	labels := map[string]string{"app.kubernetes.io/name": p.Deployment}
	var owned []operatorsv1alpha1.CRDDescription
	var groups []string
	for _, crd := range p.crds(v) {
		owned = append(owned, operatorsv1alpha1.CRDDescription{
			Name: crd.Name, Version: storageVersion(crd), Kind: crd.Spec.Names.Kind, DisplayName: crd.Spec.Names.Kind,
		})
		groups = append(groups, crd.Spec.Group)
	}
	image := p.Image
	if strings.Contains(image, "%s") {
		image = fmt.Sprintf(image, v)
	}
	permissions := []operatorsv1alpha1.StrategyDeploymentPermissions{{
		ServiceAccountName: p.Deployment,
		Rules: []rbacv1.PolicyRule{
			{APIGroups: groups, Resources: []string{"*"}, Verbs: []string{"*"}},
			{APIGroups: []string{""}, Resources: []string{"pods", "services", "configmaps", "secrets", "persistentvolumeclaims", "events"}, Verbs: []string{"*"}},
			{APIGroups: []string{"apps"}, Resources: []string{"statefulsets", "deployments"}, Verbs: []string{"*"}},
		},
	}}
	deployment := appsv1.DeploymentSpec{
		Replicas: ptr(int32(1)),
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
		Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{
				ServiceAccountName: p.Deployment,
				Containers: []corev1.Container{{
					Name:  "operator",
					Image: image,
					Env: []corev1.EnvVar{{
						Name:      "PGO_NAMESPACE",
						ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
					}},
				}},
			},
		},
	}
	if r, ok := p.ReleaseFor(v); ok {
		// As the release ships it; only the image (a kustomize placeholder
		// in manager.yaml) and the labels kustomize adds are filled in.
		deployment = *r.Deployment.DeepCopy()
		for i := range deployment.Template.Spec.Containers {
			deployment.Template.Spec.Containers[i].Image = image
		}
		account := deployment.Template.Spec.ServiceAccountName
		if account == "" {
			account = p.Deployment
		}
		permissions = []operatorsv1alpha1.StrategyDeploymentPermissions{{ServiceAccountName: account, Rules: r.Rules}}
	}
	deployment.Selector = &metav1.LabelSelector{MatchLabels: labels}
	deployment.Template.Labels = labels
	deployment.Template.Spec.NodeSelector = p.NodeSelector
	csv := &operatorsv1alpha1.ClusterServiceVersion{
		TypeMeta: metav1.TypeMeta{APIVersion: operatorsv1alpha1.SchemeGroupVersion.String(), Kind: operatorsv1alpha1.ClusterServiceVersionKind},
		ObjectMeta: metav1.ObjectMeta{
			Name: p.CSVName(v),
			Annotations: map[string]string{
				"containerImage": image,
				"description":    p.DisplayName + ", as pgstack's local catalog serves it",
			},
		},
		Spec: operatorsv1alpha1.ClusterServiceVersionSpec{
			DisplayName:    p.DisplayName,
			Version:        version.OperatorVersion{Version: sv},
			Replaces:       replaces,
			MinKubeVersion: "1.28.0",
			Maturity:       "stable",
			Provider:       operatorsv1alpha1.AppLink{Name: "pgstack local catalog"},
			InstallModes:   p.InstallModes,
			CustomResourceDefinitions: operatorsv1alpha1.CustomResourceDefinitions{
				Owned: owned,
			},
			InstallStrategy: operatorsv1alpha1.NamedInstallStrategy{
				StrategyName: operatorsv1alpha1.InstallStrategyNameDeployment,
				StrategySpec: operatorsv1alpha1.StrategyDetailsDeployment{
					ClusterPermissions: permissions,
					DeploymentSpecs:    []operatorsv1alpha1.StrategyDeploymentSpec{{Name: p.Deployment, Spec: deployment}},
				},
			},
		},
	}
	return csv, nil
}

// crds are the CRDs version v ships.
func (p Package) crds(v string) []*apiextensionsv1.CustomResourceDefinition {
	if crds, ok := p.CRDsAt[v]; ok {
		return crds
	}
	return p.CRDs
}

// storageVersion is the version a CRD stores, which its CSV names.
func storageVersion(crd *apiextensionsv1.CustomResourceDefinition) string {
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			return v.Name
		}
	}
	return crd.Spec.Versions[0].Name
}

// Write writes a file-based catalog of pkgs into dir (one directory per
// package), which `opm serve dir` serves.
func Write(dir string, pkgs ...Package) error {
	for _, p := range pkgs {
		if err := p.write(filepath.Join(dir, p.Name)); err != nil {
			return fmt.Errorf("write package %s: %w", p.Name, err)
		}
	}
	return nil
}

// The records below are the file-based catalog's schemas as documented by
// operator-registry (olm.package, olm.channel, olm.bundle); only the
// fields this catalog uses are written.
type fbcPackage struct {
	Schema         string `json:"schema"`
	Name           string `json:"name"`
	DefaultChannel string `json:"defaultChannel"`
}

type fbcChannelEntry struct {
	Name     string `json:"name"`
	Replaces string `json:"replaces,omitempty"`
}

type fbcChannel struct {
	Schema  string            `json:"schema"`
	Package string            `json:"package"`
	Name    string            `json:"name"`
	Entries []fbcChannelEntry `json:"entries"`
}

type fbcProperty struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type fbcBundle struct {
	Schema     string        `json:"schema"`
	Name       string        `json:"name"`
	Package    string        `json:"package"`
	Image      string        `json:"image"`
	Properties []fbcProperty `json:"properties"`
}

func (p Package) write(dir string) error {
	if len(p.Versions) == 0 {
		return fmt.Errorf("no versions")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "catalog.json"))
	if err != nil {
		return err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	if err := enc.Encode(fbcPackage{Schema: "olm.package", Name: p.Name, DefaultChannel: p.Channel}); err != nil {
		return err
	}
	channel := fbcChannel{Schema: "olm.channel", Package: p.Name, Name: p.Channel}
	replaces := ""
	for _, v := range p.Versions {
		channel.Entries = append(channel.Entries, fbcChannelEntry{Name: p.CSVName(v), Replaces: replaces})
		replaces = p.CSVName(v)
	}
	if err := enc.Encode(channel); err != nil {
		return err
	}
	replaces = ""
	for _, v := range p.Versions {
		bundle, err := p.bundle(v, replaces)
		if err != nil {
			return err
		}
		if err := enc.Encode(bundle); err != nil {
			return err
		}
		replaces = p.CSVName(v)
	}
	return f.Close()
}

func (p Package) bundle(v, replaces string) (*fbcBundle, error) {
	name := p.CSVName(v)
	var objects []any
	if len(p.Manifests) > 0 {
		for _, m := range p.Manifests {
			objects = append(objects, m.Object)
		}
	} else {
		csv, err := p.CSV(v, replaces)
		if err != nil {
			return nil, err
		}
		objects = append(objects, csv)
		for _, crd := range p.crds(v) {
			objects = append(objects, crd)
		}
	}
	b := &fbcBundle{
		Schema: "olm.bundle", Name: name, Package: p.Name,
		Properties: []fbcProperty{
			{Type: "olm.package", Value: map[string]string{"packageName": p.Name, "version": v}},
		},
	}
	for _, crd := range p.crds(v) {
		b.Properties = append(b.Properties, fbcProperty{Type: "olm.gvk", Value: map[string]string{
			"group": crd.Spec.Group, "version": storageVersion(crd), "kind": crd.Spec.Names.Kind,
		}})
	}
	for _, obj := range objects {
		data, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("marshal bundle object: %w", err)
		}
		b.Properties = append(b.Properties, fbcProperty{Type: "olm.bundle.object", Value: map[string]string{
			"data": base64.StdEncoding.EncodeToString(data),
		}})
	}
	return b, nil
}

func ptr[T any](v T) *T { return &v }
