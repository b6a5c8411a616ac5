// Package ledger records every InstallPlan approval in a cluster: which plan,
// which CSVs it carried and which field manager set spec.approved, so suites
// can assert that nothing was approved outside policy.
package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/pgstack/pgstack/test/testenv"
)

// Approval is one InstallPlan seen with spec.approved true.
type Approval struct {
	Namespace, Name string
	// CSVNames are the plan's spec.clusterServiceVersionNames: approving it
	// installs all of them.
	CSVNames []string
	// Approval is the plan's spec.approval (Automatic or Manual).
	Approval operatorsv1alpha1.Approval
	// Manager is the field manager owning spec.approved (OLM's catalog
	// operator for Automatic plans, whoever approved a Manual one).
	Manager string
	// Operation is how the manager wrote it (Update or Apply).
	Operation metav1.ManagedFieldsOperationType
	// Seen is when the ledger first saw the plan approved.
	Seen time.Time
}

// Ledger watches InstallPlans in every namespace.
type Ledger struct {
	mu        sync.Mutex
	approvals []Approval
	recorded  map[types.UID]bool
}

// Start watches InstallPlans until ctx ends; it returns once it has seen
// every existing plan.
func Start(ctx context.Context, cfg *rest.Config) (*Ledger, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: testenv.NewScheme()})
	if err != nil {
		return nil, fmt.Errorf("ledger: create cache: %w", err)
	}
	informer, err := c.GetInformer(ctx, &operatorsv1alpha1.InstallPlan{})
	if err != nil {
		return nil, fmt.Errorf("ledger: InstallPlan informer: %w", err)
	}
	l := &Ledger{recorded: map[types.UID]bool{}}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    l.observe,
		UpdateFunc: func(_, obj any) { l.observe(obj) },
	}); err != nil {
		return nil, fmt.Errorf("ledger: watch InstallPlans: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	syncCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !c.WaitForCacheSync(syncCtx) {
		return nil, fmt.Errorf("ledger: InstallPlan cache did not sync")
	}
	return l, nil
}

func (l *Ledger) observe(obj any) {
	plan, ok := obj.(*operatorsv1alpha1.InstallPlan)
	if !ok || !plan.Spec.Approved {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recorded[plan.UID] {
		return
	}
	l.recorded[plan.UID] = true
	manager, operation := approvedBy(plan.ManagedFields)
	l.approvals = append(l.approvals, Approval{
		Namespace: plan.Namespace, Name: plan.Name,
		CSVNames: append([]string(nil), plan.Spec.ClusterServiceVersionNames...),
		Approval: plan.Spec.Approval,
		Manager:  manager, Operation: operation,
		Seen: time.Now(),
	})
}

// approvedBy finds the managedFields entry that owns spec.approved.
func approvedBy(entries []metav1.ManagedFieldsEntry) (string, metav1.ManagedFieldsOperationType) {
	for _, e := range entries {
		if e.FieldsV1 == nil {
			continue
		}
		var fields struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if err := json.Unmarshal(e.FieldsV1.Raw, &fields); err != nil {
			continue
		}
		if _, ok := fields.Spec["f:approved"]; ok {
			return e.Manager, e.Operation
		}
	}
	return "", ""
}

// Approvals are the approvals seen so far, oldest first.
func (l *Ledger) Approvals() []Approval {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]Approval(nil), l.approvals...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seen.Before(out[j].Seen) })
	return out
}

// In are the approvals of plans in namespace ns.
func (l *Ledger) In(ns string) []Approval {
	var out []Approval
	for _, a := range l.Approvals() {
		if a.Namespace == ns {
			out = append(out, a)
		}
	}
	return out
}
