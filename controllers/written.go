package controllers

import (
	"math"
	"sync"
	"time"

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
	at     time.Time // when it was written
}

// current is the status the stack holds as far as this manager knows: the
// one it last wrote while the cache still shows the version it wrote over,
// else the cached one.
//
// A cache past the version written over holds the write (or a later one),
// and always will: the copy is dropped then, and only the write's time kept,
// so that a thousand idle stacks do not each hold their status twice.
func (w *writtenStatuses) current(stack *platformv1alpha1.PostgresStack) platformv1alpha1.PostgresStackStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := types.NamespacedName{Namespace: stack.Namespace, Name: stack.Name}
	last, ok := w.m[key]
	if ok && last.over == stack.ResourceVersion {
		return last.status
	}
	if ok && last.over != "" {
		w.m[key] = writtenStatus{at: last.at}
	}
	return stack.Status
}

// since is how long ago this manager last wrote the stack's status; a
// stack it never wrote reads as written long ago.
func (w *writtenStatuses) since(stack *platformv1alpha1.PostgresStack, now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	last, ok := w.m[types.NamespacedName{Namespace: stack.Namespace, Name: stack.Name}]
	if !ok {
		return math.MaxInt64
	}
	return now.Sub(last.at)
}

// wrote records a status written over resourceVersion over, at now.
func (w *writtenStatuses) wrote(stack *platformv1alpha1.PostgresStack, over string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[types.NamespacedName]writtenStatus{}
	}
	w.m[types.NamespacedName{Namespace: stack.Namespace, Name: stack.Name}] = writtenStatus{over: over, status: *stack.Status.DeepCopy(), at: now}
}

func (w *writtenStatuses) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}
