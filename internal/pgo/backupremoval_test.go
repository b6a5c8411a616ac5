package pgo

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func TestPlanBackupRemoval(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	earlier := metav1.NewTime(now.Add(-time.Hour))
	volume := func(name string) any { return map[string]any{"name": name, "volume": map[string]any{}} }
	bucket := func(name string) any {
		return map[string]any{"name": name, "s3": map[string]any{"bucket": "b", "endpoint": "e", "region": "r"}}
	}
	// pc is hippo with these repositories (none: no backups section), PGO
	// having observed it when observed is true.
	pc := func(observed bool, repos ...any) *unstructured.Unstructured {
		u := NewPostgresCluster()
		u.SetName("hippo")
		u.SetGeneration(4)
		u.Object["spec"] = map[string]any{"postgresVersion": int64(16)}
		if len(repos) > 0 {
			_ = unstructured.SetNestedSlice(u.Object, repos, "spec", "backups", "pgbackrest", "repos")
		}
		if observed {
			_ = unstructured.SetNestedField(u.Object, int64(4), "status", "observedGeneration")
		}
		return u
	}
	ack := func(token string, repos ...platformv1alpha1.RepoName) *platformv1alpha1.BackupRemovalOperation {
		return &platformv1alpha1.BackupRemovalOperation{Token: platformv1alpha1.OperationToken(token), Repos: repos}
	}
	record := func(token string, phase platformv1alpha1.OperationPhase, used ...platformv1alpha1.OperationToken) *platformv1alpha1.OperationStatus {
		return &platformv1alpha1.OperationStatus{Token: platformv1alpha1.OperationToken(token), Phase: phase, StartTime: &earlier, UsedTokens: used}
	}
	running, succeeded := platformv1alpha1.OperationRunning, platformv1alpha1.OperationSucceeded

	tests := []struct {
		name          string
		live, desired *unstructured.Unstructured
		spec          *platformv1alpha1.BackupRemovalOperation
		previous      *platformv1alpha1.OperationStatus
		// wantRepos are the repositories applied ("none": no backups section).
		wantRepos     string
		wantAnnotated bool
		wantStatus    string // "token phase", "" for none
		wantHeld      string // words of the Held message
		wantRunning   bool
		wantEvent     string
	}{
		{
			name: "no cluster yet: nothing to guard",
			live: nil, desired: pc(false, volume("repo1")), wantRepos: "repo1",
		},
		{
			name: "nothing removed: applied as is",
			live: pc(true, volume("repo1")), desired: pc(false, volume("repo1"), volume("repo2")), wantRepos: "repo1 repo2",
		},
		{
			name: "a volume repo removed without a token is held",
			live: pc(true, volume("repo1"), volume("repo2")), desired: pc(false, volume("repo1")),
			wantRepos: "repo1 repo2", wantHeld: "removing repo2 from PostgresCluster hippo makes PGO delete its volume",
		},
		{
			name: "a token that does not name the repo holds it",
			live: pc(true, volume("repo1"), volume("repo2")), desired: pc(false, volume("repo1")), spec: ack("t1", "repo3"),
			wantRepos: "repo1 repo2", wantHeld: "repos [repo2]",
		},
		{
			name: "a new token naming the repo lets the removal through",
			live: pc(true, volume("repo1"), volume("repo2")), desired: pc(false, volume("repo1")), spec: ack("t1", "repo2"),
			wantRepos: "repo1", wantStatus: "t1 Running", wantRunning: true, wantEvent: platformv1alpha1.EventOperationStarted,
		},
		{
			name: "a token already used authorizes nothing more",
			live: pc(true, volume("repo1"), volume("repo2")), desired: pc(false, volume("repo1")), spec: ack("t1", "repo2"),
			previous: record("t2", succeeded, "t1"), wantRepos: "repo1 repo2", wantStatus: "t2 Succeeded", wantHeld: "new token",
		},
		{
			name: "authorized and on its way to PGO: still applied",
			live: pc(false, volume("repo1"), volume("repo2")), desired: pc(false, volume("repo1")), spec: ack("t1", "repo2"),
			previous: record("t1", running), wantRepos: "repo1", wantStatus: "t1 Running", wantRunning: true,
		},
		{
			name: "PGO observed the cluster without the repo: succeeded",
			live: pc(true, volume("repo1")), desired: pc(false, volume("repo1")), spec: ack("t1", "repo2"),
			previous: record("t1", running), wantRepos: "repo1", wantStatus: "t1 Succeeded", wantEvent: platformv1alpha1.EventOperationSucceeded,
		},
		{
			name: "a repo in a bucket needs no token: its backups stay in the bucket",
			live: pc(true, volume("repo1"), bucket("repo2")), desired: pc(false, volume("repo1")), wantRepos: "repo1",
		},
		{
			name: "backups turned off without a token: the live backups are kept",
			live: pc(true, volume("repo1")), desired: pc(false), wantRepos: "repo1", wantHeld: "turning backups off",
		},
		{
			name: "backups turned off with a token: removed, with PGO's annotation",
			live: pc(true, volume("repo1")), desired: pc(false), spec: ack("off", "repo1"),
			wantRepos: "none", wantAnnotated: true, wantStatus: "off Running", wantRunning: true, wantEvent: platformv1alpha1.EventOperationStarted,
		},
		{
			name: "backups off and removed: the annotation stays while backups stay off",
			live: pc(true), desired: pc(false), spec: ack("off", "repo1"), previous: record("off", succeeded),
			wantRepos: "none", wantAnnotated: true, wantStatus: "off Succeeded",
		},
		{
			name: "backups on again: no annotation",
			live: pc(true), desired: pc(false, volume("repo1")), previous: record("off", succeeded),
			wantRepos: "repo1", wantStatus: "off Succeeded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := PlanBackupRemoval(BackupRemovalInput{Cluster: "hippo", Live: tt.live, Desired: tt.desired, Spec: tt.spec, Previous: tt.previous, Now: now})
			var names []string
			for _, r := range repoEntries(plan.Apply) {
				names = append(names, str(r, "name"))
			}
			repos := strings.Join(names, " ")
			if _, ok, _ := unstructured.NestedMap(plan.Apply.Object, "spec", "backups"); !ok {
				repos = "none"
			}
			if repos != tt.wantRepos {
				t.Errorf("applied repos %q, want %q", repos, tt.wantRepos)
			}
			if got := plan.Apply.GetAnnotations()[AnnotationAuthorizeBackupRemoval] == "true"; got != tt.wantAnnotated {
				t.Errorf("authorizeBackupRemoval = %v, want %v", got, tt.wantAnnotated)
			}
			status := ""
			if plan.Status != nil {
				status = fmt.Sprintf("%s %s", plan.Status.Token, plan.Status.Phase)
			}
			if status != tt.wantStatus {
				t.Errorf("status %q, want %q", status, tt.wantStatus)
			}
			switch {
			case tt.wantHeld == "" && plan.Held != nil:
				t.Errorf("held: %s", plan.Held.Message)
			case tt.wantHeld != "" && (plan.Held == nil || !strings.Contains(plan.Held.Message, tt.wantHeld)):
				t.Errorf("held = %v, want one saying %q", plan.Held, tt.wantHeld)
			}
			if (plan.Running != nil) != tt.wantRunning {
				t.Errorf("running = %v, want %v", plan.Running, tt.wantRunning)
			}
			event := ""
			if len(plan.Events) > 0 {
				event = plan.Events[0].Reason
			}
			if event != tt.wantEvent {
				t.Errorf("event %q, want %q", event, tt.wantEvent)
			}
			if tt.previous != nil && plan.Status == tt.previous {
				t.Error("the plan changed the previous record in place")
			}
		})
	}
}
