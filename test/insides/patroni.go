package insides

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// What Patroni, as PGO configures it, writes on the Kubernetes API
// (PGO internal/patroni/config.go:54-71: Kubernetes DCS on Endpoints,
// role_label postgres-operator.crunchydata.com/role, leader_label_value
// and standby_leader_label_value "master", scope <cluster>-ha).
const (
	labelCluster  = "postgres-operator.crunchydata.com/cluster"
	labelPatroni  = "postgres-operator.crunchydata.com/patroni"
	labelInstance = "postgres-operator.crunchydata.com/instance"
	labelRole     = "postgres-operator.crunchydata.com/role"
	roleLeader    = "master"
	roleReplica   = "replica"
	// annotationStatus is Patroni's member record on its pod, which PGO
	// reads to find the writable primary (PGO
	// internal/controller/postgrescluster/instance.go:122-138) and the
	// standby leader (internal/patroni/reconcile.go:193-205).
	annotationStatus = "status"
	// annotationInitialize on the <scope>-config Endpoints is the system
	// identifier Patroni writes once the cluster is bootstrapped; PGO copies
	// it to status.patroni.systemIdentifier (PGO
	// internal/controller/postgrescluster/patroni.go:325-343).
	annotationInitialize = "initialize"
	// annotationLeader on the <scope> Endpoints names the leader (Patroni
	// patroni/dcs/kubernetes.py); PGO only checks that it exists (PGO
	// internal/controller/postgrescluster/pgbackrest.go:925-948).
	annotationLeader  = "leader"
	containerDatabase = "database"
)

var postgresClusters = schema.GroupVersionResource{Group: "postgres-operator.crunchydata.com", Version: "v1beta1", Resource: "postgresclusters"}

// memberStatus is the JSON Patroni 4 writes to its pod's status annotation
// (compact, as Python's json.dumps with separators (',', ':') does; PGO
// matches `"role":"primary"` byte for byte).
type memberStatus struct {
	ConnURL  string `json:"conn_url"`
	APIURL   string `json:"api_url"`
	State    string `json:"state"`
	Role     string `json:"role"`
	Version  string `json:"version"`
	XLog     int64  `json:"xlog_location"`
	Timeline int    `json:"timeline"`
}

// Patroni plays Patroni for every PostgreSQL instance pod PGO creates:
// once an instance pod runs, one running pod per cluster becomes the leader
// (the one the leader key in the <scope> Endpoints names, which a
// switchover moves, else the one that already is, else the startup
// instance PGO names, else the first by name) and the others replicas, each with Patroni's role label and
// status annotation; the leader of a standby cluster is a standby leader.
// Once a leader runs, the cluster's <scope>-config Endpoints carries an
// initialize value and <scope> names the leader, as after Patroni's
// bootstrap. Endpoints are never recreated while no instance runs (PGO
// deletes them during a restore or a major upgrade and waits for that).
type Patroni struct {
	clientset kubernetes.Interface
	dynamic   dynamic.Interface
	logf      func(string, ...any)

	mu   sync.Mutex
	errs []error
	kick chan struct{}
	// settled is, by cluster, the pods (uid and resourceVersion) as of the
	// last sync that found nothing to write: a cluster whose pods have not
	// changed since is not read again, so the stand-in costs the API
	// server nothing in steady state (make bench runs it beside pgstack).
	settled map[clusterKey]string
	// writes counts what the stand-in wrote (only its loop touches it).
	writes int
}

// StartPatroni runs the Patroni stand-in against cfg until ctx ends.
func StartPatroni(ctx context.Context, cfg *rest.Config, logf func(string, ...any)) (*Patroni, error) {
	// Patroni keeps its DCS on Endpoints, which the API server flags as
	// deprecated on every write; that warning says nothing to a test run.
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = rest.NoWarnings{}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("patroni stand-in: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("patroni stand-in: %w", err)
	}
	p := &Patroni{clientset: clientset, dynamic: dyn, logf: logf, kick: make(chan struct{}, 1), settled: map[clusterKey]string{}}
	factory := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = labelPatroni
	}))
	pods := factory.Core().V1().Pods().Informer()
	wake := func() {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { wake() }, UpdateFunc: func(any, any) { wake() }, DeleteFunc: func(any) { wake() },
	}); err != nil {
		return nil, fmt.Errorf("patroni stand-in: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
		return nil, fmt.Errorf("patroni stand-in: pod cache did not sync")
	}
	go func() {
		defer factory.Shutdown()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.kick:
			case <-tick.C:
			}
			p.syncAll(ctx, pods.GetStore())
		}
	}()
	return p, nil
}

// Errors are the writes the API server refused the stand-in (other than
// conflicts and objects gone meanwhile); what failed because the API server
// was away (the reliability suite restarts it) is retried on the next tick.
func (p *Patroni) Errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.errs...)
}

type clusterKey struct{ namespace, name string }

func (p *Patroni) syncAll(ctx context.Context, store cache.Store) {
	byCluster := map[clusterKey][]*corev1.Pod{}
	for _, obj := range store.List() {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Labels[labelCluster] == "" || pod.Labels[labelInstance] == "" {
			continue
		}
		k := clusterKey{pod.Namespace, pod.Labels[labelCluster]}
		byCluster[k] = append(byCluster[k], pod)
	}
	for k := range p.settled {
		if byCluster[k] == nil {
			delete(p.settled, k)
		}
	}
	for k, pods := range byCluster {
		seen := podsVersion(pods)
		if p.settled[k] == seen {
			continue
		}
		before := p.writes
		err := p.sync(ctx, k, pods)
		wrote := p.writes != before
		switch {
		case err != nil && ctx.Err() == nil && refused(err):
			p.mu.Lock()
			p.errs = append(p.errs, err)
			p.mu.Unlock()
			p.logf("patroni stand-in: %v", err)
		case err == nil && !wrote:
			p.settled[k] = seen
		}
	}
}

// podsVersion identifies the state of a cluster's pods as the API server
// last reported it.
func podsVersion(pods []*corev1.Pod) string {
	keys := make([]string, 0, len(pods))
	for _, pod := range pods {
		keys = append(keys, string(pod.UID)+"@"+pod.ResourceVersion)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// refused says whether the API server answered err and meant it: not a
// conflict, a vanished object or a server that was busy or away.
func refused(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false // no answer: a connection refused or reset while it restarts
	}
	return !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && !apierrors.IsServerTimeout(err) &&
		!apierrors.IsTimeout(err) && !apierrors.IsTooManyRequests(err) && !apierrors.IsServiceUnavailable(err) &&
		!apierrors.IsInternalError(err)
}

func running(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range pod.Status.ContainerStatuses {
		if c.Name == containerDatabase {
			return c.State.Running != nil
		}
	}
	return false
}

func (p *Patroni) sync(ctx context.Context, k clusterKey, pods []*corev1.Pod) error {
	var live []*corev1.Pod
	for _, pod := range pods {
		if running(pod) {
			live = append(live, pod)
		}
	}
	if len(live) == 0 {
		return nil
	}
	sort.Slice(live, func(i, j int) bool { return live[i].Name < live[j].Name })
	pc, err := p.dynamic.Resource(postgresClusters).Namespace(k.namespace).Get(ctx, k.name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read PostgresCluster %s/%s: %w", k.namespace, k.name, err)
	}
	standby, _, _ := unstructured.NestedBool(pc.Object, "spec", "standby", "enabled")
	startup, _, _ := unstructured.NestedString(pc.Object, "status", "startupInstance")

	scope := k.name + "-ha"
	leader := live[0]
	for _, pod := range live {
		if pod.Labels[labelInstance] == startup {
			leader = pod
		}
	}
	for _, pod := range live {
		if pod.Labels[labelRole] == roleLeader {
			leader = pod // a leader keeps leading while it runs
			break
		}
	}
	// The leader key in the DCS is the truth (a switchover moves it).
	if ep, err := p.clientset.CoreV1().Endpoints(k.namespace).Get(ctx, scope, metav1.GetOptions{}); err == nil { //nolint:staticcheck // Patroni's DCS
		for _, pod := range live {
			if pod.Name == ep.Annotations[annotationLeader] {
				leader = pod
			}
		}
	}
	for _, pod := range live {
		role, label := "replica", roleReplica
		if pod == leader {
			role, label = "primary", roleLeader
			if standby {
				role = "standby_leader"
			}
		}
		if err := p.setMember(ctx, pod, label, role); err != nil {
			return err
		}
	}
	if err := p.ensureEndpoints(ctx, k, scope+"-config", annotationInitialize, strconv.FormatUint(systemIdentifier(), 10), false); err != nil {
		return err
	}
	return p.ensureEndpoints(ctx, k, scope, annotationLeader, leader.Name, true)
}

// setMember writes the role label and status annotation in one patch, as
// Patroni does, when either differs.
func (p *Patroni) setMember(ctx context.Context, pod *corev1.Pod, label, role string) error {
	ip := pod.Status.PodIP
	status, err := json.Marshal(memberStatus{
		ConnURL: "postgres://" + ip + ":5432/postgres", APIURL: "https://" + ip + ":8008/patroni",
		State: "running", Role: role, Version: "4.0.6", XLog: 67108864, Timeline: 1,
	})
	if err != nil {
		return err
	}
	if pod.Labels[labelRole] == label && pod.Annotations[annotationStatus] == string(status) {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
		"labels":      map[string]string{labelRole: label},
		"annotations": map[string]string{annotationStatus: string(status)},
	}})
	if _, err := p.clientset.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "patroni-standin"}); err != nil {
		return fmt.Errorf("set Patroni's role %s on pod %s/%s: %w", role, pod.Namespace, pod.Name, err)
	}
	p.writes++
	p.logf("patroni stand-in: pod %s/%s is %s", pod.Namespace, pod.Name, role)
	return nil
}

// ensureEndpoints creates the named Patroni Endpoints with Patroni's
// labels and the annotation key=value when it is missing; update, when
// set, keeps key at value on an existing one (the leader's name).
func (p *Patroni) ensureEndpoints(ctx context.Context, k clusterKey, name, key, value string, update bool) error {
	endpoints := p.clientset.CoreV1().Endpoints(k.namespace) //nolint:staticcheck // Patroni's DCS is Endpoints, as PGO configures it
	got, err := endpoints.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = endpoints.Create(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{ //nolint:staticcheck
			Name: name, Namespace: k.namespace,
			Labels:      map[string]string{labelCluster: k.name, labelPatroni: k.name + "-ha"},
			Annotations: map[string]string{key: value},
		}}, metav1.CreateOptions{FieldManager: "patroni-standin"})
		if err == nil {
			p.writes++
			p.logf("patroni stand-in: Endpoints %s/%s %s=%s", k.namespace, name, key, value)
		}
		return err
	}
	if err != nil || !update || got.Annotations[key] == value {
		return err
	}
	if got.Annotations == nil {
		got.Annotations = map[string]string{}
	}
	got.Annotations[key] = value
	p.writes++
	_, err = endpoints.Update(ctx, got, metav1.UpdateOptions{FieldManager: "patroni-standin"})
	return err
}

// Switchover plays `patronictl switchover --scheduled=now --force
// --primary=<pod> --candidate=` as PGO execs it into the primary before
// deleting it in a rollout (PGO v5.8.9 internal/patroni/api.go:41-62,
// internal/controller/postgrescluster/instance.go:805-815): the leader key
// moves to the first other running instance of the cluster (an empty
// candidate lets Patroni choose), both members' roles change, and it prints
// what patronictl prints, which PGO reads ("switched over"). With no other
// running instance, Patroni refuses and PGO tries again later.
func Switchover(ctx context.Context, cs kubernetes.Interface, primary, candidate string) Answer {
	answer := func(format string, args ...any) Answer {
		return Answer{Shape: ShapePatroniSwitchover, Stdout: fmt.Sprintf(format, args...)}
	}
	// Without a primary, the candidate names the cluster and its leader is
	// the primary.
	named := primary
	if named == "" {
		named = candidate
	}
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: labelInstance})
	var found []*corev1.Pod
	for i := range pods.Items {
		if pods.Items[i].Name == named {
			found = append(found, &pods.Items[i])
		}
	}
	if err != nil || len(found) != 1 {
		return Answer{Shape: ShapePatroniSwitchover, Stderr: fmt.Sprintf("Error: member %s not found: %v\n", named, err), Exit: 1}
	}
	k := clusterKey{found[0].Namespace, found[0].Labels[labelCluster]}
	members, err := cs.CoreV1().Pods(k.namespace).List(ctx, metav1.ListOptions{LabelSelector: labelCluster + "=" + k.name + "," + labelInstance})
	if err != nil {
		return Answer{Shape: ShapePatroniSwitchover, Stderr: err.Error() + "\n", Exit: 1}
	}
	var old *corev1.Pod
	for i := range members.Items {
		if m := &members.Items[i]; m.Name == primary || (primary == "" && m.Labels[labelRole] == roleLeader) {
			old = m
		}
	}
	if old == nil {
		return Answer{Shape: ShapePatroniSwitchover, Stderr: "Error: This cluster has no leader\n", Exit: 1}
	}
	primary = old.Name
	// patronictl refuses a candidate that already leads (Patroni
	// patroni/ctl.py, _do_failover_or_switchover); PGO then fails the
	// switchover and tries again on every reconcile.
	if candidate == primary {
		return Answer{Shape: ShapePatroniSwitchover, Stderr: "Error: Switchover target and source are the same.\n", Exit: 1}
	}
	sort.Slice(members.Items, func(i, j int) bool { return members.Items[i].Name < members.Items[j].Name })
	var next *corev1.Pod
	for i := range members.Items {
		if m := &members.Items[i]; m.Name != primary && running(m) && (candidate == "" || m.Name == candidate) {
			next = m
			break
		}
	}
	if next == nil {
		return answer("Switchover failed, details: 503, Switchover failed\n")
	}
	p := &Patroni{clientset: cs, logf: func(string, ...any) {}}
	if err := p.ensureEndpoints(ctx, k, k.name+"-ha", annotationLeader, next.Name, true); err != nil {
		return Answer{Shape: ShapePatroniSwitchover, Stderr: err.Error() + "\n", Exit: 1}
	}
	if err := p.setMember(ctx, next, roleLeader, "primary"); err != nil {
		return Answer{Shape: ShapePatroniSwitchover, Stderr: err.Error() + "\n", Exit: 1}
	}
	if err := p.setMember(ctx, old, roleReplica, "replica"); err != nil {
		return Answer{Shape: ShapePatroniSwitchover, Stderr: err.Error() + "\n", Exit: 1}
	}
	done := answer("Successfully switched over to %q\n", next.Name)
	done.Promoted = true
	return done
}

// systemIdentifier is a PostgreSQL system identifier: 19 digits, as initdb
// makes from the time and its process id.
func systemIdentifier() uint64 {
	return uint64(time.Now().Unix())<<32 | uint64(rand.Uint32())
}
