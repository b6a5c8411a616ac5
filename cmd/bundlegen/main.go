// Command bundlegen writes pgstack's own OLM bundle (bundle/) from the
// kustomize configuration, so that the bundle installs exactly what
// `make deploy` does: the manager Deployment of config/manager, the RBAC
// generated from the +kubebuilder:rbac markers, and the PostgresStack CRD.
// `make bundle` runs it; `make verify` runs it too, so a stale bundle fails.
package main

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// Names config/default gives the objects the bundle is made of.
const (
	packageName        = "pgstack"
	deploymentName     = "pgstack-controller-manager"
	managerRoleName    = "pgstack-manager-role"
	metricsAuthRole    = "pgstack-metrics-auth-role"
	metricsReaderRole  = "pgstack-metrics-reader"
	leaderElectionRole = "pgstack-leader-election-role"
	metricsServiceName = "pgstack-controller-manager-metrics-service"
	crdName            = "postgresstacks.platform.pgstack.dev"
	policyCRDName      = "postgresrolloutpolicies.platform.pgstack.dev"
)

// minKubeVersion: the CRD relies on CEL validation rules (GA in Kubernetes
// 1.29) with the quantity library, fieldPath and reason; 1.30 keeps a release
// of margin. The test suites run against a newer API server (see hack/kube).
const minKubeVersion = "1.30.0"

// options say what bundle to write.
type options struct {
	// ConfigDir is the kustomize root (config/).
	ConfigDir string
	// OutDir is the bundle directory; manifests/ and metadata/ are replaced.
	OutDir string
	// Version is pgstack's semantic version, without a leading v.
	Version string
	// Image is the manager image the bundle installs.
	Image string
	// Channel is the OLM channel the bundle is published in.
	Channel string
}

func main() {
	var o options
	flag.StringVar(&o.ConfigDir, "config", "config", "kustomize root holding default/, manager/, rbac/ and crd/")
	flag.StringVar(&o.OutDir, "out", "bundle", "bundle directory to write (manifests/ and metadata/ are replaced)")
	flag.StringVar(&o.Version, "version", "0.1.0", "pgstack version (semver, no leading v)")
	flag.StringVar(&o.Image, "image", "", "manager image (default pgstack/manager:v<version>)")
	flag.StringVar(&o.Channel, "channel", "candidate", "OLM channel")
	flag.Parse()
	if o.Image == "" {
		o.Image = "pgstack/manager:v" + o.Version
	}
	if err := generate(o); err != nil {
		fmt.Fprintln(os.Stderr, "bundlegen:", err)
		os.Exit(1)
	}
}

// deployed is what config/default deploys, decoded.
type deployed struct {
	deployment     *appsv1.Deployment
	clusterRoles   map[string]rbacv1.ClusterRole
	roles          map[string]rbacv1.Role
	metricsService *corev1.Service
	crd            map[string]any
	policyCRD      map[string]any
}

// build runs kustomize on config/default, as `make deploy` does.
func build(configDir string) (deployed, error) {
	d := deployed{clusterRoles: map[string]rbacv1.ClusterRole{}, roles: map[string]rbacv1.Role{}}
	dir := filepath.Join(configDir, "default")
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return d, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	for _, r := range resources.Resources() {
		m, err := r.Map()
		if err != nil {
			return d, fmt.Errorf("read %s: %w", r.CurId(), err)
		}
		decode := func(into any) error {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, into); err != nil {
				return fmt.Errorf("decode %s: %w", r.CurId(), err)
			}
			return nil
		}
		switch kind, name := r.GetKind(), r.GetName(); {
		case kind == "Deployment" && name == deploymentName:
			d.deployment = &appsv1.Deployment{}
			err = decode(d.deployment)
		case kind == "ClusterRole":
			var role rbacv1.ClusterRole
			err = decode(&role)
			d.clusterRoles[name] = role
		case kind == "Role":
			var role rbacv1.Role
			err = decode(&role)
			d.roles[name] = role
		case kind == "Service" && name == metricsServiceName:
			d.metricsService = &corev1.Service{}
			err = decode(d.metricsService)
		case kind == "CustomResourceDefinition" && name == crdName:
			d.crd = m
		case kind == "CustomResourceDefinition" && name == policyCRDName:
			d.policyCRD = m
		}
		if err != nil {
			return d, err
		}
	}
	switch {
	case d.deployment == nil:
		return d, fmt.Errorf("%s has no Deployment %s", dir, deploymentName)
	case d.metricsService == nil:
		return d, fmt.Errorf("%s has no Service %s", dir, metricsServiceName)
	case d.crd == nil:
		return d, fmt.Errorf("%s has no CRD %s", dir, crdName)
	case d.policyCRD == nil:
		return d, fmt.Errorf("%s has no CRD %s", dir, policyCRDName)
	}
	for _, name := range []string{managerRoleName, metricsAuthRole, metricsReaderRole} {
		if _, ok := d.clusterRoles[name]; !ok {
			return d, fmt.Errorf("%s has no ClusterRole %s", dir, name)
		}
	}
	if _, ok := d.roles[leaderElectionRole]; !ok {
		return d, fmt.Errorf("%s has no Role %s", dir, leaderElectionRole)
	}
	return d, nil
}

// generate writes the bundle: the CSV, the CRD, the metrics Service and the
// metrics-reader ClusterRole under manifests/, and metadata/annotations.yaml.
func generate(o options) error {
	v, err := semver.Parse(o.Version)
	if err != nil {
		return fmt.Errorf("version %q: %w", o.Version, err)
	}
	d, err := build(o.ConfigDir)
	if err != nil {
		return err
	}
	samples, err := almExamples(filepath.Join(o.ConfigDir, "samples"))
	if err != nil {
		return err
	}
	csv, err := clusterServiceVersion(d, v, o.Image, samples)
	if err != nil {
		return err
	}

	manifestsDir := filepath.Join(o.OutDir, "manifests")
	metadataDir := filepath.Join(o.OutDir, "metadata")
	// Replace, not merge: a file left from an older bundle would ship with it.
	for _, dir := range []string{manifestsDir, metadataDir} {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("clear %s: %w", dir, err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}

	service := d.metricsService.DeepCopy()
	// OLM creates bundle objects in the namespace the operator is installed in.
	service.Namespace = ""
	service.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
	reader := d.clusterRoles[metricsReaderRole]
	reader.TypeMeta = metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"}

	files := map[string]any{
		filepath.Join(manifestsDir, packageName+".clusterserviceversion.yaml"):                          csv,
		filepath.Join(manifestsDir, "platform.pgstack.dev_postgresstacks.yaml"):                         d.crd,
		filepath.Join(manifestsDir, "platform.pgstack.dev_postgresrolloutpolicies.yaml"):                d.policyCRD,
		filepath.Join(manifestsDir, metricsServiceName+"_v1_service.yaml"):                              service,
		filepath.Join(manifestsDir, metricsReaderRole+"_rbac.authorization.k8s.io_v1_clusterrole.yaml"): reader,
		filepath.Join(metadataDir, "annotations.yaml"):                                                  map[string]any{"annotations": bundleAnnotations(o.Channel)},
	}
	for path, obj := range files {
		if err := writeYAML(path, obj); err != nil {
			return err
		}
	}
	return writeDockerfile(filepath.Join(o.OutDir, "bundle.Dockerfile"), o.Channel)
}

// bundleAnnotations are the registry+v1 annotations OLM and opm read.
func bundleAnnotations(channel string) map[string]string {
	return map[string]string{
		"operators.operatorframework.io.bundle.mediatype.v1":       "registry+v1",
		"operators.operatorframework.io.bundle.manifests.v1":       "manifests/",
		"operators.operatorframework.io.bundle.metadata.v1":        "metadata/",
		"operators.operatorframework.io.bundle.package.v1":         packageName,
		"operators.operatorframework.io.bundle.channels.v1":        channel,
		"operators.operatorframework.io.bundle.channel.default.v1": channel,
	}
}

// writeDockerfile writes the bundle image's Dockerfile; its labels repeat the
// annotations, which is how registries read a bundle image without pulling it.
func writeDockerfile(path, channel string) error {
	var b strings.Builder
	b.WriteString("# Generated by cmd/bundlegen (make bundle). Build from bundle/:\n")
	b.WriteString("#   docker build -f bundle.Dockerfile -t <bundle image> .\n")
	b.WriteString("FROM scratch\n")
	annotations := bundleAnnotations(channel)
	for _, k := range sortedKeys(annotations) {
		fmt.Fprintf(&b, "LABEL %s=%s\n", k, annotations[k])
	}
	b.WriteString("COPY manifests /manifests/\nCOPY metadata /metadata/\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// almExamples are the samples the OLM console offers when creating a stack.
func almExamples(samplesDir string) (string, error) {
	var examples []map[string]any
	for _, name := range []string{"hippo", "manual_approval", "upgrade_policy"} {
		path := filepath.Join(samplesDir, "platform_v1alpha1_postgresstack_"+name+".yaml")
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read sample: %w", err)
		}
		var sample map[string]any
		if err := yaml.Unmarshal(data, &sample); err != nil {
			return "", fmt.Errorf("parse sample %s: %w", path, err)
		}
		examples = append(examples, sample)
	}
	var out strings.Builder
	enc := json.NewEncoder(&out)
	// Version ranges such as ">=5.7.0" read as written, not as \u003e.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(examples); err != nil {
		return "", fmt.Errorf("encode alm-examples: %w", err)
	}
	return strings.TrimSpace(out.String()), nil
}

// clusterServiceVersion describes pgstack to OLM.
func clusterServiceVersion(d deployed, v semver.Version, image string, samples string) (*operatorsv1alpha1.ClusterServiceVersion, error) {
	deployment := d.deployment.Spec.DeepCopy()
	var found bool
	for i := range deployment.Template.Spec.Containers {
		if c := &deployment.Template.Spec.Containers[i]; c.Name == "manager" {
			c.Image, found = image, true
		}
	}
	if !found {
		return nil, fmt.Errorf("Deployment %s has no container named manager", deploymentName)
	}
	// OLM, not kustomize, manages what the bundle installs.
	labels := maps.Clone(d.deployment.Labels)
	delete(labels, "app.kubernetes.io/managed-by")
	serviceAccount := deployment.Template.Spec.ServiceAccountName
	if serviceAccount == "" {
		return nil, fmt.Errorf("Deployment %s names no service account", deploymentName)
	}

	csv := &operatorsv1alpha1.ClusterServiceVersion{
		TypeMeta: metav1.TypeMeta{APIVersion: operatorsv1alpha1.SchemeGroupVersion.String(), Kind: operatorsv1alpha1.ClusterServiceVersionKind},
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s.v%s", packageName, v),
			Annotations: map[string]string{
				"alm-examples":   samples,
				"capabilities":   "Basic Install",
				"categories":     "Database",
				"containerImage": image,
				"description":    "Production PostgreSQL from one PostgresStack: installs the Crunchy Postgres Operator through OLM under an upgrade policy and runs its PostgresCluster.",
				"repository":     "https://github.com/pgstack/pgstack",
				"support":        "pgstack",
				"operatorframework.io/suggested-namespace": "pgstack-system",
			},
		},
		Spec: operatorsv1alpha1.ClusterServiceVersionSpec{
			DisplayName:    "pgstack",
			Description:    description,
			Version:        version.OperatorVersion{Version: v},
			MinKubeVersion: minKubeVersion,
			Maturity:       "alpha",
			Keywords:       []string{"postgresql", "postgres", "database", "pgo", "crunchy", "olm"},
			Provider:       operatorsv1alpha1.AppLink{Name: "pgstack", URL: "https://github.com/pgstack/pgstack"},
			Maintainers:    []operatorsv1alpha1.Maintainer{{Name: "pgstack maintainers", Email: "maintainers@pgstack.dev"}},
			Links: []operatorsv1alpha1.AppLink{
				{Name: "Source", URL: "https://github.com/pgstack/pgstack"},
				{Name: "Documentation", URL: "https://github.com/pgstack/pgstack/tree/main/docs"},
			},
			Icon: []operatorsv1alpha1.Icon{{Data: base64.StdEncoding.EncodeToString([]byte(icon)), MediaType: "image/svg+xml"}},
			// pgstack watches PostgresStacks in every namespace and installs PGO
			// into the namespace each stack names, so it cannot be confined to
			// the namespaces an OperatorGroup targets.
			InstallModes: []operatorsv1alpha1.InstallMode{
				{Type: operatorsv1alpha1.InstallModeTypeOwnNamespace, Supported: false},
				{Type: operatorsv1alpha1.InstallModeTypeSingleNamespace, Supported: false},
				{Type: operatorsv1alpha1.InstallModeTypeMultiNamespace, Supported: false},
				{Type: operatorsv1alpha1.InstallModeTypeAllNamespaces, Supported: true},
			},
			CustomResourceDefinitions: operatorsv1alpha1.CustomResourceDefinitions{
				Owned: []operatorsv1alpha1.CRDDescription{postgresStackDescription(), rolloutPolicyDescription()},
			},
			InstallStrategy: operatorsv1alpha1.NamedInstallStrategy{
				StrategyName: operatorsv1alpha1.InstallStrategyNameDeployment,
				StrategySpec: operatorsv1alpha1.StrategyDetailsDeployment{
					DeploymentSpecs: []operatorsv1alpha1.StrategyDeploymentSpec{{
						Name:  deploymentName,
						Label: labels,
						Spec:  *deployment,
					}},
					// Leader election runs in the install namespace only.
					Permissions: []operatorsv1alpha1.StrategyDeploymentPermissions{{
						ServiceAccountName: serviceAccount,
						Rules:              d.roles[leaderElectionRole].Rules,
					}},
					// The marker-generated role, and the reviews the metrics
					// endpoint needs to authenticate and authorize scrapers.
					ClusterPermissions: []operatorsv1alpha1.StrategyDeploymentPermissions{{
						ServiceAccountName: serviceAccount,
						Rules:              append(slices.Clone(d.clusterRoles[managerRoleName].Rules), d.clusterRoles[metricsAuthRole].Rules...),
					}},
				},
			},
			RelatedImages: []operatorsv1alpha1.RelatedImage{{Name: "manager", Image: image}},
		},
	}
	return csv, nil
}

// rolloutPolicyDescription tells the OLM console what a PostgresRolloutPolicy is.
func rolloutPolicyDescription() operatorsv1alpha1.CRDDescription {
	text := []string{"urn:alm:descriptor:text"}
	return operatorsv1alpha1.CRDDescription{
		Name:        policyCRDName,
		Version:     platformv1alpha1.GroupVersion.Version,
		Kind:        "PostgresRolloutPolicy",
		DisplayName: "Postgres Rollout Policy",
		Description: "How the databases sharing one PGO move to a new PGO's images: pinned before the upgrade is approved, then released wave by wave. One per operator install namespace, named default.",
		SpecDescriptors: []operatorsv1alpha1.SpecDescriptor{
			{Path: "maxConcurrent", DisplayName: "Clusters restarting at once", XDescriptors: []string{"urn:alm:descriptor:com.tectonic.ui:number"}},
			{Path: "soakTime", DisplayName: "Soak time per wave", XDescriptors: text},
			{Path: "progressDeadline", DisplayName: "Progress deadline per cluster", XDescriptors: text},
		},
		StatusDescriptors: []operatorsv1alpha1.StatusDescriptor{
			{Path: "conditions", DisplayName: "Conditions", Description: "Ready, Reconciling and Stalled (kstatus).", XDescriptors: []string{"urn:alm:descriptor:io.kubernetes.conditions"}},
			{Path: "rollout.phase", DisplayName: "Phase", XDescriptors: text},
		},
	}
}

// postgresStackDescription tells the OLM console what a PostgresStack is and
// which fields and conditions matter.
func postgresStackDescription() operatorsv1alpha1.CRDDescription {
	conditions := []string{"urn:alm:descriptor:io.kubernetes.conditions"}
	text := []string{"urn:alm:descriptor:text"}
	return operatorsv1alpha1.CRDDescription{
		Name:        crdName,
		Version:     platformv1alpha1.GroupVersion.Version,
		Kind:        "PostgresStack",
		DisplayName: "Postgres Stack",
		Description: "A PostgreSQL cluster run by the Crunchy Postgres Operator (PGO), with PGO installed and upgraded through OLM under the stack's approval policy.",
		Resources: []operatorsv1alpha1.APIResourceReference{
			{Name: "postgresclusters", Kind: "PostgresCluster", Version: "v1beta1"},
			{Name: "subscriptions", Kind: "Subscription", Version: "v1alpha1"},
			{Name: "installplans", Kind: "InstallPlan", Version: "v1alpha1"},
			{Name: "operatorgroups", Kind: "OperatorGroup", Version: "v1"},
			{Name: "clusterserviceversions", Kind: "ClusterServiceVersion", Version: "v1alpha1"},
		},
		SpecDescriptors: []operatorsv1alpha1.SpecDescriptor{
			{Path: "operator.approval", DisplayName: "Approval", Description: "Automatic: pgstack approves install plans its policy allows. Manual: a person approves every plan.",
				XDescriptors: []string{"urn:alm:descriptor:com.tectonic.ui:select:Automatic", "urn:alm:descriptor:com.tectonic.ui:select:Manual"}},
			{Path: "operator.versions", DisplayName: "Allowed PGO versions", Description: "A semver range; plans carrying a PGO version outside it are never approved.", XDescriptors: text},
			{Path: "operator.removal", DisplayName: "Operator removal", Description: "Keep, or DeleteIfUnused to remove PGO after the last stack using it is deleted.",
				XDescriptors: []string{"urn:alm:descriptor:com.tectonic.ui:select:Keep", "urn:alm:descriptor:com.tectonic.ui:select:DeleteIfUnused"}},
			{Path: "deletionPolicy", DisplayName: "Deletion policy", Description: "Retain (default) keeps the PostgresCluster and its data when the stack is deleted; Delete deletes them.",
				XDescriptors: []string{"urn:alm:descriptor:com.tectonic.ui:select:Retain", "urn:alm:descriptor:com.tectonic.ui:select:Delete"}},
			{Path: "postgres.version", DisplayName: "PostgreSQL major version", Description: "The PostgreSQL major version PGO runs.", XDescriptors: []string{"urn:alm:descriptor:com.tectonic.ui:number"}},
		},
		StatusDescriptors: []operatorsv1alpha1.StatusDescriptor{
			{Path: "conditions", DisplayName: "Conditions", Description: "Ready, Reconciling and Stalled (kstatus), and OperatorInstalled, UpgradeApproved and ClusterReady.", XDescriptors: conditions},
			{Path: "operator.version", DisplayName: "PGO version", Description: "The PGO version installed.", XDescriptors: text},
			{Path: "operator.pendingVersion", DisplayName: "Pending PGO version", Description: "A PGO version waiting for approval.", XDescriptors: text},
			{Path: "cluster.name", DisplayName: "PostgresCluster", Description: "The PostgresCluster pgstack manages.", XDescriptors: text},
		},
	}
}

// writeYAML writes obj as YAML, without the empty status and null
// creationTimestamps that Go's zero values would otherwise add.
func writeYAML(path string, obj any) error {
	raw, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	delete(m, "status")
	dropNullTimestamps(m)
	out, err := yaml.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s as YAML: %w", path, err)
	}
	out = append([]byte("# Generated by cmd/bundlegen (make bundle); do not edit.\n"), out...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func dropNullTimestamps(v any) {
	switch x := v.(type) {
	case map[string]any:
		if ts, ok := x["creationTimestamp"]; ok && ts == nil {
			delete(x, "creationTimestamp")
		}
		for _, child := range x {
			dropNullTimestamps(child)
		}
	case []any:
		for _, child := range x {
			dropNullTimestamps(child)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// description is the CSV's long description, shown in the OLM console.
const description = `pgstack gives a platform team a production PostgreSQL from one ` + "`PostgresStack`" + ` object.

It installs the Crunchy Postgres Operator (PGO) through OLM with a Manual
Subscription and approves PGO's install plans only when every stack's policy
allows them: Automatic or Manual approval, a semver range of allowed versions
and a weekly maintenance window for upgrades. Once PGO is installed it applies
PGO's ` + "`PostgresCluster`" + ` by server-side apply, with PGO's high availability,
backups, restores, clones, standbys, monitoring, TLS, pooling and scheduling
reachable from typed fields.

Status follows kstatus (` + "`Ready`, `Reconciling`, `Stalled`" + `), so ` + "`kubectl wait --for=condition=Ready`" + `,
Argo CD and Flux read it. Deletion is safe by default: with ` + "`deletionPolicy: Retain`" + `
the PostgresCluster and its volumes stay when the stack is deleted.
`

// icon is a small elephant-blue database drum.
const icon = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><ellipse cx="32" cy="14" rx="22" ry="8" fill="#336791"/><path d="M10 14v36c0 4.4 9.8 8 22 8s22-3.6 22-8V14c0 4.4-9.8 8-22 8s-22-3.6-22-8z" fill="#336791" opacity=".85"/><path d="M10 30c0 4.4 9.8 8 22 8s22-3.6 22-8" fill="none" stroke="#fff" stroke-width="2"/></svg>`
