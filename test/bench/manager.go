package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/pgstack/pgstack/internal/testenv"
	"github.com/pgstack/pgstack/test/cluster"
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

// managerProcess is pgstack's manager binary, run as its own process.
type managerProcess struct {
	cmd        *exec.Cmd
	done       chan struct{} // closed once the process is reaped
	metricsURL string
	logPath    string
}

// startManager runs the manager with plain-HTTP metrics on a loopback port.
func startManager(binary, kubeconfig, logPath string, extraArgs []string) (*managerProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	metricsAddr := "127.0.0.1:" + strconv.Itoa(port)
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create manager log: %w", err)
	}
	args := append([]string{"manager", "--metrics-bind-address=" + metricsAddr, "--metrics-secure=false", "--health-probe-bind-address=0"}, extraArgs...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and it dies with the bench even on SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start the manager %s: %w", binary, err)
	}
	m := &managerProcess{cmd: cmd, done: make(chan struct{}), metricsURL: "http://" + metricsAddr + "/metrics", logPath: logPath}
	go func() { _ = cmd.Wait(); logFile.Close(); close(m.done) }()
	return m, nil
}

// waitServing waits until the manager's metrics endpoint answers.
func (m *managerProcess) waitServing(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		if _, err := m.scrape(ctx); err == nil {
			return nil
		}
		select {
		case <-m.done:
			return fmt.Errorf("the manager exited (log: %s)", m.logPath)
		case <-ctx.Done():
			return fmt.Errorf("the manager's metrics endpoint %s did not answer within %s (log: %s)", m.metricsURL, timeout, m.logPath)
		case <-ticker.C:
		}
	}
}

// exited says whether the manager has ended, which no phase expects.
func (m *managerProcess) exited() error {
	select {
	case <-m.done:
		return fmt.Errorf("the manager exited (log: %s)", m.logPath)
	default:
		return nil
	}
}

// stop ends the manager's process group, killing it after a grace period.
func (m *managerProcess) stop() {
	_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

// peakRSSMiB is the manager's peak resident set (VmHWM), in MiB.
func (m *managerProcess) peakRSSMiB() (float64, error) {
	path := fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid)
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read the manager's peak RSS: %w", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "VmHWM:"); ok {
			fields := strings.Fields(rest) // "12345 kB"
			kib, err := strconv.ParseFloat(fields[0], 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", rest, err)
			}
			return kib / 1024, nil
		}
	}
	return 0, fmt.Errorf("%s has no VmHWM line", path)
}

func (m *managerProcess) scrape(ctx context.Context) (metricsSnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.metricsURL, nil)
	if err != nil {
		return metricsSnapshot{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return metricsSnapshot{}, fmt.Errorf("scrape %s: %w", m.metricsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return metricsSnapshot{}, fmt.Errorf("scrape %s: %s", m.metricsURL, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
