package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// writtenStatuses remembers, per stack, the last status this manager wrote
// and the resourceVersion it wrote it over. A reconcile that runs before the
// cache has seen that write reads the stack at the old resourceVersion; it
// compares what it computes against what it wrote, not against the stale
// copy, so that it does not write the same status twice.
type writtenStatuses struct {
	mu sync.Mutex
	m  map[types.NamespacedName]writtenStatus
}

type writtenStatus struct {
	over   string // the resourceVersion the status was written over
	status platformv1alpha1.PostgresStackStatus
}

// current is the status the stack holds as far as this manager knows: the
// one it last wrote while the cache still shows the version it wrote over,
// else the cached one.
func (w *writtenStatuses) current(stack *platformv1alpha1.PostgresStack) platformv1alpha1.PostgresStackStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	if last, ok := w.m[types.NamespacedName{Namespace: stack.Namespace, Name: stack.Name}]; ok && last.over == stack.ResourceVersion {
		return last.status
	}
	return stack.Status
}

// wrote records a status written over resourceVersion over.
func (w *writtenStatuses) wrote(stack *platformv1alpha1.PostgresStack, over string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]writtenStatus{}
	}
	w.m[types.NamespacedName{Namespace: stack.Namespace, Name: stack.Name}] = writtenStatus{over: over, status: *stack.Status.DeepCopy()}
}

func (w *writtenStatuses) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
