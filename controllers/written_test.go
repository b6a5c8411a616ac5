package controllers

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func TestWrittenStatusesJudgeAStaleReadAgainstTheLastWrite(t *testing.T) {
	stackAt := func(rv string, installed string) *platformv1alpha1.PostgresStack {
		s := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hippo", ResourceVersion: rv}}
		s.Status.Operator.InstalledCSV = installed
		return s
	}
	written := stackAt("11", "postgresoperator.v5.8.9") // the write, as the API server answered it
	tests := []struct {
		name   string
		record bool
		read   *platformv1alpha1.PostgresStack
		want   string
	}{
		{name: "nothing written: the cached status", read: stackAt("10", ""), want: ""},
		{name: "the cache still holds the version written over: the last write", record: true, read: stackAt("10", ""), want: "postgresoperator.v5.8.9"},
		{name: "the cache caught up: the cached status", record: true, read: stackAt("11", "postgresoperator.v5.8.9"), want: "postgresoperator.v5.8.9"},
		{name: "a later change (someone else's write): the cached status", record: true, read: stackAt("12", "postgresoperator.v5.8.8"), want: "postgresoperator.v5.8.8"},
		{name: "another stack of the same name elsewhere: its own status", record: true, read: func() *platformv1alpha1.PostgresStack {
			s := stackAt("10", "")
			s.Namespace = "b"
			return s
		}(), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w writtenStatuses
			if tt.record {
				w.wrote(written, "10", time.Time{})
			}
			if got := w.current(tt.read).Operator.InstalledCSV; got != tt.want {
				t.Errorf("current = %q, want %q", got, tt.want)
			}
		})
	}
	var w writtenStatuses
	w.wrote(written, "10", time.Time{})
	w.forget(client.ObjectKeyFromObject(written))
	if got := w.current(stackAt("10", "")).Operator.InstalledCSV; got != "" {
		t.Errorf("after forget, current = %q, want the cached status", got)
	}
}

func TestSinceTheLastStatusWrite(t *testing.T) {
	var w writtenStatuses
	stack := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hippo"}}
	at := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	if got := w.since(stack, at); got < 24*time.Hour {
		t.Errorf("since a write never made = %v, want long ago", got)
	}
	w.wrote(stack, "10", at)
	if got := w.since(stack, at.Add(3*time.Second)); got != 3*time.Second {
		t.Errorf("since = %v, want 3s", got)
	}
}

// Once the cache has caught up with a write, the copy of the status is
// dropped (a thousand idle stacks would otherwise hold theirs twice) and
// the write's time kept for pacing.
func TestWrittenStatusesDropTheCopyOnceTheCacheCaughtUp(t *testing.T) {
	var w writtenStatuses
	stack := &platformv1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "hippo", ResourceVersion: "11"}}
	stack.Status.Operator.InstalledCSV = "postgresoperator.v5.8.9"
	at := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	w.wrote(stack, "10", at)
	if got := w.current(stack).Operator.InstalledCSV; got != "postgresoperator.v5.8.9" {
		t.Fatalf("current after the cache caught up = %q, want the cached status", got)
	}
	if kept := w.m[client.ObjectKeyFromObject(stack)]; kept.status.Operator.InstalledCSV != "" || kept.over != "" {
		t.Errorf("the copy of the written status is kept after the cache caught up: %+v", kept)
	}
	if got := w.since(stack, at.Add(3*time.Second)); got != 3*time.Second {
		t.Errorf("since = %v after the copy was dropped, want 3s", got)
	}
}
