package pgo

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

func TestPlanOperations(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	earlier := metav1.NewTime(now.Add(-time.Hour))
	type tok = platformv1alpha1.OperationToken
	running := func(token tok, used ...tok) *platformv1alpha1.OperationStatus {
		return &platformv1alpha1.OperationStatus{Token: token, Phase: platformv1alpha1.OperationRunning, StartTime: &earlier, UsedTokens: used}
	}
	done := func(token tok, used ...tok) *platformv1alpha1.OperationStatus {
		s := running(token, used...)
		s.Phase, s.CompletionTime = platformv1alpha1.OperationSucceeded, &earlier
		return s
	}
	// live is hippo as PGO reports it ready, changed by mutate.
	live := func(mutate ...func(*unstructured.Unstructured)) *unstructured.Unstructured {
		pc := cluster(t, readyHippo)
		for _, m := range mutate {
			m(pc)
		}
		return pc
	}
	status := func(path ...string) func(any) func(*unstructured.Unstructured) {
		return func(v any) func(*unstructured.Unstructured) {
			return func(pc *unstructured.Unstructured) { _ = unstructured.SetNestedField(pc.Object, v, path...) }
		}
	}
	manualBackup := status("status", "pgbackrest", "manualBackup")
	switchedTo := status("status", "patroni", "switchover")
	annotated := func(key, value string) func(*unstructured.Unstructured) {
		return func(pc *unstructured.Unstructured) { pc.SetAnnotations(map[string]string{key: value}) }
	}
	restartToken := func(token string) func(*unstructured.Unstructured) {
		return status("spec", "metadata", "annotations")(map[string]any{AnnotationRestart: token})
	}
	notReady := status("status", "instances")([]any{map[string]any{"name": "instance1", "replicas": int64(2), "readyReplicas": int64(1), "updatedReplicas": int64(2)}})
	shutDown := func(pc *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(pc.Object, true, "spec", "shutdown")
		_ = unstructured.SetNestedSlice(pc.Object, []any{map[string]any{"name": "instance1"}}, "status", "instances")
	}
	// set is an instance StatefulSet whose template carries the restart
	// token, with updated and ready replicas out of 2.
	set := func(name, token string, updated, ready int32) appsv1.StatefulSet {
		two := int32(2)
		s := appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 4},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: 4, UpdatedReplicas: updated, ReadyReplicas: ready}}
		s.Spec.Replicas = &two
		if token != "" {
			s.Spec.Template.Annotations = map[string]string{AnnotationRestart: token}
		}
		return s
	}
	sets := []appsv1.StatefulSet{set("hippo-instance1-abcd", "r1", 2, 2)}
	backup := func(token tok) *platformv1alpha1.Operations {
		return &platformv1alpha1.Operations{Backup: &platformv1alpha1.BackupOperation{Token: token, RepoName: "repo1", Options: []string{"--type=full"}}}
	}
	restart := func(token tok) *platformv1alpha1.Operations {
		return &platformv1alpha1.Operations{Restart: &platformv1alpha1.RestartOperation{Token: token}}
	}
	switchover := func(token tok, target string) *platformv1alpha1.Operations {
		return &platformv1alpha1.Operations{Switchover: &platformv1alpha1.SwitchoverOperation{Token: token, TargetInstance: target}}
	}
	sixteen := make([]tok, platformv1alpha1.MaxUsedTokens)
	for i := range sixteen {
		sixteen[i] = tok(fmt.Sprintf("old-%d", i))
	}

	tests := []struct {
		name      string
		in        OperationsInput
		want      map[Operation]string // "token phase usedTokens..." per operation with a status
		events    []string             // reasons
		pending   string               // a word of the Pending message
		isRunning bool
	}{
		{
			name:   "a new backup token on a ready cluster runs",
			in:     OperationsInput{Spec: backup("b1"), Live: live()},
			want:   map[Operation]string{OpBackup: "b1 Running"},
			events: []string{platformv1alpha1.EventOperationStarted}, isRunning: true,
		},
		{
			name: "a token already run does nothing",
			in:   OperationsInput{Spec: backup("b1"), Previous: &platformv1alpha1.OperationsStatus{Backup: done("b1")}, Live: live()},
			want: map[Operation]string{OpBackup: "b1 Succeeded"},
		},
		{
			name: "an older token put back by Git does nothing",
			in:   OperationsInput{Spec: backup("b1"), Previous: &platformv1alpha1.OperationsStatus{Backup: done("b3", "b2", "b1")}, Live: live()},
			want: map[Operation]string{OpBackup: "b3 Succeeded b2 b1"},
		},
		{
			name: "PGO's manual backup of the token finished: succeeded",
			in: OperationsInput{Spec: backup("b1"), Previous: &platformv1alpha1.OperationsStatus{Backup: running("b1")},
				Live: live(manualBackup(map[string]any{"id": "b1", "finished": true, "succeeded": int64(1), "completionTime": "2026-12-02T11:59:00Z"}))},
			want:   map[Operation]string{OpBackup: "b1 Succeeded"},
			events: []string{platformv1alpha1.EventOperationSucceeded},
		},
		{
			name: "PGO's manual backup of the token failed",
			in: OperationsInput{Spec: backup("b1"), Previous: &platformv1alpha1.OperationsStatus{Backup: running("b1")},
				Live: live(manualBackup(map[string]any{"id": "b1", "finished": true, "failed": int64(1)}))},
			want:   map[Operation]string{OpBackup: "b1 Failed"},
			events: []string{platformv1alpha1.EventOperationFailed},
		},
		{
			name: "PGO still reports an earlier manual backup: running",
			in: OperationsInput{Spec: backup("b2"), Previous: &platformv1alpha1.OperationsStatus{Backup: running("b2", "b1")},
				Live: live(manualBackup(map[string]any{"id": "b1", "finished": true, "succeeded": int64(1)}))},
			want: map[Operation]string{OpBackup: "b2 Running b1"}, isRunning: true,
		},
		{
			name: "a new token waits while the last run of the operation runs",
			in:   OperationsInput{Spec: backup("b2"), Previous: &platformv1alpha1.OperationsStatus{Backup: running("b1")}, Live: live()},
			want: map[Operation]string{OpBackup: "b1 Running"}, pending: "waits for backup b1", isRunning: true,
		},
		{
			name: "a new token after a finished run keeps the old one as used",
			in:   OperationsInput{Spec: backup("b2"), Previous: &platformv1alpha1.OperationsStatus{Backup: done("b1")}, Live: live()},
			want: map[Operation]string{OpBackup: "b2 Running b1"}, events: []string{platformv1alpha1.EventOperationStarted}, isRunning: true,
		},
		{
			name:   "used tokens keep the newest sixteen",
			in:     OperationsInput{Spec: backup("b2"), Previous: &platformv1alpha1.OperationsStatus{Backup: done("b1", sixteen...)}, Live: live()},
			want:   map[Operation]string{OpBackup: "b2 Running b1 " + strings.Trim(fmt.Sprint(sixteen[:15]), "[]")},
			events: []string{platformv1alpha1.EventOperationStarted}, isRunning: true,
		},
		{
			name:    "no cluster yet: the token waits and is not recorded",
			in:      OperationsInput{Spec: backup("b1")},
			pending: "to be created",
		},
		{
			name:    "a backup waits for a major upgrade",
			in:      OperationsInput{Spec: backup("b1"), Live: live(), Busy: "the major upgrade to 17 runs"},
			pending: "major upgrade",
		},
		{
			name:    "a restart waits for the cluster to be ready",
			in:      OperationsInput{Spec: restart("r1"), Live: live(notReady), Instances: sets},
			pending: "running and ready",
		},
		{
			name:    "a restart waits on a cluster shut down on purpose",
			in:      OperationsInput{Spec: restart("r1"), Live: live(shutDown), Instances: sets},
			pending: "running and ready",
		},
		{
			name:    "a restart waits for a staged operator rollout",
			in:      OperationsInput{Spec: restart("r1"), Live: live(), Instances: sets, Busy: "the staged operator rollout restarts the cluster"},
			pending: "staged operator rollout",
		},
		{
			name: "a manager that stopped after applying the token takes the run up",
			in:   OperationsInput{Spec: restart("r1"), Live: live(notReady, restartToken("r1")), Instances: sets},
			want: map[Operation]string{OpRestart: "r1 Running"}, events: []string{platformv1alpha1.EventOperationStarted}, isRunning: true,
		},
		{
			name: "a backup token on the cluster but not in status is taken up, not asked again",
			in:   OperationsInput{Spec: backup("b2"), Previous: &platformv1alpha1.OperationsStatus{Backup: done("b1")}, Live: live(annotated(AnnotationBackup, "b2"))},
			want: map[Operation]string{OpBackup: "b2 Running b1"}, events: []string{platformv1alpha1.EventOperationStarted}, isRunning: true,
		},
		{
			name: "a restart ends once every instance set runs the token, updated and ready",
			in: OperationsInput{Spec: restart("r1"), Previous: &platformv1alpha1.OperationsStatus{Restart: running("r1")},
				Live: live(restartToken("r1")), Instances: sets},
			want: map[Operation]string{OpRestart: "r1 Succeeded"}, events: []string{platformv1alpha1.EventOperationSucceeded},
		},
		{
			name: "a restart runs while a StatefulSet lacks the token",
			in: OperationsInput{Spec: restart("r1"), Previous: &platformv1alpha1.OperationsStatus{Restart: running("r1")},
				Live: live(restartToken("r1")), Instances: []appsv1.StatefulSet{sets[0], set("hippo-instance1-efgh", "", 2, 2)}},
			want: map[Operation]string{OpRestart: "r1 Running"}, isRunning: true,
		},
		{
			name: "a restart runs while a replica is not updated (PGO's status may already say it is)",
			in: OperationsInput{Spec: restart("r1"), Previous: &platformv1alpha1.OperationsStatus{Restart: running("r1")},
				Live: live(restartToken("r1")), Instances: []appsv1.StatefulSet{set("hippo-instance1-abcd", "r1", 1, 2)}},
			want: map[Operation]string{OpRestart: "r1 Running"}, isRunning: true,
		},
		{
			name: "a switchover waits while a restart runs",
			in: OperationsInput{Spec: &platformv1alpha1.Operations{Restart: restart("r1").Restart, Switchover: switchover("s1", "").Switchover},
				Previous: &platformv1alpha1.OperationsStatus{Restart: running("r1")}, Live: live(restartToken("r1")), Instances: []appsv1.StatefulSet{set("hippo-instance1-abcd", "r1", 1, 2)}},
			want: map[Operation]string{OpRestart: "r1 Running"}, pending: "restart r1 is running", isRunning: true,
		},
		{
			name: "a restart and a switchover asked at once: the restart runs, the switchover waits for it",
			in: OperationsInput{Spec: &platformv1alpha1.Operations{Restart: restart("r1").Restart, Switchover: switchover("s1", "hippo-instance1-abcd").Switchover},
				Live: live(), Instances: sets},
			want:   map[Operation]string{OpRestart: "r1 Running"},
			events: []string{platformv1alpha1.EventOperationStarted}, pending: "restart r1 is running", isRunning: true,
		},
		{
			name:   "a switchover to the instance that leads succeeds without PGO (Patroni would refuse it, PGO retry forever)",
			in:     OperationsInput{Spec: switchover("s1", "hippo-instance1-abcd"), Live: live(), Instances: sets, Primary: "hippo-instance1-abcd"},
			want:   map[Operation]string{OpSwitchover: "s1 Succeeded"},
			events: []string{platformv1alpha1.EventOperationSucceeded},
		},
		{
			name: "a switchover whose token a stopped manager applied is taken up even if its target leads now",
			in: OperationsInput{Spec: switchover("s1", "hippo-instance1-abcd"), Live: live(annotated(AnnotationSwitchover, "s1")),
				Instances: sets, Primary: "hippo-instance1-abcd"},
			want:   map[Operation]string{OpSwitchover: "s1 Running"},
			events: []string{platformv1alpha1.EventOperationStarted}, isRunning: true,
		},
		{
			name:   "a switchover to an instance the cluster has runs",
			in:     OperationsInput{Spec: switchover("s1", "hippo-instance1-abcd"), Live: live(), Instances: sets},
			want:   map[Operation]string{OpSwitchover: "s1 Running"},
			events: []string{platformv1alpha1.EventOperationStarted}, isRunning: true,
		},
		{
			name:   "a switchover to an instance the cluster lacks fails at once (PGO would fail every reconcile)",
			in:     OperationsInput{Spec: switchover("s1", "hippo-instance9-zzzz"), Live: live(), Instances: sets},
			want:   map[Operation]string{OpSwitchover: "s1 Failed"},
			events: []string{platformv1alpha1.EventOperationFailed},
		},
		{
			name: "PGO reports the switchover of the token: succeeded",
			in: OperationsInput{Spec: switchover("s1", ""), Previous: &platformv1alpha1.OperationsStatus{Switchover: running("s1")},
				Live: live(switchedTo("s1")), Instances: sets},
			want: map[Operation]string{OpSwitchover: "s1 Succeeded"}, events: []string{platformv1alpha1.EventOperationSucceeded},
		},
		{
			name: "the operation removed from the spec: its record stays",
			in:   OperationsInput{Previous: &platformv1alpha1.OperationsStatus{Backup: done("b1")}, Live: live()},
			want: map[Operation]string{OpBackup: "b1 Succeeded"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Cluster, tt.in.Now = "hippo", now
			plan := PlanOperations(tt.in)
			got := map[Operation]string{}
			if s := plan.Status; s != nil {
				for op, st := range map[Operation]*platformv1alpha1.OperationStatus{OpBackup: s.Backup, OpRestart: s.Restart, OpSwitchover: s.Switchover} {
					if st != nil {
						got[op] = strings.TrimSpace(fmt.Sprintf("%s %s %s", st.Token, st.Phase, strings.Trim(fmt.Sprint(st.UsedTokens), "[]")))
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("status = %v, want %v", got, tt.want)
			}
			var reasons []string
			for _, e := range plan.Events {
				reasons = append(reasons, e.Reason)
			}
			if fmt.Sprint(reasons) != fmt.Sprint(tt.events) {
				t.Errorf("events = %v, want %v", reasons, tt.events)
			}
			switch {
			case tt.pending == "" && plan.Pending != nil:
				t.Errorf("pending = %q, want none", plan.Pending.Message)
			case tt.pending != "" && (plan.Pending == nil || !strings.Contains(plan.Pending.Message, tt.pending)):
				t.Errorf("pending = %v, want one saying %q", plan.Pending, tt.pending)
			}
			if (plan.Running != nil) != tt.isRunning {
				t.Errorf("running = %v, want %v", plan.Running, tt.isRunning)
			}
			// The input's status is never changed in place.
			if p := tt.in.Previous; p != nil && p.Backup != nil && plan.Status.Backup == p.Backup {
				t.Error("the plan shares the previous status")
			}
		})
	}
}

func TestRenderOperations(t *testing.T) {
	type tok = platformv1alpha1.OperationToken
	ran := func(token tok, phase platformv1alpha1.OperationPhase) *platformv1alpha1.OperationStatus {
		return &platformv1alpha1.OperationStatus{Token: token, Phase: phase}
	}
	spec := &platformv1alpha1.Operations{
		Backup:     &platformv1alpha1.BackupOperation{Token: "b-new", RepoName: "repo2", Options: []string{"--type=diff"}},
		Restart:    &platformv1alpha1.RestartOperation{Token: "r-new"},
		Switchover: &platformv1alpha1.SwitchoverOperation{Token: "s-new", TargetInstance: "hippo-instance1-abcd"},
	}
	// onPGO is the live cluster carrying switchover token s1.
	onPGO := NewPostgresCluster()
	onPGO.SetAnnotations(map[string]string{AnnotationSwitchover: "s1"})
	tests := []struct {
		name   string
		spec   *platformv1alpha1.Operations
		status *platformv1alpha1.OperationsStatus
		live   *unstructured.Unstructured
		want   string // the fields written, as JSON-ish text
	}{
		{name: "nothing ran: nothing written", spec: spec},
		{
			name: "the tokens run last are written, not the spec's newer ones",
			spec: spec,
			status: &platformv1alpha1.OperationsStatus{Backup: ran("b1", platformv1alpha1.OperationSucceeded),
				Restart: ran("r1", platformv1alpha1.OperationRunning), Switchover: ran("s1", platformv1alpha1.OperationSucceeded)},
			live: onPGO,
			want: "annotations=map[postgres-operator.crunchydata.com/pgbackrest-backup:b1 postgres-operator.crunchydata.com/trigger-switchover:s1] " +
				"manual=map[options:[--type=diff] repoName:repo2] switchover=map[enabled:true targetInstance:hippo-instance1-abcd] " +
				"metadata=map[keep:me platform.pgstack.dev/restart:r1]",
		},
		{
			name:   "operations gone from the spec: only the restart token stays (dropping it would restart again)",
			status: &platformv1alpha1.OperationsStatus{Backup: ran("b1", platformv1alpha1.OperationSucceeded), Restart: ran("r1", platformv1alpha1.OperationSucceeded)},
			want:   "annotations=map[] manual=map[] switchover=map[] metadata=map[keep:me platform.pgstack.dev/restart:r1]",
		},
		{
			name:   "a switchover pgstack refused never reaches PGO",
			spec:   spec,
			status: &platformv1alpha1.OperationsStatus{Switchover: ran("s1", platformv1alpha1.OperationFailed)},
			want:   "annotations=map[] manual=map[] switchover=map[] metadata=map[keep:me]",
		},
		{
			name:   "a running switchover asks PGO",
			spec:   spec,
			status: &platformv1alpha1.OperationsStatus{Switchover: ran("s1", platformv1alpha1.OperationRunning)},
			want:   "annotations=map[postgres-operator.crunchydata.com/trigger-switchover:s1] manual=map[] switchover=map[enabled:true targetInstance:hippo-instance1-abcd] metadata=map[keep:me]",
		},
		{
			name:   "a switchover found done (its target led) never reaches PGO",
			spec:   spec,
			status: &platformv1alpha1.OperationsStatus{Switchover: ran("s1", platformv1alpha1.OperationSucceeded)},
			live:   NewPostgresCluster(),
			want:   "annotations=map[] manual=map[] switchover=map[] metadata=map[keep:me]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := NewPostgresCluster()
			_ = unstructured.SetNestedStringMap(pc.Object, map[string]string{"keep": "me"}, "spec", "metadata", "annotations")
			before := fmt.Sprint(pc.Object)
			if err := RenderOperations(pc, tt.live, tt.spec, tt.status); err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if fmt.Sprint(pc.Object) != before {
					t.Errorf("wrote %v", pc.Object)
				}
				return
			}
			manual, _, _ := unstructured.NestedMap(pc.Object, "spec", "backups", "pgbackrest", "manual")
			switchover, _, _ := unstructured.NestedMap(pc.Object, "spec", "patroni", "switchover")
			meta, _, _ := unstructured.NestedStringMap(pc.Object, "spec", "metadata", "annotations")
			annotations := pc.GetAnnotations()
			if annotations == nil {
				annotations = map[string]string{}
			}
			got := fmt.Sprintf("annotations=%v manual=%v switchover=%v metadata=%v", annotations, manual, switchover, meta)
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
