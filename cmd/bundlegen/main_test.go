package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/manifests"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"github.com/operator-framework/api/pkg/validation"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// validators are OLM's bundle checks plus OperatorHub's publishing rules.
var validators = append(interfaces.Validators{
	validation.OperatorHubV2Validator,
	validation.StandardCategoriesValidator,
	validation.StandardCapabilitiesValidator,
	validation.GoodPracticesValidator,
	validation.AlphaDeprecatedAPIsValidator,
}, validation.DefaultBundleValidators...)

// validate loads a bundle directory the way opm does and runs the validators;
// every error fails the test, and so does every warning: none is expected.
func validate(t *testing.T, dir string) *manifests.Bundle {
	t.Helper()
	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		t.Fatalf("load bundle %s: %v", dir, err)
	}
	// The deprecated-API check reads the Kubernetes version to check against from here.
	results := validators.Validate(bundle, map[string]string{"k8s-version": "1.37"})
	if len(results) == 0 {
		t.Fatal("the validators returned no results: nothing was validated")
	}
	for _, r := range results {
		for _, e := range r.Errors {
			t.Errorf("%s: error: %s", r.Name, e.Error())
		}
		for _, w := range r.Warnings {
			t.Errorf("%s: warning: %s", r.Name, w.Error())
		}
	}
	return bundle
}

func TestGeneratedBundleValidatesAndMatchesConfig(t *testing.T) {
	out := t.TempDir()
	const image = "registry.example.com/pgstack/manager:v0.2.0"
	if err := generate(options{ConfigDir: "../../config", OutDir: out, Version: "0.2.0", Image: image, Channel: "stable"}); err != nil {
		t.Fatal(err)
	}
	bundle := validate(t, out)
	csv := bundle.CSV

	if csv.Name != "pgstack.v0.2.0" || !csv.Spec.Version.Equals(semver.MustParse("0.2.0")) {
		t.Errorf("CSV %s version %s, want pgstack.v0.2.0 at 0.2.0", csv.Name, csv.Spec.Version)
	}
	if _, err := semver.Parse(csv.Spec.MinKubeVersion); err != nil {
		t.Errorf("minKubeVersion %q: %v", csv.Spec.MinKubeVersion, err)
	}
	if bundle.Package != "pgstack" || bundle.DefaultChannel != "stable" || !slices.Equal(bundle.Channels, []string{"stable"}) {
		t.Errorf("package %q channels %v default %q, want pgstack in stable", bundle.Package, bundle.Channels, bundle.DefaultChannel)
	}
	assertAnnotations(t, filepath.Join(out, "metadata", "annotations.yaml"), "stable")

	modes := map[operatorsv1alpha1.InstallModeType]bool{}
	for _, m := range csv.Spec.InstallModes {
		modes[m.Type] = m.Supported
	}
	want := map[operatorsv1alpha1.InstallModeType]bool{
		operatorsv1alpha1.InstallModeTypeAllNamespaces: true, operatorsv1alpha1.InstallModeTypeOwnNamespace: false,
		operatorsv1alpha1.InstallModeTypeSingleNamespace: false, operatorsv1alpha1.InstallModeTypeMultiNamespace: false,
	}
	if !reflect.DeepEqual(modes, want) {
		t.Errorf("install modes = %v, want %v", modes, want)
	}

	assertPermissions(t, csv)
	assertDeployment(t, csv, image)
	assertOwnedCRD(t, bundle)
	assertExamples(t, csv)
}

// The committed bundle must load and validate too; `make verify` separately
// fails when it is not what `make bundle` writes today.
func TestCommittedBundleValidates(t *testing.T) {
	bundle := validate(t, "../../bundle")
	if bundle.CSV.Spec.Version.String() == "" || bundle.Package != "pgstack" {
		t.Errorf("committed bundle: CSV %s, package %q", bundle.CSV.Name, bundle.Package)
	}
	assertAnnotations(t, "../../bundle/metadata/annotations.yaml", bundle.DefaultChannel)
	assertPermissions(t, bundle.CSV)
}

func TestGenerateRejectsAVersionThatIsNotSemver(t *testing.T) {
	err := generate(options{ConfigDir: "../../config", OutDir: t.TempDir(), Version: "v1", Image: "x", Channel: "stable"})
	if err == nil || !strings.Contains(err.Error(), `version "v1"`) {
		t.Errorf("generate with version v1: err = %v, want a version error", err)
	}
}

func assertAnnotations(t *testing.T, path, channel string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.UnmarshalStrict(data, &file); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	want := map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1":       "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1":       "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":        "metadata/",
		"operators.operatorframework.io.bundle.package.v1":         "pgstack",
		"operators.operatorframework.io.bundle.channels.v1":        channel,
		"operators.operatorframework.io.bundle.channel.default.v1": channel,
	}
	if !reflect.DeepEqual(file.Annotations, want) {
		t.Errorf("%s annotations = %v, want %v", path, file.Annotations, want)
	}
}

// assertPermissions: the cluster permissions are the marker-generated role
// plus the metrics endpoint's token and access reviews, and nothing else.
func assertPermissions(t *testing.T, csv *operatorsv1alpha1.ClusterServiceVersion) {
	t.Helper()
	data, err := os.ReadFile("../../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	wantCluster := append(slices.Clone(role.Rules),
		rbacv1.PolicyRule{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		rbacv1.PolicyRule{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	)
	strategy := csv.Spec.InstallStrategy.StrategySpec
	if len(strategy.ClusterPermissions) != 1 || !reflect.DeepEqual(strategy.ClusterPermissions[0].Rules, wantCluster) {
		t.Errorf("clusterPermissions = %+v, want config/rbac/role.yaml's rules and the metrics reviews", strategy.ClusterPermissions)
	}
	var leases bool
	for _, p := range strategy.Permissions {
		for _, r := range p.Rules {
			leases = leases || slices.Contains(r.APIGroups, "coordination.k8s.io") && slices.Contains(r.Resources, "leases") && slices.Contains(r.Verbs, "update")
		}
	}
	if !leases {
		t.Errorf("permissions %+v do not let leader election update its Lease", strategy.Permissions)
	}
	for _, p := range append(slices.Clone(strategy.Permissions), strategy.ClusterPermissions...) {
		if p.ServiceAccountName != "pgstack-controller-manager" {
			t.Errorf("permissions for service account %q, want pgstack-controller-manager", p.ServiceAccountName)
		}
		for _, r := range p.Rules {
			for _, v := range slices.Concat(r.APIGroups, r.Resources, r.Verbs) {
				if strings.Contains(v, "*") || v == "secrets" {
					t.Errorf("rule %+v grants %q", r, v)
				}
			}
		}
	}
}

func assertDeployment(t *testing.T, csv *operatorsv1alpha1.ClusterServiceVersion, image string) {
	t.Helper()
	deployments := csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs
	if len(deployments) != 1 || deployments[0].Name != "pgstack-controller-manager" {
		t.Fatalf("deployments = %+v, want pgstack-controller-manager alone", deployments)
	}
	pod := deployments[0].Spec.Template.Spec
	if pod.ServiceAccountName != "pgstack-controller-manager" {
		t.Errorf("pod runs as %q", pod.ServiceAccountName)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("pod has %d containers, want the manager alone", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != image {
		t.Errorf("manager image = %q, want %q", c.Image, image)
	}
	if !slices.Contains(c.Args, "--leader-elect") || !slices.Contains(c.Args, "--metrics-bind-address=:8443") {
		t.Errorf("manager args = %q, want leader election and HTTPS metrics", c.Args)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("manager securityContext = %+v, want the restricted one of config/manager", sc)
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("manager probes or resources missing: liveness %v readiness %v resources %v", c.LivenessProbe, c.ReadinessProbe, c.Resources)
	}
	if related := csv.Spec.RelatedImages; len(related) != 1 || related[0].Image != image {
		t.Errorf("relatedImages = %+v, want the manager image", related)
	}
}

func assertOwnedCRD(t *testing.T, bundle *manifests.Bundle) {
	t.Helper()
	owned := bundle.CSV.Spec.CustomResourceDefinitions.Owned
	if len(owned) != 2 || owned[1].Name != "postgresrolloutpolicies.platform.pgstack.dev" || owned[1].Kind != "PostgresRolloutPolicy" {
		t.Fatalf("owned CRDs = %+v, want PostgresStack and PostgresRolloutPolicy", owned)
	}
	o := owned[0]
	if o.Name != "postgresstacks.platform.pgstack.dev" || o.Kind != "PostgresStack" || o.Version != platformv1alpha1.GroupVersion.Version || o.Description == "" || o.DisplayName == "" {
		t.Errorf("owned CRD = %s %s %s %q, want PostgresStack v1alpha1 with a description", o.Name, o.Kind, o.Version, o.Description)
	}
	var hasConditions bool
	for _, d := range o.StatusDescriptors {
		hasConditions = hasConditions || d.Path == "conditions" && slices.Contains(d.XDescriptors, "urn:alm:descriptor:io.kubernetes.conditions")
	}
	if !hasConditions {
		t.Error("no status descriptor shows the conditions")
	}

	if len(bundle.V1CRDs) != 2 {
		t.Fatalf("bundle has %d v1 CRDs, want 2", len(bundle.V1CRDs))
	}
	for _, got := range bundle.V1CRDs {
		data, err := os.ReadFile("../../config/crd/bases/platform.pgstack.dev_" + strings.Split(got.Name, ".")[0] + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		var want apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if got.Name != want.Name || !reflect.DeepEqual(got.Spec, want.Spec) {
			t.Errorf("bundle CRD %s differs from config/crd/bases' %s", got.Name, want.Name)
		}
	}
}

// assertExamples: every alm-example is a PostgresStack the API type reads
// without unknown fields, so the console's "create" form starts valid.
func assertExamples(t *testing.T, csv *operatorsv1alpha1.ClusterServiceVersion) {
	t.Helper()
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(csv.Annotations["alm-examples"]), &raw); err != nil {
		t.Fatalf("alm-examples: %v", err)
	}
	if len(raw) == 0 {
		t.Fatal("alm-examples is empty")
	}
	for _, r := range raw {
		var stack platformv1alpha1.PostgresStack
		dec := json.NewDecoder(bytes.NewReader(r))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&stack); err != nil {
			t.Errorf("alm-example %s: %v", r, err)
			continue
		}
		if stack.Kind != "PostgresStack" || stack.APIVersion != platformv1alpha1.GroupVersion.String() || stack.Name == "" {
			t.Errorf("alm-example %s %s %q is not a named PostgresStack", stack.APIVersion, stack.Kind, stack.Name)
		}
	}
}
