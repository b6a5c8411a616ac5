// Package cluster starts a local Kubernetes for pgstack's tests, demo and
// benchmark: real processes on loopback, built from Go modules into bin/.
//
// Minimal is etcd and kube-apiserver with pgstack's, OLM's and PGO's CRDs
// (what test/testenv gives envtest suites). Full adds
// kube-controller-manager, kube-scheduler, kwok with fake nodes (pods become
// Ready without containers), OLM v0's olm and catalog operators and
// `opm serve` with a catalog this package generates, wired the way
// OperatorHub's OLM install is: namespaces olm and operators, OperatorGroup
// global-operators (AllNamespaces) and CatalogSource operatorhubio-catalog.
//
// Every process runs in its own process group with a parent-death signal;
// Stop ends exactly those and removes the cluster's temporary directory.
package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/pgstack/pgstack/test/cluster/catalog"
	"github.com/pgstack/pgstack/test/insides"
	"github.com/pgstack/pgstack/test/testenv"
)

// Names of what the full cluster sets up, as OperatorHub's OLM install does.
const (
	OLMNamespace        = "olm"
	OperatorsNamespace  = "operators"
	GlobalOperatorGroup = "global-operators"
	CatalogSource       = "operatorhubio-catalog"
	// PGOUser is the ServiceAccount OLM makes from PGO's CSV in the
	// operators namespace, as the API server (and its audit log) names it.
	PGOUser = "system:serviceaccount:" + OperatorsNamespace + ":pgo"
)

// Environment variables naming where the binaries are (the Makefile exports
// them); when unset, the harness looks under the repository's bin/.
const (
	KubeAssetsEnv = "KUBEBUILDER_ASSETS"   // etcd, kube-apiserver, kube-controller-manager, kube-scheduler
	OLMAssetsEnv  = "PGSTACK_OLM_ASSETS"   // olm, catalog, opm
	KwokAssetsEnv = "PGSTACK_KWOK_ASSETS"  // kwok, stages.yaml
	PGOAssetsEnv  = "PGSTACK_PGO_ASSETS"   // postgres-operator (PGO's manager, `make pgo-bin`)
	KeepDirEnv    = "PGSTACK_CLUSTER_KEEP" // set to keep the temporary directory (logs) after Stop
)

const (
	etcdMaxRequestBytes = "8388608" // InstallPlans carry PGO's 1.4 MB CRD
	serviceCIDR         = "10.96.0.0/16"
	podCIDR             = "10.244.0.0/16" // kwok's pod IPs; must not overlap serviceCIDR
	stopGrace           = 10 * time.Second
)

// Options shape a cluster. The zero value is a sensible default.
type Options struct {
	// Nodes is how many kwok nodes the full cluster gets (default 3).
	Nodes int
	// Packages are what the catalog serves (default: PGO's package with
	// catalog.PGOVersions, owning PGO's CRDs).
	Packages []catalog.Package
	// StartTimeout bounds the whole start (default 3 minutes).
	StartTimeout time.Duration
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
	// APIServerArgs are extra kube-apiserver flags, such as the audit log
	// test/bench counts the manager's writes with.
	APIServerArgs []string
	// LocalImages are operator images whose pods the full cluster plays
	// with local processes, beside PGO's (always: its manager built by
	// `make pgo-bin` runs for PGO's image).
	LocalImages []LocalImage
	// PodStarts change how kwok starts some pods (by default at once, and
	// Ready): the first whose Match selects a pod decides.
	PodStarts []PodStart
}

// PodStart is how kwok starts the pods a jq expression selects: after
// Delay, Ready or not. It plays what a container's start takes (a
// database's recovery), or an image that never starts.
type PodStart struct {
	// Match is a jq expression over the pod that is true for the pods
	// meant, such as `.metadata.namespace | startswith("wave-")`.
	Match string
	Delay time.Duration
	// NeverReady: the pod runs, and is never Ready.
	NeverReady bool
	// Fails: the pod's containers exit 1 and the pod fails (a Job's pod
	// whose command fails; a Job with backoffLimit 0 fails with it).
	Fails bool
	// reason is the Ready condition's reason while not Ready.
	reason string
}

// Cluster is a running local cluster.
type Cluster struct {
	// Config reaches the API server as a cluster administrator.
	Config *rest.Config
	// Kubeconfig is a file with the same credentials, for kubectl and the
	// processes the harness starts.
	Kubeconfig string
	// Client knows testenv.NewScheme()'s types.
	Client    client.Client
	Scheme    *k8sruntime.Scheme
	PGOSchema testenv.PGOSchema
	// Dir holds the cluster's data, certificates and process logs
	// (logs/<process>.log); Stop removes it.
	Dir string
	// CatalogAddress is where opm serve listens (the CatalogSource's spec.address).
	CatalogAddress string

	opts     Options
	bins     binaries
	pki      *pki
	full     bool
	stopOnce sync.Once

	localPods     *localPods
	stopLocalPods func()
	patroni       *insides.Patroni
	stopPatroni   func()

	mu       sync.Mutex
	procs    []*process
	opm      *process
	packages []catalog.Package
	catalogN int
	etcdURL  string
}

// StartMinimal runs etcd and kube-apiserver with pgstack's, OLM's and PGO's CRDs.
func StartMinimal(ctx context.Context, opts Options) (*Cluster, error) {
	return start(ctx, opts, false)
}

// StartFull runs the whole local cluster with real OLM (see the package doc).
func StartFull(ctx context.Context, opts Options) (*Cluster, error) {
	return start(ctx, opts, true)
}

func start(ctx context.Context, opts Options, full bool) (*Cluster, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 3 * time.Minute
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	bins, err := findBinaries(full)
	if err != nil {
		return nil, err
	}
	schema, err := testenv.FindPGOSchema()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgstack-cluster-")
	if err != nil {
		return nil, fmt.Errorf("create cluster directory: %w", err)
	}
	c := &Cluster{Dir: dir, opts: opts, bins: bins, full: full, PGOSchema: schema}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	begin := time.Now()
	if err := c.start(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	opts.Logf("cluster: up in %s (%s)", time.Since(begin).Round(100*time.Millisecond), c.Dir)
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	logs := filepath.Join(c.Dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	var err error
	if c.pki, err = newPKI(c.Dir); err != nil {
		return fmt.Errorf("generate certificates: %w", err)
	}
	if err := c.startEtcd(ctx); err != nil {
		return err
	}
	if err := c.startAPIServer(ctx); err != nil {
		return err
	}
	if err := c.installCRDs(); err != nil {
		return err
	}
	if !c.full {
		return nil
	}
	if err := c.startControllers(ctx); err != nil {
		return err
	}
	c.opts.LocalImages = append([]LocalImage{PGOLocalImage(c.bins.pgo)}, c.opts.LocalImages...)
	if err := c.startLocalPods(ctx); err != nil {
		return err
	}
	if err := c.startPatroni(); err != nil {
		return err
	}
	return c.startOLM(ctx)
}

// run starts a process and remembers it for Stop.
func (c *Cluster) run(name, bin string, args, env []string) (*process, error) {
	c.opts.Logf("cluster: starting %s", name)
	p, err := startProcess(name, bin, args, env, filepath.Join(c.Dir, "logs"))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	return c.onFreePorts(ctx, 2, func(attempt int, ports []int) (*process, error) {
		clientURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
		peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
		// A fresh data directory each try: etcd keeps the peer URL it
		// first started with there.
		p, err := c.run("etcd", c.bins.etcd, []string{
			"--data-dir", filepath.Join(c.Dir, fmt.Sprintf("etcd-%d", attempt)),
			"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "default=" + peerURL,
			"--max-request-bytes", etcdMaxRequestBytes,
			"--unsafe-no-fsync", // a throwaway test store
		}, nil)
		if err != nil {
			return nil, fmt.Errorf("start etcd: %w", err)
		}
		c.etcdURL = clientURL
		return p, nil
	}, func(p *process) error {
		return waitFor(ctx, "etcd", 100*time.Millisecond, []*process{p}, func(ctx context.Context) (bool, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.etcdURL+"/health", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		})
	})
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	if err := c.onFreePorts(ctx, 1, func(_ int, ports []int) (*process, error) {
		server := "https://127.0.0.1:" + strconv.Itoa(ports[0])
		p, err := c.run("kube-apiserver", c.bins.apiserver, append([]string{
			"--etcd-servers", c.etcdURL,
			"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
			"--secure-port", strconv.Itoa(ports[0]),
			"--cert-dir", filepath.Join(c.Dir, "apiserver-certs"),
			"--tls-cert-file", c.pki.ServingCert, "--tls-private-key-file", c.pki.ServingKey,
			"--client-ca-file", c.pki.CACert,
			"--service-account-issuer", server,
			"--service-account-key-file", c.pki.SAPub,
			"--service-account-signing-key-file", c.pki.SAKey,
			"--service-cluster-ip-range", serviceCIDR,
			"--authorization-mode", "RBAC",
			"--allow-privileged",
			// Loopback cannot be the kubernetes Service's endpoint, and nothing
			// in this cluster runs in a pod that would call it.
			"--endpoint-reconciler-type", "none",
			// Exec reaches kwok's kubelet server at the node's InternalIP and
			// the port kwok writes into the node (--node-port below); kwok's
			// certificate is not verified, as without a kubelet CA flag.
			"--kubelet-preferred-address-types", "InternalIP",
		}, c.opts.APIServerArgs...), nil)
		if err != nil {
			return nil, fmt.Errorf("start kube-apiserver: %w", err)
		}
		c.Config = &rest.Config{
			Host: server,
			TLSClientConfig: rest.TLSClientConfig{
				CAData: c.pki.caPEM, CertData: c.pki.adminCertPEM, KeyData: c.pki.adminKeyPEM,
			},
			// Scenarios create hundreds of objects; client-side throttling
			// would only slow them down on a private API server.
			QPS: 200, Burst: 400,
		}
		return p, nil
	}, func(p *process) error {
		clientset, err := kubernetes.NewForConfig(c.Config)
		if err != nil {
			return fmt.Errorf("kube-apiserver client: %w", err)
		}
		return waitFor(ctx, "kube-apiserver /readyz", 200*time.Millisecond, []*process{p}, func(ctx context.Context) (bool, error) {
			body, err := clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err == nil && string(body) == "ok", err
		})
	}); err != nil {
		return err
	}
	c.Scheme = testenv.NewScheme()
	var err error
	if c.Client, err = client.New(c.Config, client.Options{Scheme: c.Scheme}); err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	return c.WriteKubeconfig(c.Kubeconfig)
}

// WriteKubeconfig writes a kubeconfig reaching the cluster as administrator.
func (c *Cluster) WriteKubeconfig(path string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["pgstack-local"] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: c.pki.caPEM}
	cfg.AuthInfos["pgstack-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.pki.adminCertPEM, ClientKeyData: c.pki.adminKeyPEM}
	cfg.Contexts["pgstack-local"] = &clientcmdapi.Context{Cluster: "pgstack-local", AuthInfo: "pgstack-admin"}
	cfg.CurrentContext = "pgstack-local"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// installCRDs installs pgstack's and OLM's CRDs, and in the minimal cluster
// PGO's too; in the full cluster PGO's CRDs arrive the way they do for
// users: OLM installs them with PGO's CSV.
func (c *Cluster) installCRDs() error {
	paths := []string{filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")}
	if !c.full {
		paths = append(paths, c.PGOSchema.Dir)
	}
	_, err := envtest.InstallCRDs(c.Config, envtest.CRDInstallOptions{
		Scheme: c.Scheme,
		CRDs:   testenv.OLMCRDs(),
		Paths:  paths,
		// envtest's 10 s default is short for a shared 2-core machine.
		MaxTime: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	return nil
}

func (c *Cluster) startControllers(ctx context.Context) error {
	kcm, err := c.run("kube-controller-manager", c.bins.controllerManager, []string{
		"--kubeconfig", c.Kubeconfig,
		"--leader-elect=false",
		"--secure-port", "0",
		"--service-account-private-key-file", c.pki.SAKey,
		"--root-ca-file", c.pki.CACert,
		"--use-service-account-credentials=false",
		"--service-cluster-ip-range", serviceCIDR,
		// Real provisioning for PGO's PersistentVolumeClaims: the
		// controller manager's own host-path provisioner (directories
		// under /tmp/hostpath_pv), through the default StorageClass below.
		"--enable-hostpath-provisioner",
	}, nil)
	if err != nil {
		return fmt.Errorf("start kube-controller-manager: %w", err)
	}
	scheduler, err := c.run("kube-scheduler", c.bins.scheduler, []string{
		"--kubeconfig", c.Kubeconfig,
		"--leader-elect=false",
		"--secure-port", "0",
	}, nil)
	if err != nil {
		return fmt.Errorf("start kube-scheduler: %w", err)
	}
	kwokPort, err := freePort()
	if err != nil {
		return err
	}
	insides, err := c.prepareInsides()
	if err != nil {
		return err
	}
	kwok, err := c.run("kwok", c.bins.kwok, []string{
		"--kubeconfig", c.Kubeconfig,
		"--config", c.bins.kwokStages,
		"--config", insides.kwokConfig,
		"--manage-all-nodes",
		"--cidr", podCIDR,
		"--node-ip", "127.0.0.1",
		"--node-lease-duration-seconds", "40",
		"--server-address", "127.0.0.1:" + strconv.Itoa(kwokPort),
		"--node-port", strconv.Itoa(kwokPort),
	}, insides.kwokEnv)
	if err != nil {
		return fmt.Errorf("start kwok: %w", err)
	}
	for i := 0; i < c.opts.Nodes; i++ {
		if err := c.Client.Create(ctx, kwokNode(fmt.Sprintf("kwok-node-%d", i))); err != nil {
			return fmt.Errorf("create kwok node %d: %w", i, err)
		}
	}
	for _, ns := range []string{OLMNamespace, OperatorsNamespace} {
		if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	if err := c.Client.Create(ctx, defaultStorageClass()); err != nil {
		return fmt.Errorf("create StorageClass: %w", err)
	}
	watched := []*process{kcm, scheduler, kwok}
	// Pods are admitted only once their namespace's default ServiceAccount
	// exists; OLM must not create Deployments before that.
	for _, ns := range []string{OLMNamespace, OperatorsNamespace, "default"} {
		if err := c.waitForDefaultServiceAccount(ctx, ns, watched); err != nil {
			return err
		}
	}
	return waitFor(ctx, "kwok nodes Ready", 200*time.Millisecond, watched, func(ctx context.Context) (bool, error) {
		nodes := &corev1.NodeList{}
		if err := c.Client.List(ctx, nodes); err != nil {
			return false, err
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == c.opts.Nodes, nil
	})
}

// kwokNode is a fake node kwok manages. It carries no taint, so operator
// pods schedule on it without tolerations. It holds 1,000 pods, not a
// kubelet's default 110: a PostgresCluster of PGO's runs two pods (its
// instance and its repository host), and `make bench` brings up 1,100 of
// them on the default three nodes (with 110 each, 1,935 pods stayed
// Pending: "Too many pods").
func kwokNode(name string) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
			},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
}

func (c *Cluster) waitForDefaultServiceAccount(ctx context.Context, ns string, watched []*process) error {
	return waitFor(ctx, "ServiceAccount "+ns+"/default", 100*time.Millisecond, watched, func(ctx context.Context) (bool, error) {
		err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "default"}, &corev1.ServiceAccount{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// CreateNamespace creates a namespace and waits until pods can be admitted
// in it (its default ServiceAccount exists).
func (c *Cluster) CreateNamespace(ctx context.Context, name string) error {
	err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return c.waitForDefaultServiceAccount(ctx, name, c.processes())
}

func (c *Cluster) startOLM(ctx context.Context) error {
	if len(c.opts.Packages) == 0 {
		pgo, err := catalog.PGO()
		if err != nil {
			return err
		}
		c.opts.Packages = []catalog.Package{pgo}
	}
	c.packages = append([]catalog.Package(nil), c.opts.Packages...)
	port, err := freePort()
	if err != nil {
		return err
	}
	c.CatalogAddress = "127.0.0.1:" + strconv.Itoa(port)
	if err := c.serveCatalog(ctx); err != nil {
		return err
	}
	env := []string{"KUBECONFIG=" + c.Kubeconfig, "OPERATOR_NAMESPACE=" + OLMNamespace, "OPERATOR_NAME=olm-operator"}
	// Both operators serve health and metrics on :8080 unless they serve
	// TLS (then :8443): olm gets a certificate, catalog keeps :8080. Both
	// only log when the port is taken (another local cluster), so they
	// never collide fatally.
	olm, err := c.run("olm", c.bins.olm, []string{
		"--namespace", OLMNamespace,
		"--tls-cert", c.pki.ServingCert, "--tls-key", c.pki.ServingKey,
	}, env)
	if err != nil {
		return fmt.Errorf("start OLM's olm operator: %w", err)
	}
	catalogOp, err := c.run("catalog", c.bins.catalog, []string{
		"--namespace", OLMNamespace,
		"--kubeconfig", c.Kubeconfig,
	}, env)
	if err != nil {
		return fmt.Errorf("start OLM's catalog operator: %w", err)
	}
	og := &operatorsv1.OperatorGroup{ObjectMeta: metav1.ObjectMeta{Name: GlobalOperatorGroup, Namespace: OperatorsNamespace}}
	if err := c.Client.Create(ctx, og); err != nil {
		return fmt.Errorf("create OperatorGroup %s: %w", GlobalOperatorGroup, err)
	}
	cs := &operatorsv1alpha1.CatalogSource{
		ObjectMeta: metav1.ObjectMeta{Name: CatalogSource, Namespace: OLMNamespace},
		Spec: operatorsv1alpha1.CatalogSourceSpec{
			SourceType:  operatorsv1alpha1.SourceTypeGrpc,
			Address:     c.CatalogAddress,
			DisplayName: "Community Operators (pgstack local catalog)",
			Publisher:   "pgstack",
		},
	}
	if err := c.Client.Create(ctx, cs); err != nil {
		return fmt.Errorf("create CatalogSource %s: %w", CatalogSource, err)
	}
	watched := append(c.processes(), olm, catalogOp)
	if err := waitFor(ctx, "OperatorGroup "+GlobalOperatorGroup+" to target all namespaces", 200*time.Millisecond, watched, func(ctx context.Context) (bool, error) {
		got := &operatorsv1.OperatorGroup{}
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(og), got); err != nil {
			return false, err
		}
		return len(got.Status.Namespaces) == 1 && got.Status.Namespaces[0] == corev1.NamespaceAll, nil
	}); err != nil {
		return err
	}
	return c.waitForCatalogReady(ctx)
}

// waitForCatalogReady waits until OLM's catalog operator reports a READY
// connection to opm serve.
func (c *Cluster) waitForCatalogReady(ctx context.Context) error {
	// The processes are read on every look, not once: a process restarted
	// meanwhile (RestartProcess, as the reliability suite does at random
	// points) is replaced in the list, and its stopped predecessor is no
	// reason to give up.
	return waitFor(ctx, "CatalogSource "+CatalogSource+" READY", 200*time.Millisecond, nil, func(ctx context.Context) (bool, error) {
		for _, p := range c.processes() {
			if err := p.exited(); err != nil {
				return false, err
			}
		}
		got := &operatorsv1alpha1.CatalogSource{}
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: OLMNamespace, Name: CatalogSource}, got); err != nil {
			return false, err
		}
		return got.Status.GRPCConnectionState != nil && got.Status.GRPCConnectionState.LastObservedState == "READY", nil
	})
}

// serveCatalog writes the current packages into a fresh catalog directory
// and starts opm serve on CatalogAddress.
func (c *Cluster) serveCatalog(ctx context.Context) error {
	c.mu.Lock()
	c.catalogN++
	dir := filepath.Join(c.Dir, fmt.Sprintf("catalog-%d", c.catalogN))
	pkgs := append([]catalog.Package(nil), c.packages...)
	c.mu.Unlock()
	if err := catalog.Write(dir, pkgs...); err != nil {
		return fmt.Errorf("write catalog: %w", err)
	}
	_, port, _ := strings.Cut(c.CatalogAddress, ":")
	p, err := c.run(opmServe, c.bins.opm, []string{
		"serve", dir,
		"--port", port,
		"--pprof-addr=", // its default localhost:6060 would collide between clusters
		"--termination-log", filepath.Join(c.Dir, "logs", "opm-termination.log"),
	}, nil)
	if err != nil {
		return fmt.Errorf("start opm serve: %w", err)
	}
	c.mu.Lock()
	c.opm = p
	c.mu.Unlock()
	return waitFor(ctx, "opm serve on "+c.CatalogAddress, 100*time.Millisecond, []*process{p}, func(ctx context.Context) (bool, error) {
		return dialable(ctx, c.CatalogAddress), nil
	})
}

func (c *Cluster) processes() []*process {
	c.mu.Lock()
	defer c.mu.Unlock()
	var running []*process
	for _, p := range c.procs {
		// Earlier opm serve processes were stopped on purpose.
		if p.name == opmServe && p != c.opm {
			continue
		}
		running = append(running, p)
	}
	return running
}

// Packages are the packages the catalog serves now.
func (c *Cluster) Packages() []catalog.Package {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]catalog.Package(nil), c.packages...)
}

// Publish replaces (by name) or adds packages in the catalog and restarts
// opm serve on the same address, so OLM sees the new content the way it
// sees a catalog update: through the CatalogSource's connection.
func (c *Cluster) Publish(ctx context.Context, pkgs ...catalog.Package) error {
	c.mu.Lock()
	for _, p := range pkgs {
		replaced := false
		for i := range c.packages {
			if c.packages[i].Name == p.Name {
				c.packages[i] = p
				replaced = true
			}
		}
		if !replaced {
			c.packages = append(c.packages, p)
		}
	}
	c.mu.Unlock()
	c.StopCatalog()
	return c.StartCatalog(ctx)
}

// PublishVersion appends version to package pkg's channel (it replaces the
// current head) and serves the new catalog.
func (c *Cluster) PublishVersion(ctx context.Context, pkg, version string) error {
	for _, p := range c.Packages() {
		if p.Name == pkg {
			p.Versions = append(append([]string(nil), p.Versions...), version)
			return c.Publish(ctx, p)
		}
	}
	return fmt.Errorf("publish %s %s: the catalog has no package %s", pkg, version, pkg)
}

// StopCatalog stops opm serve: OLM then finds the CatalogSource unhealthy.
func (c *Cluster) StopCatalog() {
	c.mu.Lock()
	p := c.opm
	c.opm = nil
	c.mu.Unlock()
	if p != nil {
		p.stop(stopGrace)
	}
}

// StartCatalog serves the catalog again on the same address and waits until
// OLM reports the connection READY.
func (c *Cluster) StartCatalog(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.serveCatalog(ctx); err != nil {
		return err
	}
	return c.waitForCatalogReady(ctx)
}

// PIDs are the process ids (and process group ids) of every process the
// harness started that still runs.
func (c *Cluster) PIDs() []int {
	var pids []int
	for _, p := range c.processes() {
		if p.exited() == nil {
			pids = append(pids, p.pid())
		}
	}
	sort.Ints(pids)
	return pids
}

// Stop ends every process the harness started, newest first, and removes
// Dir (unless PGSTACK_CLUSTER_KEEP is set). It is safe to call more than once.
func (c *Cluster) Stop() error {
	var err error
	c.stopOnce.Do(func() {
		// Operators first, while the API server still answers them.
		if c.stopLocalPods != nil {
			c.stopLocalPods()
		}
		if c.stopPatroni != nil {
			c.stopPatroni()
		}
		c.mu.Lock()
		procs := append([]*process(nil), c.procs...)
		c.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop(stopGrace)
		}
		if os.Getenv(KeepDirEnv) != "" {
			c.opts.Logf("cluster: stopped; kept %s", c.Dir)
			return
		}
		if rmErr := os.RemoveAll(c.Dir); rmErr != nil {
			err = fmt.Errorf("remove cluster directory: %w", rmErr)
		}
	})
	return err
}

// StopOnSignal stops the cluster and exits when the process receives
// SIGINT or SIGTERM, so an interrupted test run or command leaves nothing
// behind. (A SIGKILL cannot be caught; the parent-death signal covers it.)
func (c *Cluster) StopOnSignal() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-signals
		c.opts.Logf("cluster: %s: stopping", sig)
		_ = c.Stop()
		os.Exit(130)
	}()
}

// LogTail is the end of a process's log (e.g. "olm", "catalog",
// "kube-controller-manager"), for failure messages.
func (c *Cluster) LogTail(name string, lines int) string {
	data, err := os.ReadFile(filepath.Join(c.Dir, "logs", name+".log"))
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
