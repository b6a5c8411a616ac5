// Package expect holds the waits the suites share: a condition of a stack,
// an Event on it, kstatus' verdict on it, or any check, each bounded.
package expect

import (
	"context"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// Waiter waits on one cluster.
type Waiter struct {
	Client client.Client
	// Bound is the longest any wait may take.
	Bound time.Duration
	// Explain, when set, adds context (such as process logs) to a failed wait.
	Explain func() string
}

func (w Waiter) fail(t testing.TB, format string, args ...any) {
	t.Helper()
	if w.Explain != nil {
		format += "\n%s"
		args = append(args, w.Explain())
	}
	t.Fatalf(format, args...)
}

// Eventually waits until check says true without error.
func (w Waiter) Eventually(t testing.TB, what string, check func() (bool, error)) {
	t.Helper()
	var lastErr error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, w.Bound, true, func(context.Context) (bool, error) {
		ok, err := check()
		lastErr = err
		return ok && err == nil, nil
	})
	if err != nil {
		w.fail(t, "waiting for %s: %v (last error: %v)", what, err, lastErr)
	}
}

// Condition waits until the stack's condition has status and reason (""
// matches any) at the stack's current generation, with every part in its
// message, and returns it.
func (w Waiter) Condition(t testing.TB, s *platformv1alpha1.PostgresStack, condType string, status metav1.ConditionStatus, reason string, parts ...string) metav1.Condition {
	t.Helper()
	var last *metav1.Condition
	var found metav1.Condition
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, w.Bound, true, func(ctx context.Context) (bool, error) {
		got := &platformv1alpha1.PostgresStack{}
		if err := w.Client.Get(ctx, client.ObjectKeyFromObject(s), got); err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, condType)
		last = c
		if c == nil || c.Status != status || (reason != "" && c.Reason != reason) ||
			c.ObservedGeneration != got.Generation || got.Status.ObservedGeneration != got.Generation {
			return false, nil
		}
		for _, p := range parts {
			if !strings.Contains(c.Message, p) {
				return false, nil
			}
		}
		found = *c
		return true, nil
	})
	if err != nil {
		w.fail(t, "stack %s/%s: want %s=%s (%s) mentioning %q, last seen %+v: %v", s.Namespace, s.Name, condType, status, reason, parts, last, err)
	}
	return found
}

// Event waits for an Event about the stack with reason.
func (w Waiter) Event(t testing.TB, s *platformv1alpha1.PostgresStack, reason string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	w.Eventually(t, "event "+reason+" on "+s.Namespace+"/"+s.Name, func() (bool, error) {
		list := &eventsv1.EventList{}
		if err := w.Client.List(context.Background(), list, client.InNamespace(s.Namespace)); err != nil {
			return false, err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == s.Name && e.Reason == reason {
				found = e
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// Kstatus is the status Flux's kstatus library computes for the stack now.
func (w Waiter) Kstatus(t testing.TB, s *platformv1alpha1.PostgresStack) kstatus.Status {
	t.Helper()
	got := &platformv1alpha1.PostgresStack{}
	if err := w.Client.Get(context.Background(), client.ObjectKeyFromObject(s), got); err != nil {
		t.Fatal(err)
	}
	return KstatusOf(t, got)
}

// KstatusOf is the status Flux's kstatus library computes for the stack as
// given.
func KstatusOf(t testing.TB, s *platformv1alpha1.PostgresStack) kstatus.Status {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
	if err != nil {
		t.Fatal(err)
	}
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

// StackGone waits until the stack no longer exists: its finalizer, if it
// had one, is released.
func (w Waiter) StackGone(t testing.TB, s *platformv1alpha1.PostgresStack) {
	t.Helper()
	w.Eventually(t, "stack "+s.Namespace+"/"+s.Name+" gone", func() (bool, error) {
		err := w.Client.Get(context.Background(), client.ObjectKeyFromObject(s), &platformv1alpha1.PostgresStack{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}

// UpdateStack changes the stack as a person would, read fresh each try and
// tried again when someone (the manager) wrote it in between.
func (w Waiter) UpdateStack(t testing.TB, s *platformv1alpha1.PostgresStack, change func(*platformv1alpha1.PostgresStack)) {
	t.Helper()
	w.Eventually(t, "update stack "+s.Namespace+"/"+s.Name, func() (bool, error) {
		got := &platformv1alpha1.PostgresStack{}
		if err := w.Client.Get(context.Background(), client.ObjectKeyFromObject(s), got); err != nil {
			return false, err
		}
		change(got)
		err := w.Client.Update(context.Background(), got)
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}
