package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// LocalImage says which local binary plays the container of an operator
// image, so that an operator OLM installs runs for real although kwok runs
// no containers: when kwok runs a pod whose first container has this image,
// the harness starts Binary as a local process with that pod's environment
// and the credentials of its ServiceAccount, and the pod is Ready only while
// the process answers its readiness endpoint.
type LocalImage struct {
	// Repository is the image without its tag.
	Repository string
	// Binary is the program that plays the container.
	Binary string
	// Listen returns what the process needs, beyond the pod's own
	// environment and arguments, to serve its health probes on healthAddr
	// and its metrics on metricsAddr (loopback ports the harness picks, so
	// that processes never collide) and to know what a container would
	// (its namespace, which a pod reads from its ServiceAccount mount):
	// extra environment and the arguments to run with, given the container's.
	Listen func(pod *corev1.Pod, healthAddr, metricsAddr string, args []string) (env, newArgs []string)
}

// PGStackImage is pgstack's manager image as its bundle names it.
const PGStackImage = "pgstack/manager"

// PGStackLocalImage runs pgstack's manager binary for pgstack's image: the
// container's own arguments with the harness's listen addresses, and the
// Lease in the pod's namespace (in a pod, read from the ServiceAccount
// mount, which a local process lacks).
func PGStackLocalImage(binary string) LocalImage {
	return LocalImage{
		Repository: PGStackImage,
		Binary:     binary,
		Listen: func(pod *corev1.Pod, healthAddr, metricsAddr string, args []string) ([]string, []string) {
			var out []string
			for _, a := range args {
				switch {
				case strings.HasPrefix(a, "--health-probe-bind-address="):
					a = "--health-probe-bind-address=" + healthAddr
				case strings.HasPrefix(a, "--metrics-bind-address="):
					a = "--metrics-bind-address=" + metricsAddr
				}
				out = append(out, a)
			}
			return nil, append(out, "--leader-election-namespace="+pod.Namespace)
		},
	}
}

// PGOImage is PGO's operator image; hack/pgo/addresses.go lets the locally
// built manager take its two listen addresses from the environment.
const PGOImage = "registry.developers.crunchydata.com/crunchydata/postgres-operator"

// PGOLocalImage runs PGO's manager (built by `make pgo-bin`) for PGO's image.
// PGO needs no namespace file: OLM's Deployment sets PGO_NAMESPACE.
func PGOLocalImage(binary string) LocalImage {
	return LocalImage{
		Repository: PGOImage,
		Binary:     binary,
		Listen: func(_ *corev1.Pod, healthAddr, metricsAddr string, args []string) ([]string, []string) {
			return []string{"PGO_HEALTH_PROBE_BIND_ADDRESS=" + healthAddr, "PGO_METRICS_BIND_ADDRESS=" + metricsAddr}, args
		},
	}
}

const (
	// readyPath is controller-runtime's readiness endpoint, which both PGO
	// and pgstack serve.
	readyPath = "/readyz"
	// probePeriod is how often a local process's readiness is asked.
	probePeriod = 500 * time.Millisecond
	// tokenLifetime is the lifetime of each bound ServiceAccount token; the
	// harness refreshes it at 80 %. client-go re-reads a kubeconfig's
	// tokenFile, as it does a projected token in a real pod.
	tokenLifetime = time.Hour
	// reasonLocalProcess marks pod conditions the harness writes.
	reasonLocalProcess = "LocalProcess"
)

// localPods runs local processes for the pods of LocalImages.
type localPods struct {
	c         *Cluster
	clientset kubernetes.Interface
	images    []LocalImage
	dir       string

	mu      sync.Mutex
	running map[types.UID]*localPod
	// byOwner is the process of each owner (namespace/Deployment): the next
	// pod of a Deployment starts only once the previous one's has exited.
	byOwner map[string]*localPod
	errs    []error
	kick    chan struct{}
}

// localPod is one pod's process.
type localPod struct {
	key      string // namespace/name
	owner    string
	proc     *process
	cancel   context.CancelFunc
	done     chan struct{} // closed once the process has exited and the pod was told
	stopping bool
}

func (c *Cluster) startLocalPods(ctx context.Context) error {
	if len(c.opts.LocalImages) == 0 {
		return nil
	}
	clientset, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("local pods: client: %w", err)
	}
	lp := &localPods{
		c: c, clientset: clientset, images: c.opts.LocalImages, dir: filepath.Join(c.Dir, "local-pods"),
		running: map[types.UID]*localPod{}, byOwner: map[string]*localPod{}, kick: make(chan struct{}, 1),
	}
	if err := os.MkdirAll(lp.dir, 0o700); err != nil {
		return fmt.Errorf("local pods: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactory(clientset, 0)
	pods := factory.Core().V1().Pods().Informer()
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { lp.wake() },
		UpdateFunc: func(any, any) { lp.wake() },
		DeleteFunc: func(any) { lp.wake() },
	}); err != nil {
		cancel()
		return fmt.Errorf("local pods: watch pods: %w", err)
	}
	factory.Start(runCtx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
		cancel()
		return fmt.Errorf("local pods: pod cache did not sync: %w", ctx.Err())
	}
	go lp.loop(runCtx, pods.GetStore())
	c.localPods = lp
	c.stopLocalPods = func() {
		cancel()
		lp.stopAll()
		factory.Shutdown()
	}
	return nil
}

func (lp *localPods) wake() {
	select {
	case lp.kick <- struct{}{}:
	default:
	}
}

// loop compares the pods kwok runs with the processes that run, on every pod
// event (and every few seconds, so a process whose predecessor exited starts).
func (lp *localPods) loop(ctx context.Context, store cache.Store) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lp.kick:
		case <-tick.C:
		}
		seen := map[types.UID]bool{}
		for _, obj := range store.List() {
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				continue
			}
			image, ok := lp.imageOf(pod)
			if !ok {
				continue
			}
			seen[pod.UID] = true
			lp.sync(ctx, pod, image)
		}
		lp.mu.Lock()
		for uid, p := range lp.running {
			if !seen[uid] && !p.stopping {
				p.stopping = true
				go lp.stop(p, 0)
			}
		}
		lp.mu.Unlock()
	}
}

func (lp *localPods) imageOf(pod *corev1.Pod) (LocalImage, bool) {
	if len(pod.Spec.Containers) == 0 {
		return LocalImage{}, false
	}
	repo := pod.Spec.Containers[0].Image
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	for _, img := range lp.images {
		if img.Repository == repo {
			return img, true
		}
	}
	return LocalImage{}, false
}

// sync starts the pod's process once kwok runs the pod, and stops it when
// the pod is being deleted.
func (lp *localPods) sync(ctx context.Context, pod *corev1.Pod, image LocalImage) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	p := lp.running[pod.UID]
	if pod.DeletionTimestamp != nil {
		if p != nil && !p.stopping {
			p.stopping = true
			grace := 30 * time.Second
			if pod.Spec.TerminationGracePeriodSeconds != nil {
				grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
			}
			go lp.stop(p, grace)
		}
		return
	}
	if p != nil || pod.Spec.NodeName == "" || pod.Status.Phase != corev1.PodRunning {
		return
	}
	owner := ownerKey(pod)
	if prev := lp.byOwner[owner]; prev != nil {
		select {
		case <-prev.done:
		default:
			return // the previous pod's process has not exited yet
		}
	}
	p, err := lp.start(ctx, pod, image)
	if err != nil {
		lp.errs = append(lp.errs, err)
		lp.c.opts.Logf("cluster: %v", err)
		go lp.setReady(pod.Namespace, pod.Name, false, err.Error())
		// Remember the failure so it is reported once, not on every event.
		p = &localPod{key: pod.Namespace + "/" + pod.Name, owner: owner, done: make(chan struct{})}
		close(p.done)
	}
	lp.running[pod.UID] = p
	lp.byOwner[owner] = p
}

// ownerKey is the pod's Deployment (its ReplicaSet's name without the
// pod-template hash), or the pod itself.
func ownerKey(pod *corev1.Pod) string {
	for _, ref := range pod.OwnerReferences {
		if ref.Kind == "ReplicaSet" {
			name := strings.TrimSuffix(ref.Name, "-"+pod.Labels["pod-template-hash"])
			return pod.Namespace + "/" + name
		}
	}
	return pod.Namespace + "/" + pod.Name
}

func (lp *localPods) start(ctx context.Context, pod *corev1.Pod, image LocalImage) (*localPod, error) {
	key := pod.Namespace + "/" + pod.Name
	container := pod.Spec.Containers[0]
	env, err := podEnv(pod, container)
	if err != nil {
		return nil, fmt.Errorf("local pod %s: %w", key, err)
	}
	dir := filepath.Join(lp.dir, pod.Namespace+"."+pod.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("local pod %s: %w", key, err)
	}
	tokenFile := filepath.Join(dir, "token")
	expiry, err := lp.writeToken(ctx, pod, tokenFile)
	if err != nil {
		return nil, fmt.Errorf("local pod %s: %w", key, err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := lp.writeKubeconfig(kubeconfig, tokenFile); err != nil {
		return nil, fmt.Errorf("local pod %s: %w", key, err)
	}
	healthPort, err := freePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	healthAddr := "127.0.0.1:" + strconv.Itoa(healthPort)
	extraEnv, args := image.Listen(pod, healthAddr, "127.0.0.1:"+strconv.Itoa(metricsPort), append(append([]string(nil), container.Command[min(1, len(container.Command)):]...), container.Args...))
	cmd := exec.Command(image.Binary, args...)
	cmd.Dir = dir
	// The pod's environment only, as in a container, plus where to find
	// the API server with the pod's own credentials.
	cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "KUBECONFIG=" + kubeconfig}, env...), extraEnv...)
	name := "pod." + pod.Namespace + "." + pod.Name
	logPath := filepath.Join(lp.c.Dir, "logs", name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("local pod %s: create log: %w", key, err)
	}
	proc, err := launch(name, cmd, logPath, logFile)
	if err != nil {
		return nil, fmt.Errorf("local pod %s: %w", key, err)
	}
	lp.c.opts.Logf("cluster: started %s for pod %s (log %s)", filepath.Base(image.Binary), key, logPath)
	runCtx, cancel := context.WithCancel(context.Background())
	p := &localPod{key: key, owner: ownerKey(pod), proc: proc, cancel: cancel, done: make(chan struct{})}
	go lp.refreshToken(runCtx, pod, tokenFile, expiry)
	go lp.probe(runCtx, p, pod.Namespace, pod.Name, "http://"+healthAddr+readyPath)
	return p, nil
}

// podEnv resolves the container's environment as the kubelet would, for
// the forms an operator Deployment uses: literal values and the pod's own
// fields. Anything else (Secrets, ConfigMaps, envFrom) is refused, so a
// test never runs an operator with an environment it did not ask for.
func podEnv(pod *corev1.Pod, container corev1.Container) ([]string, error) {
	if len(container.EnvFrom) > 0 {
		return nil, errors.New("envFrom is not supported by the local pod runner")
	}
	var env []string
	for _, e := range container.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
			continue
		}
		if e.ValueFrom.FieldRef == nil {
			return nil, fmt.Errorf("env %s: only value and fieldRef are supported by the local pod runner", e.Name)
		}
		var v string
		switch path := e.ValueFrom.FieldRef.FieldPath; path {
		case "metadata.namespace":
			v = pod.Namespace
		case "metadata.name":
			v = pod.Name
		case "metadata.uid":
			v = string(pod.UID)
		case "spec.nodeName":
			v = pod.Spec.NodeName
		case "spec.serviceAccountName":
			v = pod.Spec.ServiceAccountName
		case "status.podIP":
			v = pod.Status.PodIP
		default:
			if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
				v = pod.Labels[strings.TrimSuffix(k, "']")]
			} else if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
				v = pod.Annotations[strings.TrimSuffix(k, "']")]
			} else {
				return nil, fmt.Errorf("env %s: fieldRef %s is not supported by the local pod runner", e.Name, path)
			}
		}
		env = append(env, e.Name+"="+v)
	}
	return env, nil
}

// writeToken asks for a token of the pod's ServiceAccount bound to the pod,
// as the kubelet projects one, and writes it to path.
func (lp *localPods) writeToken(ctx context.Context, pod *corev1.Pod, path string) (time.Time, error) {
	account := pod.Spec.ServiceAccountName
	if account == "" {
		account = "default"
	}
	seconds := int64(tokenLifetime / time.Second)
	tr, err := lp.clientset.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, account, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &seconds,
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("request a token for ServiceAccount %s/%s: %w", pod.Namespace, account, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tr.Status.Token), 0o600); err != nil {
		return time.Time{}, err
	}
	return tr.Status.ExpirationTimestamp.Time, os.Rename(tmp, path)
}

func (lp *localPods) refreshToken(ctx context.Context, pod *corev1.Pod, path string, expiry time.Time) {
	for {
		wait := time.Until(expiry) * 4 / 5
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		next, err := lp.writeToken(ctx, pod, path)
		if err != nil {
			if ctx.Err() == nil {
				lp.c.opts.Logf("cluster: local pod %s/%s: refresh token: %v", pod.Namespace, pod.Name, err)
			}
			next = time.Now().Add(10 * time.Second)
		}
		expiry = next
	}
}

func (lp *localPods) writeKubeconfig(path, tokenFile string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: lp.c.Config.Host, CertificateAuthorityData: lp.c.pki.caPEM}
	cfg.AuthInfos["pod"] = &clientcmdapi.AuthInfo{TokenFile: tokenFile}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "pod"}
	cfg.CurrentContext = "local"
	return clientcmd.WriteToFile(*cfg, path)
}

// probe asks the process's readiness endpoint every probePeriod and keeps
// the pod's Ready condition in step; when the process exits the pod turns
// un-Ready for good and the exit is recorded as an error of the cluster.
func (lp *localPods) probe(ctx context.Context, p *localPod, namespace, name, url string) {
	defer close(p.done)
	client := &http.Client{Timeout: time.Second}
	ready := false
	tick := time.NewTicker(probePeriod)
	defer tick.Stop()
	for {
		select {
		case <-p.proc.done:
			lp.mu.Lock()
			stopping := p.stopping
			if !stopping {
				lp.errs = append(lp.errs, fmt.Errorf("local pod %s: %w", p.key, p.proc.exited()))
			}
			lp.mu.Unlock()
			if !stopping {
				lp.c.opts.Logf("cluster: local pod %s: %v", p.key, p.proc.exited())
				lp.setReady(namespace, name, false, "the process exited: "+p.proc.exited().Error())
			}
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := false
		if resp, err := client.Get(url); err == nil {
			now = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
		if now != ready {
			message := "the process answers " + readyPath
			if !now {
				message = "the process does not answer " + readyPath
			}
			if lp.setReady(namespace, name, now, message) == nil {
				ready = now
			}
		}
	}
}

// setReady writes the pod's Ready and ContainersReady conditions and its
// containers' ready flags, as the kubelet does after a readiness probe.
func (lp *localPods) setReady(namespace, name string, ready bool, message string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pods := lp.clientset.CoreV1().Pods(namespace)
	for attempt := 0; ; attempt++ {
		pod, err := pods.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		now := metav1.Now()
		for _, t := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
			set := false
			for i := range pod.Status.Conditions {
				if pod.Status.Conditions[i].Type == t {
					if pod.Status.Conditions[i].Status != status {
						pod.Status.Conditions[i].LastTransitionTime = now
					}
					pod.Status.Conditions[i].Status, pod.Status.Conditions[i].Reason, pod.Status.Conditions[i].Message = status, reasonLocalProcess, message
					set = true
				}
			}
			if !set {
				pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
					Type: t, Status: status, Reason: reasonLocalProcess, Message: message, LastTransitionTime: now,
				})
			}
		}
		for i := range pod.Status.ContainerStatuses {
			pod.Status.ContainerStatuses[i].Ready = ready
		}
		_, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		if err == nil || !apierrors.IsConflict(err) || attempt > 5 {
			return err
		}
	}
}

// stop ends a pod's process: SIGTERM, then SIGKILL after grace.
func (lp *localPods) stop(p *localPod, grace time.Duration) {
	if p.proc != nil {
		p.proc.stop(max(grace, time.Second))
		lp.c.opts.Logf("cluster: stopped the process of pod %s", p.key)
	}
	if p.cancel != nil {
		<-p.done
		p.cancel()
	}
	lp.mu.Lock()
	for uid, q := range lp.running {
		if q == p {
			delete(lp.running, uid)
		}
	}
	lp.mu.Unlock()
}

func (lp *localPods) stopAll() {
	lp.mu.Lock()
	var all []*localPod
	for _, p := range lp.running {
		if !p.stopping {
			p.stopping = true
			all = append(all, p)
		}
	}
	lp.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() { defer wg.Done(); lp.stop(p, 5*time.Second) }()
	}
	wg.Wait()
}

// LocalPodErrors are the failures of the local processes that played
// operator pods: an environment that could not be resolved, a token that
// could not be had, a process that exited while its pod still ran. A suite
// that runs an operator this way fails when there is any.
func (c *Cluster) LocalPodErrors() []error {
	if c.localPods == nil {
		return nil
	}
	c.localPods.mu.Lock()
	defer c.localPods.mu.Unlock()
	return append([]error(nil), c.localPods.errs...)
}
