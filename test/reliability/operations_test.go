package reliability

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
	"github.com/pgstack/pgstack/internal/pgo"
)

const (
	labelInstance = "postgres-operator.crunchydata.com/instance"
	labelRole     = "postgres-operator.crunchydata.com/role"
	labelBackup   = "postgres-operator.crunchydata.com/pgbackrest-backup"
)

// pgoRuns counts, through watches from before the tokens are set, what PGO
// did in one namespace: every instance pod (by name) it made, and every
// manual backup Job (by the token it carries). A token run twice shows as
// a second Job for it, or a pod made a third time.
type pgoRuns struct {
	mu   sync.Mutex
	pods map[string]map[types.UID]bool
	jobs map[string]map[types.UID]bool
	stop context.CancelFunc
}

func recordPGORuns(t *testing.T, namespace string) *pgoRuns {
	t.Helper()
	cs, err := kubernetes.NewForConfig(lc.Config)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &pgoRuns{pods: map[string]map[types.UID]bool{}, jobs: map[string]map[types.UID]bool{}, stop: cancel}
	t.Cleanup(cancel)
	// A watch with no resourceVersion first lists what exists as ADDED.
	pods, err := cs.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{LabelSelector: labelInstance})
	must(t, err)
	jobs, err := cs.BatchV1().Jobs(namespace).Watch(ctx, metav1.ListOptions{LabelSelector: labelBackup + "=manual"})
	must(t, err)
	seen := func(into map[string]map[types.UID]bool, key string, uid types.UID) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if into[key] == nil {
			into[key] = map[types.UID]bool{}
		}
		into[key][uid] = true
	}
	go func() {
		for ev := range pods.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Error {
				seen(r.pods, p.Name, p.UID)
			}
		}
	}()
	go func() {
		for ev := range jobs.ResultChan() {
			if j, ok := ev.Object.(*batchv1.Job); ok && ev.Type != watch.Error {
				seen(r.jobs, j.Annotations[pgo.AnnotationBackup], j.UID)
			}
		}
	}()
	return r
}

// counts are how many instance pods of each name and how many manual backup
// Jobs of each token were seen.
func (r *pgoRuns) counts() (pods, jobs map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pods, jobs = map[string]int{}, map[string]int{}
	for k, v := range r.pods {
		pods[k] = len(v)
	}
	for k, v := range r.jobs {
		jobs[k] = len(v)
	}
	return pods, jobs
}

// primaryInstance is the instance name of the stack's primary (Patroni's
// leader label, PGO v5.8.9 internal/naming/labels.go).
func primaryInstance(t *testing.T, s *platformv1alpha1.PostgresStack) string {
	t.Helper()
	pods := &corev1.PodList{}
	must(t, k8s.List(context.Background(), pods, client.InNamespace(s.Namespace), client.MatchingLabels{labelRole: "master"}))
	if len(pods.Items) != 1 {
		t.Fatalf("%d primary pods in %s, want 1", len(pods.Items), s.Namespace)
	}
	return pods.Items[0].Labels[labelInstance]
}

// requestedSwitchovers counts the switchovers PGO ran for the
// trigger-switchover annotation (naming only the candidate) to a pod of the
// instance, from podexec's log.
func requestedSwitchovers(t *testing.T, instance string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lc.Dir, "logs", "podexec.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "patronictl switchover --scheduled=now --force --candidate="+instance) && !strings.Contains(line, "--primary=") {
			n++
		}
	}
	return n
}

// operationsRanOnce checks that every operation of the stack succeeded, and
// that PGO ran each once: one manual backup Job for the token, every
// instance pod made again once (the old pod and the restarted one), one
// switchover to the target.
func operationsRanOnce(t *testing.T, s *platformv1alpha1.PostgresStack, runs *pgoRuns, target string) {
	t.Helper()
	waits.Eventually(t, "every operation of "+s.Name+" Succeeded", func() (bool, error) {
		got := &platformv1alpha1.PostgresStack{}
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(s), got); err != nil {
			return false, err
		}
		o := got.Status.Operations
		if o == nil || o.Backup == nil || o.Restart == nil || o.Switchover == nil {
			return false, nil
		}
		for _, st := range []*platformv1alpha1.OperationStatus{o.Backup, o.Restart, o.Switchover} {
			if st.Phase == platformv1alpha1.OperationFailed {
				t.Fatalf("operation %s failed: %s", st.Token, st.Message)
			}
			if st.Phase != platformv1alpha1.OperationSucceeded || len(st.UsedTokens) != 0 {
				return false, nil
			}
		}
		return true, nil
	})
	pc := postgresCluster(t, s)
	if id, _, _ := unstructured.NestedString(pc.Object, "status", "pgbackrest", "manualBackup", "id"); id != "b1" {
		t.Errorf("PGO's manual backup is %q, want b1", id)
	}
	if sw, _, _ := unstructured.NestedString(pc.Object, "status", "patroni", "switchover"); sw != "s1" {
		t.Errorf("PGO's switchover is %q, want s1", sw)
	}
	pods, jobs := runs.counts()
	if len(jobs) != 1 || jobs["b1"] != 1 {
		t.Errorf("manual backup Jobs by token: %v, want one, for b1", jobs)
	}
	if len(pods) != 2 {
		t.Errorf("instance pods seen: %v, want the cluster's two", pods)
	}
	for name, n := range pods {
		if n != 2 {
			t.Errorf("instance pod %s was made %d times since the tokens were set, want twice (before and after one restart)", name, n)
		}
	}
	if n := requestedSwitchovers(t, target); n != 1 {
		t.Errorf("PGO ran %d switchovers to %s, want 1", n, target)
	}
	if leader := primaryInstance(t, s); leader != target {
		t.Errorf("instance %s leads after the switchover, want %s", leader, target)
	}
}
