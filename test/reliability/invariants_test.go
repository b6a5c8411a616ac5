package reliability

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pgstack/pgstack/controllers"
	"github.com/pgstack/pgstack/internal/pgo"
	"github.com/pgstack/pgstack/test/ledger"
)

// stackLabel is the label pgstack puts on a PostgresCluster naming its stack.
const stackLabel = "platform.pgstack.dev/stack"

// invariants polls the cluster while the suite runs (every 100 ms, faster
// than a stack's deletion or recreation completes) and remembers every
// breach: two Subscriptions for one package in a namespace, two
// PostgresClusters for one stack, and a PostgresCluster of a Retain stack
// that disappears, is replaced (a new UID) or gets a deletionTimestamp.
type invariants struct {
	c client.Client

	mu sync.Mutex
	// retained are the PostgresClusters that must outlive everything: the
	// UID each had when first seen ("" until then).
	retained map[types.NamespacedName]types.UID
	breaches []string
	polls    int
}

func watchInvariants(ctx context.Context, c client.Client) *invariants {
	g := &invariants{c: c, retained: map[types.NamespacedName]types.UID{}}
	go func() {
		ticker := time.NewTicker(100 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				g.poll(ctx)
			}
		}
	}()
	return g
}

// retain says the PostgresCluster of a Retain stack must never be deleted
// from now on. Register before the stack is created.
func (g *invariants) retain(key types.NamespacedName) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.retained[key]; !ok {
		g.retained[key] = ""
	}
}

func (g *invariants) breach(format string, args ...any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	msg := time.Now().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...)
	for _, b := range g.breaches {
		if b[13:] == msg[13:] {
			return // already said
		}
	}
	g.breaches = append(g.breaches, msg)
}

// poll reads everything once. Read errors (an API server restarting) skip
// the round: the next one looks again.
func (g *invariants) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	subs := &operatorsv1alpha1.SubscriptionList{}
	if err := g.c.List(ctx, subs); err != nil {
		return
	}
	perPackage := map[string][]string{}
	for _, s := range subs.Items {
		if s.Spec == nil {
			continue
		}
		k := s.Namespace + "/" + s.Spec.Package
		perPackage[k] = append(perPackage[k], s.Name)
	}
	for k, names := range perPackage {
		if len(names) > 1 {
			sort.Strings(names)
			g.breach("namespace/package %s has %d Subscriptions: %v", k, len(names), names)
		}
	}

	clusters := &unstructured.UnstructuredList{}
	clusters.SetGroupVersionKind(pgo.PostgresClusterGVK.GroupVersion().WithKind("PostgresClusterList"))
	if err := g.c.List(ctx, clusters); err != nil {
		return // PGO's CRD arrives with its first install
	}
	live := map[types.NamespacedName]client.Object{}
	perStack := map[string][]string{}
	for i := range clusters.Items {
		pc := &clusters.Items[i]
		key := client.ObjectKeyFromObject(pc)
		live[key] = pc
		if pc.GetLabels()[controllers.ManagedLabel] == controllers.ManagedValue {
			stack := pc.GetNamespace() + "/" + pc.GetLabels()[stackLabel]
			perStack[stack] = append(perStack[stack], pc.GetName())
			if pc.GetLabels()[stackLabel] != pc.GetName() {
				g.breach("PostgresCluster %s is labelled for stack %s: one PostgresCluster per stack, of the stack's name", key, stack)
			}
		}
	}
	for stack, names := range perStack {
		if len(names) > 1 {
			g.breach("stack %s has %d PostgresClusters: %v", stack, len(names), names)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.polls++
	for key, uid := range g.retained {
		pc, ok := live[key]
		switch {
		case !ok && uid != "":
			g.breaches = append(g.breaches, fmt.Sprintf("%s PostgresCluster %s of a Retain stack was deleted", time.Now().Format("15:04:05.000"), key))
			g.retained[key] = "deleted"
		case !ok:
		case uid == "":
			g.retained[key] = pc.GetUID()
		case uid != pc.GetUID() && uid != "deleted":
			g.breaches = append(g.breaches, fmt.Sprintf("%s PostgresCluster %s of a Retain stack was deleted and made again (UID %s -> %s)", time.Now().Format("15:04:05.000"), key, uid, pc.GetUID()))
			g.retained[key] = pc.GetUID()
		}
		if ok && !pc.GetDeletionTimestamp().IsZero() {
			msg := fmt.Sprintf("PostgresCluster %s of a Retain stack is being deleted (deletionTimestamp %s)", key, pc.GetDeletionTimestamp())
			found := false
			for _, b := range g.breaches {
				found = found || strings.HasSuffix(b, msg)
			}
			if !found {
				g.breaches = append(g.breaches, time.Now().Format("15:04:05.000")+" "+msg)
			}
		}
	}
}

func (g *invariants) err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.breaches) == 0 {
		return nil
	}
	return errors.New(strings.Join(g.breaches, "\n"))
}

// check fails the test on any breach so far, after one more full poll so
// that what the test just did is judged.
func (g *invariants) check(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	before := g.polls
	g.mu.Unlock()
	waits.Eventually(t, "one more invariant poll", func() (bool, error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.polls > before+1, nil
	})
	if err := g.err(); err != nil {
		t.Fatalf("invariants broken:\n%v", err)
	}
}

// seen reports whether the PostgresCluster of a retained stack has been
// observed, so a test knows the invariant is armed.
func (g *invariants) seen(key types.NamespacedName) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	uid := g.retained[key]
	return uid != "" && uid != "deleted"
}

// approvalsOutside are the ledger's approvals, from index from on, that
// allowed rejects.
func approvalsOutside(from int, allowed func(ledger.Approval) bool) []ledger.Approval {
	var bad []ledger.Approval
	all := approvals.Approvals()
	for i := from; i < len(all); i++ {
		if !allowed(all[i]) {
			bad = append(bad, all[i])
		}
	}
	return bad
}
