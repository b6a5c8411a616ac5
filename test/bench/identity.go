package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/test/cluster"
	"github.com/pgstack/pgstack/test/testenv"
)

// The manager runs as its own ServiceAccount, bound to the ClusterRole the
// project deploys (config/rbac/role.yaml), so that the audit log can tell its
// writes from everyone else's by user name.
const (
	managerNamespace      = "default"
	managerServiceAccount = "pgstack-manager"
	managerUser           = "system:serviceaccount:" + managerNamespace + ":" + managerServiceAccount
	managerRoleBinding    = "pgstack-bench-manager"
)

// managerKubeconfig creates the manager's ServiceAccount and role binding and
// writes a kubeconfig holding a token for it.
func managerKubeconfig(ctx context.Context, lc *cluster.Cluster, path string) error {
	roleYAML, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		return fmt.Errorf("read the manager's ClusterRole: %w", err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(roleYAML, role); err != nil {
		return fmt.Errorf("decode config/rbac/role.yaml: %w", err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: managerServiceAccount, Namespace: managerNamespace}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: managerRoleBinding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}},
	}
	if err := lc.Client.Create(ctx, role); err != nil {
		return fmt.Errorf("create ClusterRole %s: %w", role.Name, err)
	}
	if err := lc.Client.Create(ctx, sa); err != nil {
		return fmt.Errorf("create ServiceAccount %s: %w", sa.Name, err)
	}
	if err := lc.Client.Create(ctx, binding); err != nil {
		return fmt.Errorf("create ClusterRoleBinding %s: %w", binding.Name, err)
	}
	clientset, err := kubernetes.NewForConfig(lc.Config)
	if err != nil {
		return fmt.Errorf("clientset: %w", err)
	}
	expiry := int64((6 * time.Hour).Seconds())
	token, err := clientset.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("request a token for %s: %w", managerUser, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["bench"] = &clientcmdapi.Cluster{Server: lc.Config.Host, CertificateAuthorityData: lc.Config.CAData}
	cfg.AuthInfos["manager"] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	cfg.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "manager"}
	cfg.CurrentContext = "bench"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write the manager's kubeconfig: %w", err)
	}
	return nil
}
