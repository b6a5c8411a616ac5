package pgo

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	platformv1alpha1 "github.com/pgstack/pgstack/api/v1alpha1"
)

// PGO's annotations that start one-off operations (PGO v5.8.9 internal/naming/annotations.go).
const (
	// AnnotationBackup: a new value starts one manual backup per
	// spec.backups.pgbackrest.manual (internal/controller/postgrescluster/pgbackrest.go:2316ff).
	AnnotationBackup = "postgres-operator.crunchydata.com/pgbackrest-backup"
	// AnnotationSwitchover: a new value makes PGO ask Patroni for a
	// switchover per spec.patroni.switchover (patroni.go:448ff).
	AnnotationSwitchover = "postgres-operator.crunchydata.com/trigger-switchover"
)

// AnnotationRestart is pgstack's own annotation in the PostgresCluster's
// spec.metadata: PGO copies spec.metadata onto every pod template, so a new
// value rolls the instances the way PGO rolls any template change, replicas
// first and the primary last with a switchover.
const AnnotationRestart = "platform.pgstack.dev/restart"

// Operation names one kind of spec.operations.
type Operation string

const (
	OpBackup     Operation = "backup"
	OpRestart    Operation = "restart"
	OpSwitchover Operation = "switchover"
)

// OperationEvent is an Event the plan asks to record.
type OperationEvent struct {
	Type, Reason, Message string
}

// OperationsInput is what the operations are decided from.
type OperationsInput struct {
	Cluster string
	// Spec is the stack's spec.operations; Previous its status.operations.
	Spec     *platformv1alpha1.Operations
	Previous *platformv1alpha1.OperationsStatus
	// Live is the PostgresCluster as it is (nil before it exists).
	Live *unstructured.Unstructured
	// Instances are the cluster's instance StatefulSets.
	Instances []appsv1.StatefulSet
	// Primary is the instance that leads the cluster now (empty when
	// none or unknown).
	Primary string
	// Busy says why nothing that restarts pods may start now (a major
	// upgrade, the staged operator rollout); empty when nothing does.
	Busy string
	Now  time.Time
}

// OperationsPlan is what to report and apply for the operations.
type OperationsPlan struct {
	// Status is the new status.operations (nil when none ever ran).
	Status *platformv1alpha1.OperationsStatus
	Events []OperationEvent
	// Pending: a token waits; Running: PGO runs one. Both are Reconciling.
	Pending, Running *Finding
}

// OperationsBusy says which operation that restarts pods (a restart, a
// switchover) is running; empty when none is. A major upgrade waits for it.
func OperationsBusy(s *platformv1alpha1.OperationsStatus) string {
	return restartingOperation(s, "")
}

// restartingOperation says which restart or switchover other than except runs.
func restartingOperation(s *platformv1alpha1.OperationsStatus, except Operation) string {
	if s == nil {
		return ""
	}
	for _, op := range []struct {
		name Operation
		st   *platformv1alpha1.OperationStatus
	}{{OpRestart, s.Restart}, {OpSwitchover, s.Switchover}} {
		if op.name != except && op.st != nil && op.st.Phase == platformv1alpha1.OperationRunning {
			return fmt.Sprintf("the %s %s is running", op.name, op.st.Token)
		}
	}
	return ""
}

// PlanOperations decides, for each of spec.operations, whether its token
// starts a run, and reads from PGO's status whether a run ended. A token
// runs at most once: the token run last and up to MaxUsedTokens before it
// stay in status, and one of them back in the spec does nothing. A manager
// that stopped between applying a token and recording it finds the token
// on the live cluster and takes the run up as its own.
func PlanOperations(in OperationsInput) OperationsPlan {
	prev := in.Previous
	if prev == nil {
		prev = &platformv1alpha1.OperationsStatus{}
	}
	spec := in.Spec
	if spec == nil {
		spec = &platformv1alpha1.Operations{}
	}
	plan := OperationsPlan{}
	out := &platformv1alpha1.OperationsStatus{
		Backup: prev.Backup.DeepCopy(), Restart: prev.Restart.DeepCopy(), Switchover: prev.Switchover.DeepCopy(),
	}
	now := metav1.NewTime(in.Now)
	ready := in.Live != nil && serving(in.Live)

	// Runs under way end first, so a new token sees what is free.
	for _, op := range []struct {
		name Operation
		st   *platformv1alpha1.OperationStatus
	}{{OpBackup, out.Backup}, {OpRestart, out.Restart}, {OpSwitchover, out.Switchover}} {
		if op.st == nil || op.st.Phase != platformv1alpha1.OperationRunning || in.Live == nil {
			continue
		}
		phase, message := operationOutcome(op.name, op.st.Token, in.Live, in.Instances)
		if phase == platformv1alpha1.OperationRunning {
			continue
		}
		op.st.Phase, op.st.Message, op.st.CompletionTime = phase, message, &now
		event := OperationEvent{corev1.EventTypeNormal, platformv1alpha1.EventOperationSucceeded,
			fmt.Sprintf("%s %s of PostgresCluster %s succeeded: %s", op.name, op.st.Token, in.Cluster, message)}
		if phase == platformv1alpha1.OperationFailed {
			event = OperationEvent{corev1.EventTypeWarning, platformv1alpha1.EventOperationFailed,
				fmt.Sprintf("%s %s of PostgresCluster %s failed: %s", op.name, op.st.Token, in.Cluster, message)}
		}
		plan.Events = append(plan.Events, event)
	}

	restarting := func(except Operation) string {
		if in.Busy != "" {
			return in.Busy
		}
		return restartingOperation(out, except)
	}

	type request struct {
		name  Operation
		token platformv1alpha1.OperationToken
		st    **platformv1alpha1.OperationStatus
		// refuse says why the token never runs; done, that what it asks
		// for already holds, so PGO is not asked.
		refuse, done string
	}
	// wait says why the token of op cannot start yet. It is asked as each
	// request is judged, so a restart started just before holds a
	// switchover asked at once (PGO would run the switchover in the middle
	// of the restart's rollout, which then restarts the new primary again).
	wait := func(op Operation) string {
		busy := in.Busy
		if op != OpBackup {
			busy = restarting(op)
		}
		if busy == "" && !ready {
			busy = notServing
		}
		return busy
	}
	var requests []request
	if b := spec.Backup; b != nil {
		requests = append(requests, request{name: OpBackup, token: b.Token, st: &out.Backup})
	}
	if s := spec.Restart; s != nil {
		requests = append(requests, request{name: OpRestart, token: s.Token, st: &out.Restart})
	}
	if s := spec.Switchover; s != nil {
		r := request{name: OpSwitchover, token: s.Token, st: &out.Switchover}
		if names := instanceNames(in.Instances); s.TargetInstance != "" && len(names) > 0 && !slices.Contains(names, s.TargetInstance) {
			// PGO would fail the whole reconcile of the cluster on every
			// try ("TargetInstance was specified but not found").
			r.refuse = fmt.Sprintf("targetInstance %s is not an instance of the cluster (its instances: %s)", s.TargetInstance, strings.Join(names, ", "))
		} else if s.TargetInstance != "" && s.TargetInstance == in.Primary {
			// Patroni refuses a candidate that leads ("target and source
			// are the same"), and PGO would try again on every reconcile.
			r.done = fmt.Sprintf("instance %s already leads the cluster; PGO was not asked", s.TargetInstance)
		}
		requests = append(requests, r)
	}

	for _, r := range requests {
		st := *r.st
		if st != nil && (st.Token == r.token || slices.Contains(st.UsedTokens, r.token)) {
			continue // ran already
		}
		if in.Live == nil {
			plan.Pending = firstFinding(plan.Pending, platformv1alpha1.ReasonOperationPending,
				fmt.Sprintf("%s %s waits for PostgresCluster %s to be created", r.name, r.token, in.Cluster))
			continue
		}
		// A token already on the cluster was applied by a manager that
		// stopped before recording it: it runs; take it up.
		adopted := liveToken(r.name, in.Live) == string(r.token)
		if !adopted && st != nil && st.Phase == platformv1alpha1.OperationRunning {
			plan.Pending = firstFinding(plan.Pending, platformv1alpha1.ReasonOperationPending,
				fmt.Sprintf("%s %s waits for %s %s to end", r.name, r.token, r.name, st.Token))
			continue
		}
		if why := wait(r.name); !adopted && r.refuse == "" && why != "" {
			plan.Pending = firstFinding(plan.Pending, platformv1alpha1.ReasonOperationPending,
				fmt.Sprintf("%s %s of PostgresCluster %s waits: %s", r.name, r.token, in.Cluster, why))
			continue
		}
		next := &platformv1alpha1.OperationStatus{Token: r.token, Phase: platformv1alpha1.OperationRunning, StartTime: &now,
			Message: "asked PGO"}
		if st != nil {
			next.UsedTokens = append([]platformv1alpha1.OperationToken{st.Token}, st.UsedTokens...)
			if len(next.UsedTokens) > platformv1alpha1.MaxUsedTokens {
				next.UsedTokens = next.UsedTokens[:platformv1alpha1.MaxUsedTokens]
			}
		}
		switch {
		case r.refuse != "":
			next.Phase, next.Message, next.CompletionTime = platformv1alpha1.OperationFailed, r.refuse, &now
			plan.Events = append(plan.Events, OperationEvent{corev1.EventTypeWarning, platformv1alpha1.EventOperationFailed,
				fmt.Sprintf("%s %s of PostgresCluster %s not run: %s", r.name, r.token, in.Cluster, r.refuse)})
		case r.done != "" && !adopted:
			next.Phase, next.Message, next.CompletionTime = platformv1alpha1.OperationSucceeded, r.done, &now
			plan.Events = append(plan.Events, OperationEvent{corev1.EventTypeNormal, platformv1alpha1.EventOperationSucceeded,
				fmt.Sprintf("%s %s of PostgresCluster %s succeeded: %s", r.name, r.token, in.Cluster, r.done)})
		default:
			plan.Events = append(plan.Events, OperationEvent{corev1.EventTypeNormal, platformv1alpha1.EventOperationStarted,
				fmt.Sprintf("asked PGO for %s %s of PostgresCluster %s", r.name, r.token, in.Cluster)})
		}
		*r.st = next
	}

	for _, op := range []struct {
		name Operation
		st   *platformv1alpha1.OperationStatus
	}{{OpBackup, out.Backup}, {OpRestart, out.Restart}, {OpSwitchover, out.Switchover}} {
		if op.st != nil && op.st.Phase == platformv1alpha1.OperationRunning && plan.Running == nil {
			plan.Running = &Finding{platformv1alpha1.ReasonOperationRunning,
				fmt.Sprintf("PGO runs %s %s of PostgresCluster %s", op.name, op.st.Token, in.Cluster)}
		}
	}
	if out.Backup != nil || out.Restart != nil || out.Switchover != nil {
		plan.Status = out
	}
	return plan
}

// RenderOperations writes onto the PostgresCluster to apply what asks PGO
// for the token each operation ran last. Only that token is ever written:
// an older one put back in the spec does not reach PGO, and one that
// stays there asks for nothing new (PGO compares it with its own status).
// The restart token stays while the stack has one, since removing it
// would change the pod template and restart the cluster again; a backup
// or a switchover no longer in the spec is dropped, which PGO ignores.
// A switchover that ended is written only while live still carries its
// token: one pgstack refused or found already done never reaches PGO.
func RenderOperations(pc, live *unstructured.Unstructured, spec *platformv1alpha1.Operations, st *platformv1alpha1.OperationsStatus) error {
	if st == nil {
		return nil
	}
	if spec == nil {
		spec = &platformv1alpha1.Operations{}
	}
	annotations := pc.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	if st.Backup != nil && spec.Backup != nil {
		annotations[AnnotationBackup] = string(st.Backup.Token)
		repo := string(spec.Backup.RepoName)
		if repo == "" {
			repo = "repo1"
		}
		manual := map[string]any{"repoName": repo}
		if len(spec.Backup.Options) > 0 {
			opts := make([]any, 0, len(spec.Backup.Options))
			for _, o := range spec.Backup.Options {
				opts = append(opts, o)
			}
			manual["options"] = opts
		}
		if err := unstructured.SetNestedMap(pc.Object, manual, "spec", "backups", "pgbackrest", "manual"); err != nil {
			return fmt.Errorf("set the manual backup: %w", err)
		}
	}
	if sw := st.Switchover; sw != nil && spec.Switchover != nil &&
		(sw.Phase == platformv1alpha1.OperationRunning || (live != nil && liveToken(OpSwitchover, live) == string(sw.Token))) {
		annotations[AnnotationSwitchover] = string(st.Switchover.Token)
		switchover := map[string]any{"enabled": true}
		if t := spec.Switchover.TargetInstance; t != "" {
			switchover["targetInstance"] = t
		}
		if err := unstructured.SetNestedMap(pc.Object, switchover, "spec", "patroni", "switchover"); err != nil {
			return fmt.Errorf("set the switchover: %w", err)
		}
	}
	if len(annotations) > 0 {
		pc.SetAnnotations(annotations)
	}
	if st.Restart != nil {
		meta, _, _ := unstructured.NestedStringMap(pc.Object, "spec", "metadata", "annotations")
		if meta == nil {
			meta = map[string]string{}
		}
		meta[AnnotationRestart] = string(st.Restart.Token)
		if err := unstructured.SetNestedStringMap(pc.Object, meta, "spec", "metadata", "annotations"); err != nil {
			return fmt.Errorf("set the restart annotation: %w", err)
		}
	}
	return nil
}

// operationOutcome reads from PGO whether the run of token ended.
func operationOutcome(op Operation, token platformv1alpha1.OperationToken, live *unstructured.Unstructured, sets []appsv1.StatefulSet) (platformv1alpha1.OperationPhase, string) {
	switch op {
	case OpBackup:
		m, ok, _ := unstructured.NestedMap(live.Object, "status", "pgbackrest", "manualBackup")
		if !ok || m["id"] != string(token) || m["finished"] != true {
			return platformv1alpha1.OperationRunning, ""
		}
		completed, _, _ := unstructured.NestedString(m, "completionTime")
		if succeeded, _, _ := unstructured.NestedInt64(m, "succeeded"); succeeded > 0 {
			return platformv1alpha1.OperationSucceeded, "PGO's manual backup Job completed" + at(completed)
		}
		msg := "PGO's manual backup Job failed"
		if c := findCondition(live, "PGBackRestManualBackupSuccessful"); c != nil && str(c, "message") != "" {
			msg += ": " + str(c, "message")
		}
		return platformv1alpha1.OperationFailed, msg
	case OpSwitchover:
		if s, _, _ := unstructured.NestedString(live.Object, "status", "patroni", "switchover"); s == string(token) {
			return platformv1alpha1.OperationSucceeded, "Patroni switched the primary over"
		}
	case OpRestart:
		if restarted(token, live, sets) {
			return platformv1alpha1.OperationSucceeded, fmt.Sprintf("every pod of %d instance StatefulSets runs on the restarted template and is ready", len(sets))
		}
	}
	return platformv1alpha1.OperationRunning, ""
}

// restarted: PGO observed the token, and every instance StatefulSet carries
// it in its template, seen by its controller, with every replica updated to
// it and ready, and the cluster ready. PGO's own status.instances can read
// "all updated" before it has written the StatefulSets, so they are read.
func restarted(token platformv1alpha1.OperationToken, live *unstructured.Unstructured, sets []appsv1.StatefulSet) bool {
	observed, _, _ := unstructured.NestedInt64(live.Object, "status", "observedGeneration")
	if observed < live.GetGeneration() || !serving(live) || len(sets) == 0 {
		return false
	}
	for _, s := range sets {
		want := int32(1)
		if s.Spec.Replicas != nil {
			want = *s.Spec.Replicas
		}
		if s.Spec.Template.Annotations[AnnotationRestart] != string(token) ||
			s.Status.ObservedGeneration < s.Generation || s.Status.UpdatedReplicas != want || s.Status.ReadyReplicas != want {
			return false
		}
	}
	return true
}

// notServing is why an operation waits on a cluster that is not serving.
const notServing = "the cluster must be running and ready first"

// serving: PGO reports the cluster ready, and not because it is shut down.
func serving(live *unstructured.Unstructured) bool {
	r := ClusterReadiness(live)
	return r.Ready && r.Reason == ReasonReady
}

func liveToken(op Operation, live *unstructured.Unstructured) string {
	switch op {
	case OpBackup:
		return live.GetAnnotations()[AnnotationBackup]
	case OpSwitchover:
		return live.GetAnnotations()[AnnotationSwitchover]
	case OpRestart:
		meta, _, _ := unstructured.NestedStringMap(live.Object, "spec", "metadata", "annotations")
		return meta[AnnotationRestart]
	}
	return ""
}

// instanceNames are PGO's instance names: its instance StatefulSets' names.
func instanceNames(sets []appsv1.StatefulSet) []string {
	names := make([]string, 0, len(sets))
	for _, s := range sets {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return names
}

func firstFinding(f *Finding, reason, message string) *Finding {
	if f != nil {
		return f
	}
	return &Finding{reason, message}
}

func at(t string) string {
	if t == "" {
		return ""
	}
	return " at " + t
}
