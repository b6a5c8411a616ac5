// Package config_test builds the kustomize overlays the way `make deploy` does,
// with kustomize's own Go API, and checks what a real cluster would receive.
package config_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// deployNamespace is where config/default puts the manager.
const deployNamespace = "pgstack-system"

// objects is a kustomize build, decoded by kind.
type objects struct {
	all                 []map[string]any
	deployments         []appsv1.Deployment
	roles               []rbacv1.Role
	clusterRoles        []rbacv1.ClusterRole
	roleBindings        []rbacv1.RoleBinding
	clusterRoleBindings []rbacv1.ClusterRoleBinding
	serviceAccounts     []corev1.ServiceAccount
	services            []corev1.Service
	namespaces          []corev1.Namespace
	crds                []apiextensionsv1.CustomResourceDefinition
}

// build runs kustomize on a directory under config/ and decodes the result.
func build(t *testing.T, dir string) objects {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out objects
	for _, r := range resources.Resources() {
		// Through JSON, so numbers are int64 or float64 as the API machinery expects.
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("kustomize build %s: %s: %v", dir, r.CurId(), err)
		}
		var m map[string]any
		if err := utiljson.Unmarshal(data, &m); err != nil {
			t.Fatalf("kustomize build %s: %s: %v", dir, r.CurId(), err)
		}
		out.all = append(out.all, m)
		decode := func(into any) {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, into); err != nil {
				t.Fatalf("decode %s: %v", r.CurId(), err)
			}
		}
		switch r.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			decode(&d)
			out.deployments = append(out.deployments, d)
		case "Role":
			var role rbacv1.Role
			decode(&role)
			out.roles = append(out.roles, role)
		case "ClusterRole":
			var role rbacv1.ClusterRole
			decode(&role)
			out.clusterRoles = append(out.clusterRoles, role)
		case "RoleBinding":
			var b rbacv1.RoleBinding
			decode(&b)
			out.roleBindings = append(out.roleBindings, b)
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			decode(&b)
			out.clusterRoleBindings = append(out.clusterRoleBindings, b)
		case "ServiceAccount":
			var sa corev1.ServiceAccount
			decode(&sa)
			out.serviceAccounts = append(out.serviceAccounts, sa)
		case "Service":
			var s corev1.Service
			decode(&s)
			out.services = append(out.services, s)
		case "Namespace":
			var ns corev1.Namespace
			decode(&ns)
			out.namespaces = append(out.namespaces, ns)
		case "CustomResourceDefinition":
			var crd apiextensionsv1.CustomResourceDefinition
			decode(&crd)
			out.crds = append(out.crds, crd)
		}
	}
	return out
}

// manager returns the one Deployment of config/default and its manager container.
func manager(t *testing.T, o objects) (appsv1.Deployment, corev1.Container) {
	t.Helper()
	if len(o.deployments) != 1 {
		t.Fatalf("config/default has %d Deployments, want 1", len(o.deployments))
	}
	d := o.deployments[0]
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return d, c
		}
	}
	t.Fatalf("Deployment %s has no container named manager", d.Name)
	return d, corev1.Container{}
}

func TestDefaultRunsRestricted(t *testing.T) {
	o := build(t, "default")
	d, c := manager(t, o)
	if d.Namespace != deployNamespace {
		t.Errorf("Deployment namespace = %q, want %q", d.Namespace, deployNamespace)
	}

	pod := d.Spec.Template.Spec.SecurityContext
	if pod == nil {
		t.Fatal("pod has no securityContext")
	}
	if pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	if pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile = %+v, want RuntimeDefault", pod.SeccompProfile)
	}

	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("manager container has no securityContext")
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("container securityContext.runAsNonRoot is not true")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container securityContext.readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("container securityContext.allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("container is privileged")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container capabilities = %+v, want drop [ALL] and add nothing", sc.Capabilities)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container seccompProfile = %+v, want RuntimeDefault", sc.SeccompProfile)
	}

	// The namespace enforces the same, so a later patch cannot loosen it unnoticed.
	var enforced bool
	for _, ns := range o.namespaces {
		if ns.Name == deployNamespace && ns.Labels["pod-security.kubernetes.io/enforce"] == "restricted" {
			enforced = true
		}
	}
	if !enforced {
		t.Errorf("namespace %s does not enforce the restricted Pod Security Standard", deployNamespace)
	}
}

func TestDefaultProbesResourcesAndArgs(t *testing.T) {
	_, c := manager(t, build(t, "default"))

	for name, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("%s probe = %+v, want an HTTP GET", name, probe)
			continue
		}
		if probe.HTTPGet.Port.IntValue() != 8081 {
			t.Errorf("%s probe port = %s, want 8081 (--health-probe-bind-address)", name, probe.HTTPGet.Port.String())
		}
	}
	if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness path = %q, want /healthz", c.LivenessProbe.HTTPGet.Path)
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness path = %q, want /readyz", c.ReadinessProbe.HTTPGet.Path)
	}

	for _, resource := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[resource]
		limit, hasLimit := c.Resources.Limits[resource]
		if !hasReq || !hasLimit || req.IsZero() || limit.IsZero() {
			t.Errorf("%s: requests %v, limits %v; want both set", resource, c.Resources.Requests, c.Resources.Limits)
			continue
		}
		if req.Cmp(limit) > 0 {
			t.Errorf("%s request %s exceeds its limit %s", resource, req.String(), limit.String())
		}
	}

	for _, want := range []string{"--leader-elect", "--metrics-bind-address=:8443", "--health-probe-bind-address=:8081"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("manager args %q lack %s", c.Args, want)
		}
	}
	for _, arg := range c.Args {
		// Metrics are served over HTTPS behind authentication and authorization by default.
		if strings.HasPrefix(arg, "--metrics-secure=") && arg != "--metrics-secure=true" {
			t.Errorf("manager args turn secure metrics off: %s", arg)
		}
	}
	if c.Image == "" || strings.HasPrefix(c.Image, "controller:") {
		t.Errorf("manager image %q was not replaced by config/manager's images entry", c.Image)
	}
}

// allRules lists every RBAC rule config/default grants, labelled for messages.
func allRules(o objects) map[string][]rbacv1.PolicyRule {
	rules := map[string][]rbacv1.PolicyRule{}
	for _, r := range o.roles {
		rules["Role "+r.Namespace+"/"+r.Name] = r.Rules
	}
	for _, r := range o.clusterRoles {
		rules["ClusterRole "+r.Name] = r.Rules
	}
	return rules
}

func TestDefaultRBACIsLeastPrivilege(t *testing.T) {
	o := build(t, "default")
	rules := allRules(o)
	if len(rules) == 0 {
		t.Fatal("config/default grants no RBAC at all")
	}
	for role, rs := range rules {
		for i, rule := range rs {
			for field, values := range map[string][]string{"apiGroups": rule.APIGroups, "resources": rule.Resources, "verbs": rule.Verbs, "nonResourceURLs": rule.NonResourceURLs} {
				for _, v := range values {
					if strings.Contains(v, "*") {
						t.Errorf("%s rule %d has a wildcard in %s: %q", role, i, field, v)
					}
				}
			}
			for _, resource := range rule.Resources {
				if resource == "secrets" || strings.HasPrefix(resource, "secrets/") {
					t.Errorf("%s rule %d grants %v on %s: pgstack never reads Secrets", role, i, rule.Verbs, resource)
				}
			}
			if len(rule.Verbs) == 0 {
				t.Errorf("%s rule %d has no verbs", role, i)
			}
		}
	}

	// The manager's ClusterRole is the generated one, bound to the manager's ServiceAccount.
	if _, ok := rules["ClusterRole pgstack-manager-role"]; !ok {
		t.Errorf("no ClusterRole pgstack-manager-role; roles: %v", keys(rules))
	}
	sa := fmt.Sprintf("%s/pgstack-controller-manager", deployNamespace)
	var found bool
	for _, sac := range o.serviceAccounts {
		found = found || sac.Namespace+"/"+sac.Name == sa
	}
	if !found {
		t.Errorf("ServiceAccount %s is missing", sa)
	}
	d, _ := manager(t, o)
	if got := d.Namespace + "/" + d.Spec.Template.Spec.ServiceAccountName; got != sa {
		t.Errorf("manager runs as %s, want %s", got, sa)
	}
	bound := map[string]bool{}
	for _, b := range o.clusterRoleBindings {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Namespace+"/"+s.Name == sa {
				bound["ClusterRole "+b.RoleRef.Name] = true
			}
		}
	}
	for _, b := range o.roleBindings {
		for _, s := range b.Subjects {
			if s.Kind == "ServiceAccount" && s.Namespace+"/"+s.Name == sa {
				bound["Role "+b.Namespace+"/"+b.RoleRef.Name] = true
			}
		}
	}
	for _, want := range []string{"ClusterRole pgstack-manager-role", "ClusterRole pgstack-metrics-auth-role", "Role " + deployNamespace + "/pgstack-leader-election-role"} {
		if !bound[want] {
			t.Errorf("%s is not bound to %s; bound: %v", want, sa, keys(bound))
		}
		if _, ok := rules[want]; !ok {
			t.Errorf("%s is bound but not defined", want)
		}
	}
}

func TestDefaultIncludesCRDAndMetricsService(t *testing.T) {
	o := build(t, "default")
	var crd *apiextensionsv1.CustomResourceDefinition
	for i := range o.crds {
		if o.crds[i].Name == "postgresstacks.platform.pgstack.dev" {
			crd = &o.crds[i]
		}
	}
	if crd == nil {
		t.Fatalf("CRD postgresstacks.platform.pgstack.dev is missing from config/default")
	}
	if crd.Spec.Names.Kind != "PostgresStack" || len(crd.Spec.Versions) == 0 {
		t.Errorf("CRD names %+v with %d versions, want kind PostgresStack with at least one", crd.Spec.Names, len(crd.Spec.Versions))
	}

	d, _ := manager(t, o)
	var metrics *corev1.Service
	for i := range o.services {
		if o.services[i].Name == "pgstack-controller-manager-metrics-service" {
			metrics = &o.services[i]
		}
	}
	if metrics == nil {
		t.Fatal("metrics Service is missing")
	}
	if len(metrics.Spec.Ports) != 1 || metrics.Spec.Ports[0].Port != 8443 || metrics.Spec.Ports[0].Name != "https" {
		t.Errorf("metrics Service ports = %+v, want one https port 8443", metrics.Spec.Ports)
	}
	for k, v := range metrics.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("metrics Service selects %s=%s, which the manager pod does not carry (%v)", k, v, d.Spec.Template.Labels)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
