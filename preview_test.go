package main

import (
	"bytes"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgstack/pgstack/api/v1alpha1"
)

func TestUpgradeTable(t *testing.T) {
	stack := func(ns, name string, p *v1alpha1.PendingUpgradeStatus) v1alpha1.PostgresStack {
		s := v1alpha1.PostgresStack{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		s.Status.Operator.Version = "5.8.8"
		s.Status.Operator.PendingUpgrade = p
		return s
	}
	restarting := &v1alpha1.PendingUpgradeStatus{Version: "5.8.9", InstallPlan: "install-abc", ClusterRestarts: true,
		Images: []v1alpha1.ImageChange{{Component: "postgres", From: "pg:16-2550", To: "pg:16-2633"}}}
	pinned := &v1alpha1.PendingUpgradeStatus{Version: "5.8.9", InstallPlan: "install-abc"}
	blocked := &v1alpha1.PendingUpgradeStatus{Version: "5.9.1", InstallPlan: "install-def", ClusterRestarts: true, Blocked: "PGO 5.9.1 would leave team-a/hippo without a PostgreSQL image"}
	tests := []struct {
		name   string
		stacks []v1alpha1.PostgresStack
		want   []string
	}{
		{name: "no stacks", want: []string{
			"NAMESPACE  NAME  PGO  PENDING  PLAN  RESTARTS  IMAGES  BLOCKED",
			"",
			"0 of 0 stacks have an upgrade pending; approving it restarts 0 of their databases.",
		}},
		{name: "sorted by namespace and name; pinned and idle stacks", stacks: []v1alpha1.PostgresStack{
			stack("team-b", "zebra", pinned), stack("team-a", "hippo", restarting), stack("team-a", "idle", nil),
		}, want: []string{
			"NAMESPACE  NAME   PGO    PENDING  PLAN         RESTARTS  IMAGES                             BLOCKED",
			"team-a     hippo  5.8.8  5.8.9    install-abc  yes       postgres pg:16-2550 -> pg:16-2633  -",
			"team-a     idle   5.8.8  -        -            -         -                                  -",
			"team-b     zebra  5.8.8  5.8.9    install-abc  no        -                                  -",
			"",
			"2 of 3 stacks have an upgrade pending; approving it restarts 1 of their databases.",
		}},
		{name: "a blocked upgrade says why", stacks: []v1alpha1.PostgresStack{stack("team-a", "hippo", blocked)}, want: []string{
			"NAMESPACE  NAME   PGO    PENDING  PLAN         RESTARTS  IMAGES  BLOCKED",
			"team-a     hippo  5.8.8  5.9.1    install-def  yes       -       PGO 5.9.1 would leave team-a/hippo without a PostgreSQL image",
			"",
			"1 of 1 stacks have an upgrade pending; approving it restarts 1 of their databases.",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := upgradeTable(&out, tt.stacks); err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			for i := range got {
				got[i] = strings.TrimRight(got[i], " ")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
