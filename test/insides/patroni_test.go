package insides

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
)

// Only what the API server answered and meant counts against the stand-in.
func TestRefusedCountsOnlyAnswersThatMeanIt(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"forbidden", apierrors.NewForbidden(pods, "p", errors.New("no")), true},
		{"invalid", apierrors.NewBadRequest("bad patch"), true},
		{"wrapped forbidden", fmt.Errorf("set role: %w", apierrors.NewForbidden(pods, "p", errors.New("no"))), true},
		{"conflict", apierrors.NewConflict(pods, "p", errors.New("stale")), false},
		{"gone", apierrors.NewNotFound(pods, "p"), false},
		{"server busy", apierrors.NewServiceUnavailable("restarting"), false},
		{"server timeout", apierrors.NewServerTimeout(pods, "patch", 1), false},
		{"no answer", fmt.Errorf("read PostgresCluster: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), false},
	} {
		if got := refused(tc.err); got != tc.want {
			t.Errorf("%s: refused = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSwitchoverArgs(t *testing.T) {
	for _, tc := range []struct {
		argv                  []string
		wantPrimary, wantCand string
		wantOK                bool
	}{
		{[]string{"patronictl", "switchover", "--scheduled=now", "--force", "--primary=hippo-a-0", "--candidate="}, "hippo-a-0", "", true},
		{[]string{"patronictl", "switchover", "--scheduled=now", "--force", "--primary=hippo-a-0", "--candidate=hippo-b-0"}, "hippo-a-0", "hippo-b-0", true},
		// The switchover the trigger-switchover annotation asks for names only the candidate.
		{[]string{"patronictl", "switchover", "--scheduled=now", "--force", "--candidate=hippo-b-0"}, "", "hippo-b-0", true},
		// No pod named at all: kwok's exec does not say which cluster.
		{[]string{"patronictl", "switchover", "--scheduled=now", "--force", "--candidate="}, "", "", false},
		{[]string{"patronictl", "failover", "--scheduled=now", "--force", "--primary=a", "--candidate="}, "", "", false},
	} {
		p, c, ok := SwitchoverArgs(tc.argv[0], tc.argv[1:])
		if p != tc.wantPrimary || c != tc.wantCand || ok != tc.wantOK {
			t.Errorf("SwitchoverArgs(%q) = %q %q %v", tc.argv, p, c, ok)
		}
	}
}

// A switchover moves the leader key and both members' roles, and prints
// what PGO looks for; with no other running member Patroni refuses.
func TestSwitchover(t *testing.T) {
	member := func(name, role string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name,
				Labels: map[string]string{labelCluster: "hippo", labelInstance: name[:len(name)-2], labelPatroni: "hippo-ha", labelRole: role}},
			Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{Name: containerDatabase,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
		}
	}
	leaderKey := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "hippo-ha", Annotations: map[string]string{annotationLeader: "hippo-a-0"}}} //nolint:staticcheck
	ctx := context.Background()

	cs := fake.NewSimpleClientset(member("hippo-a-0", roleLeader, corev1.PodRunning), member("hippo-b-0", roleReplica, corev1.PodRunning), leaderKey.DeepCopy())
	got := Switchover(ctx, cs, "hippo-a-0", "")
	if got.Exit != 0 || !strings.Contains(got.Stdout, "switched over") {
		t.Fatalf("switchover answered %+v", got)
	}
	ep, err := cs.CoreV1().Endpoints("team-a").Get(ctx, "hippo-ha", metav1.GetOptions{}) //nolint:staticcheck
	if err != nil || ep.Annotations[annotationLeader] != "hippo-b-0" {
		t.Errorf("leader key = %v (%v), want hippo-b-0", ep.Annotations, err)
	}
	for name, want := range map[string]string{"hippo-a-0": roleReplica, "hippo-b-0": roleLeader} {
		pod, _ := cs.CoreV1().Pods("team-a").Get(ctx, name, metav1.GetOptions{})
		if pod.Labels[labelRole] != want {
			t.Errorf("%s role = %q, want %q", name, pod.Labels[labelRole], want)
		}
	}

	// Naming only the candidate: the cluster's leader (now hippo-b-0) is the primary.
	got = Switchover(ctx, cs, "", "hippo-a-0")
	if got.Exit != 0 || !strings.Contains(got.Stdout, "switched over") {
		t.Fatalf("switchover to a candidate answered %+v", got)
	}
	if ep, err := cs.CoreV1().Endpoints("team-a").Get(ctx, "hippo-ha", metav1.GetOptions{}); err != nil || ep.Annotations[annotationLeader] != "hippo-a-0" { //nolint:staticcheck
		t.Errorf("leader key = %v (%v), want hippo-a-0", ep.Annotations, err)
	}

	alone := fake.NewSimpleClientset(member("hippo-a-0", roleLeader, corev1.PodRunning), member("hippo-b-0", roleReplica, corev1.PodPending), leaderKey.DeepCopy())
	if got := Switchover(ctx, alone, "hippo-a-0", ""); got.Exit != 0 || strings.Contains(got.Stdout, "switched over") {
		t.Errorf("switchover without a running replica answered %+v", got)
	}
}
