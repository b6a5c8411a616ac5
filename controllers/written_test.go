package controllers

import (
	"testing"

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
				w.wrote(written, "10")
			}
			if got := w.current(tt.read).Operator.InstalledCSV; got != tt.want {
				t.Errorf("current = %q, want %q", got, tt.want)
			}
		})
	}
	var w writtenStatuses
	w.wrote(written, "10")
	w.forget(client.ObjectKeyFromObject(written))
	if got := w.current(stackAt("10", "")).Operator.InstalledCSV; got != "" {
		t.Errorf("after forget, current = %q, want the cached status", got)
	}
}
